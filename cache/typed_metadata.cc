#include "cache/typed_metadata.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cache/protobuf.h"

namespace kcp::cache {
namespace {

using protobuf::appendBytesField;
using protobuf::appendVarint;

constexpr size_t kMaxDepth = 512;  // nesting in fieldsV1; deeper is refused, never recursed into

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t skipSpace(std::string_view s, size_t i) {
  while (i < s.size() && isSpace(s[i])) ++i;
  return i;
}

// The end of the JSON value starting at s[i], or npos when it is not one.
// Containers are skipped by counting, without recursion.
size_t skipValue(std::string_view s, size_t i) {
  if (i >= s.size()) return std::string_view::npos;
  size_t depth = 0;
  do {
    if (i >= s.size()) return std::string_view::npos;
    const char c = s[i];
    if (c == '"') {
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\') ++i;
      }
      if (i >= s.size()) return std::string_view::npos;
      ++i;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) return std::string_view::npos;
      ++i;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return std::string_view::npos;
      --depth;
      ++i;
    } else if (c == ',' || c == ':' || isSpace(c)) {
      if (depth == 0) return std::string_view::npos;
      ++i;
    } else {
      const size_t start = i;
      while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ':' &&
             !isSpace(s[i]) && s[i] != '"') {
        ++i;
      }
      if (i == start) return std::string_view::npos;
    }
  } while (depth > 0);
  return i;
}

struct Member {
  std::string_view key;  // as written, without its quotes
  std::string_view value;
};

// The members of the JSON object `s` (all of it), in order.
bool members(std::string_view s, std::vector<Member>& out) {
  out.clear();
  size_t i = skipSpace(s, 0);
  if (i >= s.size() || s[i] != '{') return false;
  i = skipSpace(s, i + 1);
  if (i < s.size() && s[i] == '}') return skipSpace(s, i + 1) == s.size();
  while (true) {
    if (i >= s.size() || s[i] != '"') return false;
    const size_t key_end = skipValue(s, i);
    if (key_end == std::string_view::npos) return false;
    const std::string_view key = s.substr(i + 1, key_end - i - 2);
    i = skipSpace(s, key_end);
    if (i >= s.size() || s[i] != ':') return false;
    i = skipSpace(s, i + 1);
    const size_t end = skipValue(s, i);
    if (end == std::string_view::npos) return false;
    out.push_back({key, s.substr(i, end - i)});
    i = skipSpace(s, end);
    if (i < s.size() && s[i] == ',') {
      i = skipSpace(s, i + 1);
      continue;
    }
    return i < s.size() && s[i] == '}' && skipSpace(s, i + 1) == s.size();
  }
}

// The elements of the JSON array `s`.
bool elements(std::string_view s, std::vector<std::string_view>& out) {
  out.clear();
  size_t i = skipSpace(s, 0);
  if (i >= s.size() || s[i] != '[') return false;
  i = skipSpace(s, i + 1);
  if (i < s.size() && s[i] == ']') return true;
  while (true) {
    const size_t end = skipValue(s, i);
    if (end == std::string_view::npos) return false;
    out.push_back(s.substr(i, end - i));
    i = skipSpace(s, end);
    if (i < s.size() && s[i] == ',') {
      i = skipSpace(s, i + 1);
      continue;
    }
    return i < s.size() && s[i] == ']';
  }
}

const Member* find(const std::vector<Member>& ms, std::string_view key) {
  for (const auto& m : ms) {
    if (m.key == key) return &m;
  }
  return nullptr;
}

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

bool hex4(std::string_view s, size_t i, uint32_t& v) {
  if (i + 4 > s.size()) return false;
  v = 0;
  for (size_t k = i; k < i + 4; ++k) {
    const char c = s[k];
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= uint32_t(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= uint32_t(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= uint32_t(c - 'A' + 10);
    } else {
      return false;
    }
  }
  return true;
}

// A JSON string value decoded (as Go decodes it: lone surrogates become U+FFFD).
std::optional<std::string> stringValue(std::string_view v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::nullopt;
  std::string out;
  for (size_t i = 1; i + 1 < v.size(); ++i) {
    const char c = v[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i + 1 >= v.size()) return std::nullopt;
    switch (v[i]) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '/':
        out += '/';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        uint32_t cp;
        if (!hex4(v, i + 1, cp)) return std::nullopt;
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00) {
          uint32_t low;
          if (i + 6 < v.size() && v[i + 1] == '\\' && v[i + 2] == 'u' && hex4(v, i + 3, low) &&
              low >= 0xDC00 && low < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          } else {
            cp = 0xFFFD;
          }
        } else if (cp >= 0xDC00 && cp < 0xE000) {
          cp = 0xFFFD;
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        return std::nullopt;
    }
  }
  return out;
}

std::optional<int64_t> integerValue(std::string_view v) {
  if (v.empty()) return std::nullopt;
  const bool negative = v.front() == '-';
  const std::string_view digits = negative ? v.substr(1) : v;
  if (digits.empty() || digits.size() > 19) return std::nullopt;
  uint64_t n = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + uint64_t(c - '0');
  }
  if (n > uint64_t(INT64_MAX)) return std::nullopt;
  return negative ? -int64_t(n) : int64_t(n);
}

int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = unsigned(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + int64_t(doe) - 719468;
}

// A metav1.Time in JSON (RFC 3339) as Unix seconds; kube-apiserver's
// protobuf form drops the fraction.
std::optional<int64_t> timeValue(std::string_view v) {
  const auto text = stringValue(v);
  if (!text || text->size() < 20) return std::nullopt;
  const std::string& t = *text;
  const auto num = [&](size_t at, size_t n) -> std::optional<int> {
    int x = 0;
    for (size_t k = at; k < at + n; ++k) {
      if (k >= t.size() || t[k] < '0' || t[k] > '9') return std::nullopt;
      x = x * 10 + (t[k] - '0');
    }
    return x;
  };
  const auto year = num(0, 4), month = num(5, 2), day = num(8, 2), hour = num(11, 2),
             minute = num(14, 2), second = num(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || t[4] != '-' || t[7] != '-' ||
      t[10] != 'T' || t[13] != ':' || t[16] != ':' || *month < 1 || *month > 12 || *day < 1 ||
      *day > 31 || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  size_t i = 19;
  if (i < t.size() && t[i] == '.') {
    for (++i; i < t.size() && t[i] >= '0' && t[i] <= '9';) ++i;
  }
  int64_t offset = 0;
  if (i < t.size() && t[i] == 'Z') {
    ++i;
  } else if (i + 6 == t.size() && (t[i] == '+' || t[i] == '-') && t[i + 3] == ':') {
    const auto oh = num(i + 1, 2), om = num(i + 4, 2);
    if (!oh || !om) return std::nullopt;
    offset = (t[i] == '+' ? 1 : -1) * (int64_t(*oh) * 3600 + int64_t(*om) * 60);
    i += 6;
  }
  if (i != t.size()) return std::nullopt;
  return daysFromCivil(*year, unsigned(*month), unsigned(*day)) * 86400 + int64_t(*hour) * 3600 +
         int64_t(*minute) * 60 + *second - offset;
}

void appendVarintField(std::string& out, uint32_t number, uint64_t v) {
  appendVarint(out, uint64_t(number) << 3);
  appendVarint(out, v);
}

// A metav1.Time message: Timestamp {1: seconds, 2: nanos (always 0)}; empty for the zero time.
std::string timestamp(int64_t seconds) {
  std::string t;
  appendVarintField(t, 1, uint64_t(seconds));
  appendVarintField(t, 2, 0);
  return t;
}

bool isNull(std::string_view v) {
  return v == "null";
}

// JSON of an array of objects, each one's members in `order`; `always`
// members are written ("" when absent) as Go writes fields without omitempty.
std::optional<std::string> reorderedArray(std::string_view array,
                                          std::initializer_list<std::string_view> order,
                                          std::initializer_list<std::string_view> always) {
  std::vector<std::string_view> items;
  if (!elements(array, items)) return std::nullopt;
  std::string out = "[";
  std::vector<Member> ms;
  for (size_t n = 0; n < items.size(); ++n) {
    if (!members(items[n], ms)) return std::nullopt;
    out += n ? ",{" : "{";
    bool first = true;
    for (const std::string_view key : order) {
      const Member* m = find(ms, key);
      const bool required = std::find(always.begin(), always.end(), key) != always.end();
      if ((m == nullptr || isNull(m->value)) && !required) continue;
      out += first ? "\"" : ",\"";
      first = false;
      out.append(key);
      out += "\":";
      if (m == nullptr || isNull(m->value)) {
        out += "\"\"";
      } else {
        out.append(m->value);
      }
    }
    out += '}';
  }
  return out + "]";
}

// A map of strings (labels, annotations) as gogo-protobuf writes it: one
// entry {1: key, 2: value} per key, in key order.
bool appendStringMap(std::string& out, uint32_t number, std::string_view object) {
  std::vector<Member> ms;
  if (!members(object, ms)) return false;
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& m : ms) {
    const auto key = stringValue("\"" + std::string(m.key) + "\"");
    const auto value = isNull(m.value) ? std::optional<std::string>("") : stringValue(m.value);
    if (!key || !value) return false;
    entries.emplace_back(std::move(*key), std::move(*value));
  }
  std::sort(entries.begin(), entries.end());
  for (const auto& [k, v] : entries) {
    std::string entry;
    appendBytesField(entry, 1, k);
    appendBytesField(entry, 2, v);
    appendBytesField(out, number, entry);
  }
  return true;
}

bool appendStringField(std::string& out, uint32_t number, const std::vector<Member>& ms,
                       std::string_view key) {
  const Member* m = find(ms, key);
  std::optional<std::string> v =
      (m == nullptr || isNull(m->value)) ? std::optional<std::string>("") : stringValue(m->value);
  if (!v) return false;
  appendBytesField(out, number, *v);
  return true;
}

std::optional<std::string> objectMetaProtobuf(std::string_view metadata) {
  std::vector<Member> ms;
  if (!members(metadata, ms)) return std::nullopt;
  std::string meta;
  // Non-pointer fields, always written.
  const std::pair<uint32_t, std::string_view> strings[] = {
      {1, "name"},     {2, "generateName"}, {3, "namespace"},
      {4, "selfLink"}, {5, "uid"},          {6, "resourceVersion"}};
  for (const auto& [number, key] : strings) {
    if (!appendStringField(meta, number, ms, key)) return std::nullopt;
  }
  int64_t generation = 0;
  if (const Member* m = find(ms, "generation"); m != nullptr && !isNull(m->value)) {
    const auto g = integerValue(m->value);
    if (!g) return std::nullopt;
    generation = *g;
  }
  appendVarintField(meta, 7, uint64_t(generation));
  std::string created;
  if (const Member* m = find(ms, "creationTimestamp"); m != nullptr && !isNull(m->value)) {
    const auto t = timeValue(m->value);
    if (!t) return std::nullopt;
    created = timestamp(*t);
  }
  appendBytesField(meta, 8, created);
  // Pointers, maps and lists: only when set.
  if (const Member* m = find(ms, "deletionTimestamp"); m != nullptr && !isNull(m->value)) {
    const auto t = timeValue(m->value);
    if (!t) return std::nullopt;
    appendBytesField(meta, 9, timestamp(*t));
  }
  if (const Member* m = find(ms, "deletionGracePeriodSeconds"); m != nullptr && !isNull(m->value)) {
    const auto s = integerValue(m->value);
    if (!s) return std::nullopt;
    appendVarintField(meta, 10, uint64_t(*s));
  }
  for (const auto& [number, key] :
       {std::pair<uint32_t, std::string_view>{11, "labels"}, {12, "annotations"}}) {
    const Member* m = find(ms, key);
    if (m != nullptr && !isNull(m->value) && !appendStringMap(meta, number, m->value))
      return std::nullopt;
  }
  std::vector<std::string_view> items;
  std::vector<Member> fields;
  if (const Member* m = find(ms, "ownerReferences"); m != nullptr && !isNull(m->value)) {
    if (!elements(m->value, items)) return std::nullopt;
    for (const auto item : items) {
      if (!members(item, fields)) return std::nullopt;
      std::string ref;
      for (const auto& [number, key] : {std::pair<uint32_t, std::string_view>{1, "kind"},
                                        {3, "name"},
                                        {4, "uid"},
                                        {5, "apiVersion"}}) {
        if (!appendStringField(ref, number, fields, key)) return std::nullopt;
      }
      for (const auto& [number, key] :
           {std::pair<uint32_t, std::string_view>{6, "controller"}, {7, "blockOwnerDeletion"}}) {
        const Member* b = find(fields, key);
        if (b == nullptr || isNull(b->value)) continue;
        if (b->value != "true" && b->value != "false") return std::nullopt;
        appendVarintField(ref, number, b->value == "true");
      }
      appendBytesField(meta, 13, ref);
    }
  }
  if (const Member* m = find(ms, "finalizers"); m != nullptr && !isNull(m->value)) {
    if (!elements(m->value, items)) return std::nullopt;
    for (const auto item : items) {
      const auto f = stringValue(item);
      if (!f) return std::nullopt;
      appendBytesField(meta, 14, *f);
    }
  }
  if (const Member* m = find(ms, "managedFields"); m != nullptr && !isNull(m->value)) {
    if (!elements(m->value, items)) return std::nullopt;
    for (const auto item : items) {
      if (!members(item, fields)) return std::nullopt;
      std::string entry;
      for (const auto& [number, key] : {std::pair<uint32_t, std::string_view>{1, "manager"},
                                        {2, "operation"},
                                        {3, "apiVersion"}}) {
        if (!appendStringField(entry, number, fields, key)) return std::nullopt;
      }
      if (const Member* t = find(fields, "time"); t != nullptr && !isNull(t->value)) {
        const auto seconds = timeValue(t->value);
        if (!seconds) return std::nullopt;
        appendBytesField(entry, 4, timestamp(*seconds));
      }
      if (!appendStringField(entry, 6, fields, "fieldsType")) return std::nullopt;
      if (const Member* f = find(fields, "fieldsV1"); f != nullptr && !isNull(f->value)) {
        std::string raw;  // FieldsV1 {1: raw}: its JSON as written (compact, keys sorted)
        appendBytesField(raw, 1, f->value);
        appendBytesField(entry, 7, raw);
      }
      if (!appendStringField(entry, 8, fields, "subresource")) return std::nullopt;
      appendBytesField(meta, 17, entry);
    }
  }
  std::string field;
  appendBytesField(field, 1, meta);
  return field;
}

std::optional<std::string> objectMetaJson(std::string_view metadata) {
  std::vector<Member> ms;
  if (!members(metadata, ms)) return std::nullopt;
  std::string out = "\"metadata\":{";
  bool first = true;
  for (const std::string_view key :
       {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
        "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
        "annotations", "ownerReferences", "finalizers", "managedFields"}) {
    const Member* m = find(ms, key);
    if (m == nullptr || isNull(m->value)) continue;
    std::string value(m->value);
    if (key == "ownerReferences") {
      auto v = reorderedArray(
          m->value, {"apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"},
          {"apiVersion", "kind", "name", "uid"});
      if (!v) return std::nullopt;
      value = std::move(*v);
    } else if (key == "managedFields") {
      auto v = reorderedArray(
          m->value,
          {"manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"},
          {});
      if (!v) return std::nullopt;
      value = std::move(*v);
    }
    out += first ? "\"" : ",\"";
    first = false;
    out.append(key);
    out += "\":";
    out += value;
  }
  return out + "}";
}

}  // namespace

std::optional<TypedMetadata> typedMetadata(std::string_view object_json, std::string* error) {
  const auto fail = [error](const char* why) {
    if (error != nullptr) *error = why;
    return std::nullopt;
  };
  std::vector<Member> ms;
  if (!members(object_json, ms)) return fail("not a JSON object");
  const Member* metadata = find(ms, "metadata");
  if (metadata == nullptr) return fail("no metadata");
  auto json = objectMetaJson(metadata->value);
  auto pb = objectMetaProtobuf(metadata->value);
  if (!json || !pb) return fail("metadata not as kube-apiserver writes it");
  return TypedMetadata{std::move(*json), std::move(*pb)};
}

std::string emptyObjectMetaField() {
  std::string meta;
  for (uint32_t number = 1; number <= 6; ++number) appendBytesField(meta, number, "");
  appendVarintField(meta, 7, 0);  // generation
  appendBytesField(meta, 8, "");  // the zero creationTimestamp
  std::string field;
  appendBytesField(field, 1, meta);
  return field;
}

}  // namespace kcp::cache
