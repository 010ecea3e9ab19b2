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
  static const char* words[] = {"alpha", "bravo",           "\"key\":", "{", "}",
                                ",",     "resourceVersion", "12345",    " "};
  std::string s;
  while (s.size() < n) s += words[rnd() % 9];
  return s;
}

}  // namespace

TEST_CASE("gzip spliced from live parts and pre-compressed fragments inflates to the same bytes",
          "[encoder]") {
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
  CHECK(acceptsGzip("deflate, gzip"));
  CHECK_FALSE(acceptsGzip("deflate, gzip;q=0.5"));  // kube-apiserver 1.37 takes only the bare token
  CHECK(acceptsGzip(" gzip , br"));
  CHECK_FALSE(acceptsGzip("identity"));
  CHECK_FALSE(acceptsGzip("gzip;q=0"));
  CHECK_FALSE(acceptsGzip("x-gzip"));
  CHECK_FALSE(acceptsGzip(""));
}

TEST_CASE("gzip members, one per flush, concatenate as kube-apiserver's watch-lists do",
          "[encoder]") {
  StringSink sink;
  const std::string a = "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\"}}\n";
  std::string b;
  std::mt19937 rnd(7);
  for (int i = 0; i < 100000; ++i) b += char('a' + rnd() % 16);  // compresses about 2:1
  kcp::encoder::gzipMember({a, b}, sink);
  const std::string first = sink.out;
  CHECK(first.substr(0, 10) ==
        std::string("\x1f\x8b\x08\0\0\0\0\0\x04\xff", 10));  // Go's header for level 1
  // Go's flushed-member ending: sync marker, empty final stored block, CRC32, length.
  CHECK(first.substr(first.size() - 17, 9) == std::string("\0\0\xff\xff\x01\0\0\xff\xff", 9));
  CHECK(gunzip(first) == a + b);
  kcp::encoder::gzipMember({"{\"type\":\"BOOKMARK\"}\n"},
                           sink);      // the same thread's deflater, reset
  kcp::encoder::gzipMember({}, sink);  // an empty member is still a member
  // A reader that goes on after each member's end (as Go's and zlib's gzip readers do).
  z_stream zs{};
  REQUIRE(inflateInit2(&zs, 15 + 16) == Z_OK);
  std::string out(300000, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(sink.out.data());
  zs.avail_in = uInt(sink.out.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  int members = 0;
  while (zs.avail_in > 0) {
    const int rc = inflate(&zs, Z_NO_FLUSH);
    REQUIRE((rc == Z_OK || rc == Z_STREAM_END));
    if (rc == Z_STREAM_END) {
      ++members;
      REQUIRE(inflateReset(&zs) == Z_OK);
    }
  }
  out.resize(out.size() - zs.avail_out);
  inflateEnd(&zs);
  CHECK(members == 3);
  CHECK(out == a + b + "{\"type\":\"BOOKMARK\"}\n");
}
