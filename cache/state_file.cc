#include "cache/state_file.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

namespace kcp::cache {
namespace {

constexpr std::string_view kMagic = "KCPSTATE1\n";
constexpr uint32_t kEnd = 0xFFFFFFFF;
constexpr size_t kMaxHeader = 64 << 10;
constexpr size_t kFlushAt = 1 << 20;

void putU32(std::string& out, uint32_t v) {
  const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  out.append(b, 4);
}

uint32_t getU32(std::string_view data, size_t at) {
  const auto* p = reinterpret_cast<const uint8_t*>(data.data() + at);
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

std::string headerJson(const StateHeader& h) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("resource");
  w.String(h.resource);
  w.Key("encoding");
  w.String(encodingName(h.encoding));
  w.Key("path");
  w.String(h.path);
  w.Key("kind");
  w.String(h.kind);
  w.Key("apiVersion");
  w.String(h.api_version);
  w.Key("resourceVersion");
  w.Uint64(h.resource_version);
  w.Key("sortedListKeys");
  w.Bool(h.sorted_list_keys);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::optional<StateHeader> parseHeader(std::string_view json) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  const auto str = [&d](const char* key) -> const char* {
    return d.HasMember(key) && d[key].IsString() ? d[key].GetString() : nullptr;
  };
  const char *resource = str("resource"), *encoding = str("encoding"), *path = str("path"),
             *kind = str("kind"), *api_version = str("apiVersion");
  if (!resource || !encoding || !path || !kind || !api_version || !d.HasMember("resourceVersion") ||
      !d["resourceVersion"].IsUint64() || !d.HasMember("sortedListKeys") ||
      !d["sortedListKeys"].IsBool()) {
    return std::nullopt;
  }
  StateHeader h;
  h.resource = resource;
  if (std::string_view(encoding) == "json") {
    h.encoding = Encoding::kJson;
  } else if (std::string_view(encoding) == "protobuf") {
    h.encoding = Encoding::kProtobuf;
  } else {
    return std::nullopt;
  }
  h.path = path;
  h.kind = kind;
  h.api_version = api_version;
  h.resource_version = d["resourceVersion"].GetUint64();
  h.sorted_list_keys = d["sortedListKeys"].GetBool();
  return h;
}

// Writes all of `data` to fd; false on any error.
bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(size_t(n));
  }
  return true;
}

}  // namespace

std::string stateFileName(const std::string& resource, Encoding encoding) {
  return resource + "." + encodingName(encoding) + ".state";
}

bool writeState(const std::string& file, StateHeader header, const Snapshot& snapshot,
                std::string* error) {
  header.resource_version = snapshot.resource_version;
  const std::string tmp = file + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (error) *error = "open " + tmp + ": " + std::strerror(errno);
    return false;
  }
  uLong crc = crc32(0, nullptr, 0);
  std::string buf;
  bool ok = true;
  const auto flush = [&] {
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), uInt(buf.size()));
    ok = ok && writeAll(fd, buf);
    buf.clear();
  };
  buf.append(kMagic);
  const std::string h = headerJson(header);
  putU32(buf, uint32_t(h.size()));
  buf.append(h);
  for (auto c = snapshot.objects.lowerBound(); c.valid() && ok; c.next()) {
    const std::string& bytes = c.object()->bytes;
    putU32(buf, uint32_t(bytes.size()));
    buf.append(bytes);
    if (buf.size() >= kFlushAt) flush();
  }
  putU32(buf, kEnd);
  flush();
  putU32(buf, uint32_t(crc));
  ok = ok && writeAll(fd, buf) && ::fsync(fd) == 0;
  const int saved_errno = errno;
  ok = ::close(fd) == 0 && ok;
  if (!ok) {
    if (error) *error = "write " + tmp + ": " + std::strerror(saved_errno);
    ::unlink(tmp.c_str());
    return false;
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    if (error) *error = "rename " + tmp + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

std::optional<SavedState> parseState(std::string_view data, std::string* error) {
  const auto fail = [error](const std::string& why) -> std::optional<SavedState> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (!data.starts_with(kMagic)) return fail("not a kube-cache-proxy state file");
  if (data.size() < kMagic.size() + 4 + 8) return fail("truncated");
  const uint32_t stored_crc = getU32(data, data.size() - 4);
  const uLong crc = crc32(crc32(0, nullptr, 0), reinterpret_cast<const Bytef*>(data.data()),
                          uInt(data.size() - 4));
  if (uint32_t(crc) != stored_crc) return fail("checksum mismatch (truncated or altered)");
  const std::string_view body = data.substr(0, data.size() - 4);
  size_t at = kMagic.size();
  const uint32_t header_len = getU32(body, at);
  at += 4;
  if (header_len > kMaxHeader || header_len > body.size() - at) return fail("bad header length");
  auto header = parseHeader(body.substr(at, header_len));
  if (!header) return fail("bad header");
  at += header_len;
  SavedState state{std::move(*header), {}};
  while (true) {
    if (body.size() - at < 4) return fail("truncated");
    const uint32_t n = getU32(body, at);
    at += 4;
    if (n == kEnd) break;
    if (n > body.size() - at) return fail("object length past the end");
    state.objects.emplace_back(body.substr(at, n));
    at += n;
  }
  if (at != body.size()) return fail("bytes after the end marker");
  return state;
}

std::optional<SavedState> readState(const std::string& file, std::string* error) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (error) *error = "open " + file + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string data;
  char chunk[1 << 16];
  ssize_t n;
  while ((n = ::read(fd, chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) data.append(chunk, size_t(n));
  }
  const int saved_errno = errno;
  ::close(fd);
  if (n < 0) {
    if (error) *error = "read " + file + ": " + std::strerror(saved_errno);
    return std::nullopt;
  }
  return parseState(data, error);
}

}  // namespace kcp::cache
