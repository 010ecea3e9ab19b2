#include "encoder/gzip_splice.h"

#include <stdexcept>

namespace kcp::encoder {
namespace {

constexpr int kLevel = 1;

void initRawDeflate(z_stream& zs) {
  // -15: a raw deflate stream (the gzip framing is written here).
  if (deflateInit2(&zs, kLevel, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("zlib: deflateInit2 failed");
  }
}

}  // namespace

bool acceptsGzip(std::string_view header) {
  // A comma-separated list of codings with optional ;q=; gzip with q=0 is refused.
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const size_t semi = item.find(';');
    std::string_view coding = item.substr(0, semi);
    while (!coding.empty() && coding.back() == ' ') coding.remove_suffix(1);
    if (coding != "gzip") continue;
    if (semi == std::string_view::npos) return true;
    std::string_view q = item.substr(semi + 1);
    while (!q.empty() && q.front() == ' ') q.remove_prefix(1);
    return !(q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000");
  }
  return false;
}

DeflateFragmentPtr deflateFragment(std::string_view bytes) {
  auto f = std::make_shared<DeflateFragment>();
  z_stream zs{};
  initRawDeflate(zs);
  f->deflated.resize(deflateBound(&zs, bytes.size()) + 16);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = uInt(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(f->deflated.data());
  zs.avail_out = uInt(f->deflated.size());
  deflate(&zs, Z_SYNC_FLUSH);  // ends byte-aligned, with no final block
  f->deflated.resize(f->deflated.size() - zs.avail_out);
  deflateEnd(&zs);
  f->crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), uInt(bytes.size())));
  f->length = bytes.size();
  return f;
}

GzipWriter::GzipWriter(GzipSink& out) : out_(out) {
  static const char kHeader[10] = {0x1f, char(0x8b), 8, 0, 0, 0, 0, 0, 0, char(0xff)};  // no mtime, OS unknown
  out_.write(std::string_view(kHeader, sizeof(kHeader)));
  initRawDeflate(zs_);
}

GzipWriter::~GzipWriter() { deflateEnd(&zs_); }

void GzipWriter::deflateInto(int flush) {
  unsigned char buf[16384];
  do {
    zs_.next_out = buf;
    zs_.avail_out = sizeof(buf);
    deflate(&zs_, flush);
    out_.write(std::string_view(reinterpret_cast<const char*>(buf), sizeof(buf) - zs_.avail_out));
  } while (zs_.avail_out == 0 || zs_.avail_in > 0);
}

void GzipWriter::add(std::string_view bytes) {
  if (bytes.empty()) return;
  crc_ = uint32_t(crc32(crc_, reinterpret_cast<const Bytef*>(bytes.data()), uInt(bytes.size())));
  length_ += bytes.size();
  zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs_.avail_in = uInt(bytes.size());
  deflateInto(Z_NO_FLUSH);
  live_ = true;
}

void GzipWriter::add(const DeflateFragmentPtr& fragment) {
  if (live_) {
    deflateInto(Z_SYNC_FLUSH);  // byte-aligned, not final
    deflateReset(&zs_);         // what follows must not refer back across the fragment
    live_ = false;
  }
  out_.writeFragment(fragment);
  crc_ = uint32_t(crc32_combine(crc_, fragment->crc, z_off_t(fragment->length)));
  length_ += fragment->length;
}

void GzipWriter::finish() {
  deflateInto(Z_FINISH);  // the final block (empty if nothing is pending)
  char trailer[8];
  for (int i = 0; i < 4; ++i) trailer[i] = char((crc_ >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) trailer[4 + i] = char((uint32_t(length_) >> (8 * i)) & 0xff);
  out_.write(std::string_view(trailer, sizeof(trailer)));
}

}  // namespace kcp::encoder
