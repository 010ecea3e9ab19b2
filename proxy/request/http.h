// Protocol-neutral request and response heads, shared by the HTTP/2 and
// HTTP/1.1 sides so that either can talk to either.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kcp::proxy {

struct Header {
  std::string name;  // lower case
  std::string value;
};
using Headers = std::vector<Header>;

struct RequestHead {
  std::string method;
  std::string path;  // path and query, as sent
  std::string authority;
  std::string scheme = "https";
  Headers headers;              // without pseudo-headers and without Host
  int64_t content_length = -1;  // -1: unknown (chunked / streamed)
  bool end_stream = false;      // no body follows
  // HTTP/1.1 connection upgrade (the Upgrade header's value, e.g. "websocket",
  // "SPDY/3.1"): after the head, the connection is a byte tunnel.
  std::string upgrade;
  // When the head began to arrive: a request's time counts from here, so
  // what it waits for before a handler answers (authorization, a consistent
  // read catching up) is in its logged time and duration metric.
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();

  const std::string* header(std::string_view name) const;
};

struct ResponseHead {
  int status = 200;
  Headers headers;
  int64_t content_length = -1;
  // For an upgraded connection: the body is the upstream's raw bytes, its own
  // status line and headers included, written as they come.
  bool raw = false;

  const std::string* header(std::string_view name) const;
};

// Connection-specific headers that must not be forwarded (RFC 9110 7.6.1,
// RFC 9113 8.2.2), plus those named in `Connection`.
bool isHopByHop(std::string_view lower_name);

// ASCII lower-casing for header names.
std::string toLower(std::string_view s);

// HTTP reason phrases for HTTP/1.1 status lines.
const char* reasonPhrase(int status);

}  // namespace kcp::proxy
