#include "cache/json_scan.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace kcp::cache {
namespace {

// A SAX handler that knows where it is: nesting depth, the key just read at
// each level, and the stream position (to cut out object spans).
struct Scanner : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Scanner> {
  explicit Scanner(const rapidjson::MemoryStream& s) : stream(s) {}
  const rapidjson::MemoryStream& stream;
  int depth = 0;
  std::vector<std::string> keys{""};  // keys[d]: the last key read in the object at depth d

  // RapidJSON's iterative parser calls the handler before it takes the brace:
  // at StartObject the stream is at '{', at EndObject at '}'.
  size_t pos() const { return stream.Tell(); }
  const std::string& key(int d) const { return keys[size_t(d)]; }
  void push() {
    ++depth;
    if (keys.size() <= size_t(depth)) keys.emplace_back();
    keys[size_t(depth)].clear();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    keys[size_t(depth)].assign(s, n);
    return true;
  }
  // Nesting only; scanners that cut spans out override these.
  bool StartObject() {
    push();
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth;
    return true;
  }
  bool StartArray() {
    push();
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth;
    return true;
  }
};

struct ListScanner : Scanner {
  using Scanner::Scanner;
  std::string_view body;
  JsonListPage page;
  bool in_items = false;
  size_t item_start = 0;
  bool bad = false;

  bool StartObject() {
    if (depth == 2 && in_items) item_start = pos();
    push();
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth;
    if (depth == 2 && in_items)
      page.items.push_back(body.substr(item_start, pos() + 1 - item_start));
    return true;
  }
  bool StartArray() {
    if (depth == 1 && key(1) == "items") in_items = true;
    push();
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth;
    if (depth == 1) in_items = false;
    return true;
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (depth == 1 && key(1) == "kind") page.kind.assign(s, n);
    if (depth == 1 && key(1) == "apiVersion") page.api_version.assign(s, n);
    if (depth == 2 && key(1) == "metadata") {
      if (key(2) == "resourceVersion") page.resource_version.assign(s, n);
      if (key(2) == "continue") page.continue_token.assign(s, n);
    }
    return true;
  }
  bool Int64(int64_t v) {
    if (depth == 2 && key(1) == "metadata" && key(2) == "remainingItemCount")
      page.remaining_item_count = v;
    return true;
  }
  bool Int(int v) { return Int64(v); }
  bool Uint(unsigned v) { return Int64(v); }
  bool Uint64(uint64_t v) { return Int64(int64_t(v)); }
};

struct WatchScanner : Scanner {
  using Scanner::Scanner;
  std::string_view body;
  JsonWatchEvent event;
  size_t object_start = 0;
  bool has_object = false;

  bool StartObject() {
    if (depth == 1 && key(1) == "object") object_start = pos();
    push();
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth;
    if (depth == 1 && key(1) == "object") {
      event.object = body.substr(object_start, pos() + 1 - object_start);
      has_object = true;
    }
    return true;
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (depth == 1 && key(1) == "type") event.type.assign(s, n);
    return true;
  }
};

// Finds the span of metadata.resourceVersion's value (without quotes).
struct ResourceVersionScanner : Scanner {
  using Scanner::Scanner;
  size_t start = 0, length = 0;
  bool found = false;
  bool String(const char*, rapidjson::SizeType n, bool) {
    if (depth == 2 && key(1) == "metadata" && key(2) == "resourceVersion" && !found) {
      // The stream is just past the closing quote; resourceVersions are
      // digits, so the value's bytes are the n before it.
      found = true;
      length = n;
      start = pos() - 1 - n;
    }
    return true;
  }
};

template <typename H>
bool parse(H& handler, rapidjson::MemoryStream& stream, std::string* error) {
  rapidjson::Reader reader;
  // Iterative: hostile nesting cannot overflow the stack.
  const rapidjson::ParseResult ok = reader.Parse<rapidjson::kParseIterativeFlag>(stream, handler);
  if (!ok) {
    if (error != nullptr) {
      *error = std::string("invalid JSON at offset ") + std::to_string(ok.Offset()) + ": " +
               rapidjson::GetParseError_En(ok.Code());
    }
    return false;
  }
  return true;
}

}  // namespace

std::optional<JsonListPage> scanJsonList(std::string_view body, std::string* error) {
  rapidjson::MemoryStream stream(body.data(), body.size());  // bounded: no terminator, no copy
  ListScanner h(stream);
  h.body = body;
  if (!parse(h, stream, error)) return std::nullopt;
  return std::move(h.page);
}

std::optional<JsonWatchEvent> scanJsonWatchEvent(std::string_view line, std::string* error) {
  rapidjson::MemoryStream stream(line.data(), line.size());
  WatchScanner h(stream);
  h.body = line;
  if (!parse(h, stream, error)) return std::nullopt;
  if (h.event.type.empty() || !h.has_object) {
    if (error != nullptr) *error = "watch event without type or object";
    return std::nullopt;
  }
  return std::move(h.event);
}

std::optional<std::string> withResourceVersion(std::string_view object, uint64_t resource_version) {
  rapidjson::MemoryStream stream(object.data(), object.size());
  ResourceVersionScanner h(stream);
  if (!parse(h, stream, nullptr) || !h.found) return std::nullopt;
  std::string out(object.substr(0, h.start));
  out += std::to_string(resource_version);
  out.append(object.substr(h.start + h.length));
  return out;
}

size_t metadataEnd(std::string_view object) {
  constexpr std::string_view kStart = R"({"metadata":{)";
  if (!object.starts_with(kStart)) return 0;
  int depth = 0;
  bool in_string = false;
  for (size_t i = kStart.size() - 1; i < object.size(); ++i) {
    const char c = object[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, whatever it is
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return 0;
}

std::string typeMetaPrefix(std::string_view kind, std::string_view api_version) {
  std::string p = R"({"kind":")";
  p += kind;
  p += R"(","apiVersion":")";
  p += api_version;
  p += R"(",)";
  return p;
}

std::optional<std::string> stripTypeMeta(std::string_view object, std::string_view kind,
                                         std::string_view api_version) {
  const std::string prefix = typeMetaPrefix(kind, api_version);
  if (!object.starts_with(prefix)) return std::nullopt;
  std::string out = "{";
  out.append(object.substr(prefix.size()));
  return out;
}

}  // namespace kcp::cache
