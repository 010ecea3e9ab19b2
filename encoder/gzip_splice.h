// gzip as a splice (DESIGN.md): a response's gzip stream is assembled from
// pieces compressed live (list head and tail, edge and selected objects)
// and pre-compressed fragments kept with the immutable B+tree leaves, so a
// LIST does not run a compressor over every byte it sends. Every piece is a
// raw deflate stream of its own, ended byte-aligned without a final block
// (a sync flush), so pieces concatenate; the CRC32 of the whole is combined
// from the pieces' (crc32_combine). zlib, level 1: the fragments are made
// once per leaf version, the live parts are small.
//
// Every zlib return code is checked; a failure throws ZlibError, which the
// network side turns into the end of that one response.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kcp::encoder {

// kube-apiserver gzips a response larger than this when the client accepts gzip.
inline constexpr size_t kGzipThresholdBytes = 128 * 1024;

// Whether an Accept-Encoding header value accepts gzip (as kube-apiserver reads it).
bool acceptsGzip(std::string_view accept_encoding);

// A zlib call failed (out of memory, or a stream zlib found inconsistent).
class ZlibError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DeflateFragment {
  std::string deflated;  // raw deflate, byte-aligned, no final block
  uint32_t crc = 0;      // CRC32 of the original bytes
  uint64_t length = 0;   // of the original bytes
};
using DeflateFragmentPtr = std::shared_ptr<const DeflateFragment>;

// Throws ZlibError.
DeflateFragmentPtr deflateFragment(std::string_view bytes);

// Where a GzipWriter's output goes: bytes to copy, or fragments to send by
// reference (the caller keeps the fragment alive while its bytes are queued).
class GzipSink {
 public:
  virtual ~GzipSink() = default;
  virtual void write(std::string_view bytes) = 0;
  virtual void writeFragment(const DeflateFragmentPtr& fragment) = 0;
};

// One whole gzip member of `pieces` (concatenated), as kube-apiserver 1.37
// writes a watch-list: a member per flush, each sync-flushed, closed with an
// empty final stored block and its trailer; members follow each other in
// one body, which gzip readers take as one stream. Throws ZlibError.
void gzipMember(const std::vector<std::string_view>& pieces, GzipSink& out);

// Each call throws ZlibError when zlib fails (and whatever the sink throws);
// after that the writer may only be destroyed.
class GzipWriter {
 public:
  // Writes the gzip header to `out` (nothing when zlib cannot start).
  explicit GzipWriter(GzipSink& out);
  ~GzipWriter();
  GzipWriter(const GzipWriter&) = delete;
  GzipWriter& operator=(const GzipWriter&) = delete;

  // Compresses `bytes` (buffered in the compressor; out gets what it emits).
  void add(std::string_view bytes);
  // Ends the live part and appends a pre-compressed fragment by reference.
  void add(const DeflateFragmentPtr& fragment);
  // Ends the stream: final block and trailer (CRC32, length).
  void finish();

 private:
  void deflateInto(int flush);
  GzipSink& out_;
  z_stream zs_{};
  bool live_ = false;  // the live stream has input since it last flushed
  uint32_t crc_ = 0;
  uint64_t length_ = 0;
};

}  // namespace kcp::encoder
