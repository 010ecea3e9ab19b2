#include "encoder/gzip_splice.h"

#include <zlib.h>

#include <catch2/catch.hpp>
#include <random>

using kcp::encoder::acceptsGzip;
using kcp::encoder::deflateFragment;
using kcp::encoder::GzipSink;
using kcp::encoder::GzipWriter;

namespace {

struct StringSink : GzipSink {
  std::string out;
  int fragments = 0;
  void write(std::string_view bytes) override { out.append(bytes); }
  void writeFragment(const kcp::encoder::DeflateFragmentPtr& f) override {
    out.append(f->deflated);
    ++fragments;
  }
};

// Inflates a gzip member with zlib, checking its CRC and length.
std::string gunzip(const std::string& gz) {
  z_stream zs{};
  REQUIRE(inflateInit2(&zs, 15 + 16) == Z_OK);
  std::string out(gz.size() * 20 + 1024, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = uInt(gz.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  const int rc = inflate(&zs, Z_FINISH);
  CHECK(rc == Z_STREAM_END);  // the trailer's CRC32 and length matched
  CHECK(zs.avail_in == 0);
  out.resize(out.size() - zs.avail_out);
  inflateEnd(&zs);
  return out;
}

std::string text(std::mt19937& rnd, size_t n) {
  static const char* words[] = {"alpha", "bravo", "\"key\":", "{", "}", ",", "resourceVersion", "12345", " "};
  std::string s;
  while (s.size() < n) s += words[rnd() % 9];
  return s;
}

}  // namespace

TEST_CASE("gzip spliced from live parts and pre-compressed fragments inflates to the same bytes", "[encoder]") {
  std::mt19937 rnd(3);
  for (int round = 0; round < 50; ++round) {
    StringSink sink;
    std::string expected;
    {
      GzipWriter gz(sink);
      const int pieces = int(rnd() % 12);
      for (int i = 0; i < pieces; ++i) {
        const std::string piece = text(rnd, rnd() % 3 == 0 ? 0 : rnd() % 70000);
        expected += piece;
        if (rnd() % 2) {
          gz.add(deflateFragment(piece));
        } else {
          gz.add(piece);
        }
      }
      gz.finish();
    }
    INFO("round " << round);
    CHECK(gunzip(sink.out) == expected);
  }
}

TEST_CASE("pre-compressed fragments keep most of the compression", "[encoder]") {
  std::mt19937 rnd(5);
  const std::string leaf = text(rnd, 200000);
  const auto f = deflateFragment(leaf);
  CHECK(f->length == leaf.size());
  CHECK(f->deflated.size() < leaf.size() / 3);
}

TEST_CASE("Accept-Encoding: gzip as kube-apiserver reads it", "[encoder]") {
  CHECK(acceptsGzip("gzip"));
  CHECK(acceptsGzip("deflate, gzip;q=0.5"));
  CHECK(acceptsGzip(" gzip , br"));
  CHECK_FALSE(acceptsGzip("identity"));
  CHECK_FALSE(acceptsGzip("gzip;q=0"));
  CHECK_FALSE(acceptsGzip("x-gzip"));
  CHECK_FALSE(acceptsGzip(""));
}
