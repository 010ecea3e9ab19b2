#include "cache/protobuf.h"

#include <algorithm>

namespace kcp::cache::protobuf {
namespace {

bool readVarint(std::string_view data, size_t& pos, uint64_t& out) {
  out = 0;
  for (int shift = 0; shift < 64 && pos < data.size(); shift += 7) {
    const auto byte = uint8_t(data[pos++]);
    out |= uint64_t(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

void appendTag(std::string& out, uint32_t number, uint32_t wire_type) {
  appendVarint(out, uint64_t(number) << 3 | wire_type);
}

// A map<string,string> entry's key (field 1).
std::string_view entryKey(std::string_view entry) {
  Reader r(entry);
  for (Field f; r.next(f);) {
    if (f.number == 1 && f.wire_type == 2) return f.bytes;
  }
  return {};
}

}  // namespace

bool Reader::next(Field& field) {
  if (failed_ || pos_ >= data_.size()) return false;
  const size_t start = pos_;
  uint64_t tag;
  if (!readVarint(data_, pos_, tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) {
    failed_ = true;
    return false;
  }
  field.number = uint32_t(tag >> 3);
  field.wire_type = uint32_t(tag & 7);
  field.bytes = {};
  field.varint = 0;
  switch (field.wire_type) {
    case 0:
      if (!readVarint(data_, pos_, field.varint)) failed_ = true;
      break;
    case 1:
    case 5: {
      const size_t n = field.wire_type == 1 ? 8 : 4;
      if (data_.size() - pos_ < n) {
        failed_ = true;
      } else {
        pos_ += n;
      }
      break;
    }
    case 2: {
      uint64_t length;
      if (!readVarint(data_, pos_, length) || length > data_.size() - pos_) {
        failed_ = true;
      } else {
        field.bytes = data_.substr(pos_, size_t(length));
        pos_ += size_t(length);
      }
      break;
    }
    default:
      failed_ = true;  // groups (3, 4) are not used by Kubernetes
  }
  if (failed_) return false;
  field.whole = data_.substr(start, pos_ - start);
  return true;
}

size_t varintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void appendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += char(uint8_t(v) | 0x80);
    v >>= 7;
  }
  out += char(v);
}

void appendLengthPrefix(std::string& out, uint32_t number, size_t length) {
  appendTag(out, number, 2);
  appendVarint(out, length);
}

void appendBytesField(std::string& out, uint32_t number, std::string_view bytes) {
  appendLengthPrefix(out, number, bytes.size());
  out.append(bytes);
}

std::optional<Unknown> unwrap(std::string_view body) {
  if (!body.starts_with(kMagic)) return std::nullopt;
  Unknown u;
  bool raw = false;
  Reader r(body.substr(kMagic.size()));
  for (Field f; r.next(f);) {
    if (f.wire_type != 2) continue;
    if (f.number == 1) {
      Reader tm(f.bytes);
      for (Field t; tm.next(t);) {
        if (t.number == 1 && t.wire_type == 2) u.api_version = t.bytes;
        if (t.number == 2 && t.wire_type == 2) u.kind = t.bytes;
      }
      if (tm.failed()) return std::nullopt;
    } else if (f.number == 2) {
      u.raw = f.bytes;
      raw = true;
    }
  }
  if (r.failed() || !raw) return std::nullopt;
  return u;
}

std::string envelopeHead(std::string_view api_version, std::string_view kind, size_t raw_length) {
  std::string type_meta;
  appendBytesField(type_meta, 1, api_version);
  appendBytesField(type_meta, 2, kind);
  std::string out(kMagic);
  appendBytesField(out, 1, type_meta);
  appendLengthPrefix(out, 2, raw_length);
  return out;
}

std::optional<ListPage> scanList(std::string_view raw, std::string* error) {
  ListPage page;
  Reader r(raw);
  for (Field f; r.next(f);) {
    if (f.wire_type != 2) continue;
    if (f.number == 1) {
      Reader meta(f.bytes);
      for (Field m; meta.next(m);) {
        if (m.number == 2 && m.wire_type == 2) page.resource_version = m.bytes;
        if (m.number == 3 && m.wire_type == 2) page.continue_token = m.bytes;
      }
      if (meta.failed()) {
        *error = "malformed protobuf ListMeta";
        return std::nullopt;
      }
    } else if (f.number == 2) {
      page.items.push_back(f.bytes);
    }
  }
  if (r.failed()) {
    *error = "malformed protobuf list";
    return std::nullopt;
  }
  return page;
}

std::optional<WatchEvent> scanWatchEvent(std::string_view message, std::string* error) {
  WatchEvent e;
  bool object = false;
  Reader r(message);
  for (Field f; r.next(f);) {
    if (f.wire_type != 2) continue;
    if (f.number == 1) e.type = f.bytes;
    if (f.number == 2) {  // runtime.RawExtension {1: raw}
      Reader ext(f.bytes);
      for (Field x; ext.next(x);) {
        if (x.number == 1 && x.wire_type == 2) {
          e.object = x.bytes;
          object = true;
        }
      }
      if (ext.failed()) {
        object = false;  // a malformed RawExtension is no object, whatever came before the damage
        break;
      }
    }
  }
  if (r.failed() || e.type.empty() || !object) {
    *error = "malformed protobuf watch event";
    return std::nullopt;
  }
  return e;
}

int32_t statusCode(std::string_view status) {
  Reader r(status);
  for (Field f; r.next(f);) {
    if (f.number == 6 && f.wire_type == 0) return int32_t(f.varint);
  }
  return 0;
}

std::optional<uint64_t> resourceVersion(std::string_view object) {
  Reader r(object);
  for (Field f; r.next(f);) {
    if (f.number != 1 || f.wire_type != 2) continue;
    Reader m(f.bytes);
    for (Field g; m.next(g);) {
      uint64_t rv;
      if (g.number == 6 && g.wire_type == 2 && parseResourceVersion(g.bytes, rv)) return rv;
    }
    return std::nullopt;
  }
  return std::nullopt;
}

std::string_view metadataField(std::string_view object) {
  Reader r(object);
  Field f;
  if (r.next(f) && f.number == 1 && f.wire_type == 2) return f.whole;
  return {};
}

namespace {

// A selectable field's value in an object message, formatted as Go formats
// it; the zero value when a field on the path is absent (gogo-protobuf
// writes non-pointer fields even at their zero value; pointers may be absent).
std::optional<std::string> protobufFieldValue(std::string_view object, const SelectableField& field,
                                              const std::vector<uint32_t>& path) {
  std::optional<Field> leaf;
  std::string_view message = object;
  for (size_t i = 0; i < path.size(); ++i) {
    std::optional<Field> found;
    Reader r(message);
    for (Field f; r.next(f);) {
      if (f.number == path[i]) {
        found = f;
        break;  // the first: a repeated field's first element
      }
    }
    if (r.failed()) return std::nullopt;
    if (!found) break;
    if (i + 1 < path.size()) {
      if (found->wire_type != 2) return std::nullopt;
      message = found->bytes;
    } else {
      leaf = found;
    }
  }
  switch (field.type) {
    case SelectableField::Type::kString:
      if (leaf && leaf->wire_type != 2) return std::nullopt;
      return leaf ? std::string(leaf->bytes) : std::string();
    case SelectableField::Type::kBool:
      if (leaf && leaf->wire_type != 0) return std::nullopt;
      return leaf && leaf->varint != 0 ? "true" : "false";
    case SelectableField::Type::kInteger:
      if (leaf && leaf->wire_type != 0) return std::nullopt;
      return leaf ? std::to_string(int32_t(uint32_t(leaf->varint)))
                  : "0";  // int32 fields, sign-extended on the wire
  }
  return std::nullopt;
}

}  // namespace

ObjectPtr parseObject(std::string bytes, std::string* error, const SelectableFields& fields) {
  const auto fail = [error](std::string message) {
    if (error != nullptr) *error = std::move(message);
    return nullptr;
  };
  auto obj = std::make_shared<Object>();
  std::string_view meta;
  bool has_meta = false;
  Reader r(bytes);
  for (Field f; r.next(f);) {
    if (!has_meta) {
      // ObjectMeta is field 1, first; metadata-only forms splice the field
      // as it is (PartialObjectMetadata's field 1).
      if (f.number != 1 || f.wire_type != 2) return fail("no metadata first");
      meta = f.bytes;
      has_meta = true;
      obj->metadata_end = uint32_t(f.whole.size());
    }
  }
  if (r.failed()) return fail("malformed protobuf object");
  if (!has_meta) return fail("no metadata");
  std::string rv;
  std::string_view name, namespace_name;
  Labels::Pairs labels;
  Reader m(meta);
  for (Field f; m.next(f);) {
    if (f.wire_type != 2) continue;
    switch (f.number) {
      case 1:
        name = f.bytes;
        break;
      case 3:
        namespace_name = f.bytes;
        break;
      case 5:
        obj->uid = f.bytes;
        break;
      case 6:
        rv = f.bytes;
        break;
      case 11: {
        std::string_view key, value;
        Reader entry(f.bytes);
        for (Field e; entry.next(e);) {
          if (e.number == 1 && e.wire_type == 2) key = e.bytes;
          if (e.number == 2 && e.wire_type == 2) value = e.bytes;
        }
        if (entry.failed()) return fail("malformed label");
        labels.emplace_back(key, value);
        break;
      }
      default:
        break;
    }
  }
  if (m.failed()) return fail("malformed protobuf metadata");
  if (name.empty()) return fail("metadata.name missing");
  if (!parseResourceVersion(rv, obj->resource_version))
    return fail("metadata.resourceVersion missing or not a number");
  obj->setName(namespace_name, name);
  obj->labels = Labels(std::move(labels));
  obj->fields.reserve(fields.size());
  for (const auto& f : fields) {
    auto value = protobufFieldValue(bytes, f, f.protobuf_path);
    if (value && value->empty() && !f.protobuf_fallback.empty())
      value = protobufFieldValue(bytes, f, f.protobuf_fallback);
    if (!value) return fail("malformed " + f.label);
    obj->fields.push_back(std::move(*value));
  }
  obj->bytes = std::move(bytes);
  return obj;
}

std::optional<std::string> withResourceVersion(
    std::string_view object, uint64_t rv,
    std::optional<std::pair<std::string_view, std::string_view>> annotation) {
  std::string meta;
  bool has_meta = false;
  std::string rest;  // the fields after metadata, as they are
  Reader r(object);
  for (Field f; r.next(f);) {
    if (f.number != 1 || f.wire_type != 2 || has_meta) {
      if (!has_meta) return std::nullopt;  // ObjectMeta is field 1, always first
      rest.append(f.whole);
      continue;
    }
    has_meta = true;
    // ObjectMeta's fields in order, with resourceVersion (6) replaced and the
    // annotation (12, a map entry) inserted where gogo-protobuf puts it.
    std::string entry;
    if (annotation) {
      appendBytesField(entry, 1, annotation->first);
      appendBytesField(entry, 2, annotation->second);
    }
    bool rv_done = false, entry_done = !annotation;
    const auto put_rv = [&] {
      appendBytesField(meta, 6, std::to_string(rv));
      rv_done = true;
    };
    const auto put_entry = [&] {
      appendBytesField(meta, 12, entry);
      entry_done = true;
    };
    Reader m(f.bytes);
    for (Field g; m.next(g);) {
      if (!rv_done && g.number >= 6) put_rv();
      if (g.number == 6) continue;
      if (!entry_done &&
          (g.number > 12 || (g.number == 12 && entryKey(g.bytes) > annotation->first)))
        put_entry();
      meta.append(g.whole);
    }
    if (m.failed()) return std::nullopt;
    if (!rv_done) put_rv();
    if (!entry_done) put_entry();
  }
  if (r.failed() || !has_meta) return std::nullopt;
  std::string out;
  out.reserve(meta.size() + rest.size() + 8);
  appendBytesField(out, 1, meta);
  out.append(rest);
  return out;
}

std::optional<std::string> withoutAnnotations(std::string_view object) {
  std::string out;
  Reader r(object);
  bool has_meta = false;
  for (Field f; r.next(f);) {
    if (f.number != 1 || f.wire_type != 2 || has_meta) {
      if (!has_meta) return std::nullopt;  // ObjectMeta is field 1, always first
      out.append(f.whole);
      continue;
    }
    has_meta = true;
    std::string meta;
    Reader m(f.bytes);
    for (Field g; m.next(g);) {
      if (g.number != 12) meta.append(g.whole);
    }
    if (m.failed()) return std::nullopt;
    appendBytesField(out, 1, meta);
  }
  if (r.failed() || !has_meta) return std::nullopt;
  return out;
}

}  // namespace kcp::cache::protobuf
