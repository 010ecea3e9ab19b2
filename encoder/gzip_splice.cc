#include "encoder/gzip_splice.h"

namespace kcp::encoder {
namespace {

constexpr int kLevel = 1;

[[noreturn]] void fail(const char* call, int rc) {
  throw ZlibError(std::string("zlib: ") + call + " failed: " + zError(rc));
}

void initRawDeflate(z_stream& zs) {
  // -15: a raw deflate stream (the gzip framing is written here).
  if (const int rc = deflateInit2(&zs, kLevel, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
      rc != Z_OK) {
    fail("deflateInit2", rc);
  }
}

}  // namespace

bool acceptsGzip(std::string_view header) {
  // As kube-apiserver 1.37 (ContentEncodingSupported): a comma-separated
  // item that is exactly "gzip" once trimmed; "gzip;q=1" is not.
  constexpr std::string_view kSpace = " \t\n\v\f\r";
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    const size_t first = item.find_first_not_of(kSpace);
    if (first == std::string_view::npos) continue;
    item = item.substr(first, item.find_last_not_of(kSpace) - first + 1);
    if (item == "gzip") return true;
  }
  return false;
}

void gzipMember(const std::vector<std::string_view>& pieces, GzipSink& out) {
  // One raw deflate stream per thread, reset per member: a watch may end a
  // member at every event, and a new stream each time would cost ~270 KB.
  struct Deflater {
    z_stream zs{};
    Deflater() { initRawDeflate(zs); }
    ~Deflater() { deflateEnd(&zs); }
  };
  static thread_local Deflater d;
  if (const int rc = deflateReset(&d.zs); rc != Z_OK) fail("deflateReset", rc);
  // Go's header for level 1: no mtime, XFL 4 (fastest), OS unknown.
  static const char kHeader[10] = {0x1f, char(0x8b), 8, 0, 0, 0, 0, 0, 4, char(0xff)};
  out.write(std::string_view(kHeader, sizeof kHeader));
  uint32_t crc = 0;
  uint64_t length = 0;
  unsigned char buf[16384];
  const auto run = [&](int flush) {
    int rc;
    do {
      d.zs.next_out = buf;
      d.zs.avail_out = sizeof buf;
      rc = deflate(&d.zs, flush);
      if (rc != Z_OK && rc != Z_BUF_ERROR) fail("deflate", rc);  // Z_BUF_ERROR: nothing pending
      out.write(std::string_view(reinterpret_cast<const char*>(buf), sizeof buf - d.zs.avail_out));
    } while (d.zs.avail_out == 0 || d.zs.avail_in > 0);
  };
  for (const std::string_view piece : pieces) {
    if (piece.empty()) continue;
    crc = uint32_t(crc32(crc, reinterpret_cast<const Bytef*>(piece.data()), uInt(piece.size())));
    length += piece.size();
    d.zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));
    d.zs.avail_in = uInt(piece.size());
    run(Z_NO_FLUSH);
  }
  run(Z_SYNC_FLUSH);
  // Go closes a flushed member with an empty final stored block, then the trailer.
  char tail[13] = {1, 0, 0, char(0xff), char(0xff)};
  for (int i = 0; i < 4; ++i) tail[5 + i] = char((crc >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) tail[9 + i] = char((uint32_t(length) >> (8 * i)) & 0xff);
  out.write(std::string_view(tail, sizeof tail));
}

DeflateFragmentPtr deflateFragment(std::string_view bytes) {
  auto f = std::make_shared<DeflateFragment>();
  z_stream zs{};
  initRawDeflate(zs);
  // Ends the stream on every way out, exceptions included.
  struct End {
    z_stream& zs;
    ~End() { deflateEnd(&zs); }
  } end{zs};
  f->deflated.resize(deflateBound(&zs, bytes.size()) + 16);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = uInt(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(f->deflated.data());
  zs.avail_out = uInt(f->deflated.size());
  // Ends byte-aligned, with no final block. The output has room for all of
  // it (deflateBound, plus the flush marker): input left over is a failure.
  if (const int rc = deflate(&zs, Z_SYNC_FLUSH); rc != Z_OK) fail("deflate", rc);
  if (zs.avail_in != 0 || zs.avail_out == 0) fail("deflate", Z_BUF_ERROR);
  f->deflated.resize(f->deflated.size() - zs.avail_out);
  f->crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), uInt(bytes.size())));
  f->length = bytes.size();
  return f;
}

GzipWriter::GzipWriter(GzipSink& out) : out_(out) {
  static const char kHeader[10] = {0x1f, char(0x8b), 8, 0, 0,
                                   0,    0,          0, 0, char(0xff)};  // no mtime, OS unknown
  initRawDeflate(zs_);  // first: when zlib cannot start, nothing has been written
  try {
    out_.write(std::string_view(kHeader, sizeof(kHeader)));
  } catch (...) {
    deflateEnd(&zs_);  // no destructor runs for a constructor that throws
    throw;
  }
}

// Z_DATA_ERROR here only says output was still pending (a response cut
// short): the memory is freed all the same.
GzipWriter::~GzipWriter() {
  deflateEnd(&zs_);
}

void GzipWriter::deflateInto(int flush) {
  unsigned char buf[16384];
  int rc;
  do {
    zs_.next_out = buf;
    zs_.avail_out = sizeof(buf);
    rc = deflate(&zs_, flush);
    // Z_BUF_ERROR: no progress was possible (nothing pending), not an error.
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) fail("deflate", rc);
    out_.write(std::string_view(reinterpret_cast<const char*>(buf), sizeof(buf) - zs_.avail_out));
  } while (zs_.avail_out == 0 || zs_.avail_in > 0);
  if (flush == Z_FINISH && rc != Z_STREAM_END) fail("deflate (finish)", rc);
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
    // What follows must not refer back across the fragment.
    if (const int rc = deflateReset(&zs_); rc != Z_OK) fail("deflateReset", rc);
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
