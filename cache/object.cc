#include "cache/object.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cstring>

#include "cache/json_scan.h"

namespace kcp::cache {

bool parseResourceVersion(std::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 20 || (text.size() > 1 && text[0] == '0')) return false;
  uint64_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    const uint64_t next = v * 10 + uint64_t(c - '0');
    if (next / 10 != v) return false;  // overflow
    v = next;
  }
  out = v;
  return true;
}

namespace {

// The value kube-apiserver's GetAttrs gives a field: strings as they are,
// booleans and integers as Go's strconv formats them, absent as the zero value.
std::string fieldValue(const rapidjson::Value& doc, const SelectableField& field,
                       const std::vector<std::string>& path) {
  const rapidjson::Value* v = &doc;
  for (const auto& step : path) {
    if (v->IsObject()) {
      const auto it = v->FindMember(rapidjson::StringRef(step.data(), step.size()));
      v = it == v->MemberEnd() ? nullptr : &it->value;
    } else if (v->IsArray() && !step.empty() &&
               step.find_first_not_of("0123456789") == std::string::npos) {
      const size_t i = std::stoul(step);
      v = i < v->Size() ? &(*v)[rapidjson::SizeType(i)] : nullptr;
    } else {
      v = nullptr;
    }
    if (v == nullptr) break;
  }
  switch (field.type) {
    case SelectableField::Type::kString:
      return v != nullptr && v->IsString() ? std::string(v->GetString(), v->GetStringLength())
                                           : std::string();
    case SelectableField::Type::kBool:
      return v != nullptr && v->IsBool() && v->GetBool() ? "true" : "false";
    case SelectableField::Type::kInteger:
      return v != nullptr && v->IsInt64() ? std::to_string(v->GetInt64()) : "0";
  }
  return {};
}

}  // namespace

std::string objectKey(std::string_view namespace_, std::string_view name) {
  std::string key(namespace_);
  if (!key.empty()) key += '/';
  key += name;
  return key;
}

namespace {

void appendLength(std::string& out, size_t n) {
  const auto n32 = uint32_t(n);
  out.append(reinterpret_cast<const char*>(&n32), sizeof n32);
}

// The label at `at` in a packed string; advances `at` past it.
std::pair<std::string_view, std::string_view> labelAt(std::string_view packed, size_t& at) {
  uint32_t k = 0, v = 0;
  std::memcpy(&k, packed.data() + at, sizeof k);
  std::memcpy(&v, packed.data() + at + sizeof k, sizeof v);
  const std::string_view key = packed.substr(at + 2 * sizeof k, k);
  const std::string_view value = packed.substr(at + 2 * sizeof k + k, v);
  at += 2 * sizeof k + k + v;
  return {key, value};
}

}  // namespace

Labels::Labels(Pairs pairs) {
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t bytes = 0;
  for (const auto& [k, v] : pairs) bytes += 2 * sizeof(uint32_t) + k.size() + v.size();
  packed_.reserve(bytes);
  for (const auto& [k, v] : pairs) {
    appendLength(packed_, k.size());
    appendLength(packed_, v.size());
    packed_.append(k).append(v);
  }
}

std::optional<std::string_view> Labels::find(std::string_view key) const {
  for (size_t at = 0; at < packed_.size();) {
    const auto [k, v] = labelAt(packed_, at);
    if (k == key) return v;
    if (k > key) break;  // sorted
  }
  return std::nullopt;
}

Labels::Pairs Labels::pairs() const {
  Pairs out;
  for (size_t at = 0; at < packed_.size();) out.push_back(labelAt(packed_, at));
  return out;
}

Object::Object(const Object& other)
    : key(other.key),
      namespace_(std::string_view(key).substr(0, other.namespace_.size())),
      name(std::string_view(key).substr(key.size() - other.name.size())),
      uid(other.uid),
      resource_version(other.resource_version),
      labels(other.labels),
      fields(other.fields),
      bytes(other.bytes),
      metadata_end(other.metadata_end) {}

Object::~Object() {
  delete typed_metadata_.load(std::memory_order_relaxed);
}

const TypedMetadata* Object::typedMetadata() const {
  const TypedMetadata* made = typed_metadata_.load(std::memory_order_acquire);
  if (made == nullptr) {
    auto* fresh = new TypedMetadata(cache::typedMetadata(bytes, nullptr).value_or(TypedMetadata{}));
    if (typed_metadata_.compare_exchange_strong(made, fresh, std::memory_order_acq_rel)) {
      made = fresh;
    } else {
      delete fresh;  // another thread made it first: `made` is theirs
    }
  }
  return made->json.empty() ? nullptr : made;
}

void Object::setName(std::string_view namespace_name, std::string_view object_name) {
  key = objectKey(namespace_name, object_name);
  namespace_ = std::string_view(key).substr(0, namespace_name.size());
  name = std::string_view(key).substr(key.size() - object_name.size());
}

ObjectPtr parseJsonObject(std::string json, std::string* error, const SelectableFields& fields) {
  const auto fail = [error](std::string message) {
    if (error != nullptr) *error = std::move(message);
    return nullptr;
  };
  rapidjson::Document doc;
  // Iterative: no recursion, so hostile nesting cannot overflow the stack.
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError()) {
    return fail(std::string("invalid JSON at offset ") + std::to_string(doc.GetErrorOffset()) +
                ": " + rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) return fail("not a JSON object");
  const auto meta = doc.FindMember("metadata");
  if (meta == doc.MemberEnd() || !meta->value.IsObject()) return fail("no metadata");
  const auto& m = meta->value;
  const auto str = [&m](const char* key) -> std::string {
    const auto it = m.FindMember(key);
    return it != m.MemberEnd() && it->value.IsString()
               ? std::string(it->value.GetString(), it->value.GetStringLength())
               : std::string();
  };
  auto obj = std::make_shared<Object>();
  obj->setName(str("namespace"), str("name"));
  obj->uid = str("uid");
  if (obj->name.empty()) return fail("metadata.name missing");
  if (!parseResourceVersion(str("resourceVersion"), obj->resource_version)) {
    return fail("metadata.resourceVersion missing or not a number");
  }
  const auto labels = m.FindMember("labels");
  if (labels != m.MemberEnd() && labels->value.IsObject()) {
    Labels::Pairs pairs;
    for (const auto& l : labels->value.GetObject()) {
      if (!l.value.IsString()) return fail("label value is not a string");
      pairs.emplace_back(std::string_view(l.name.GetString(), l.name.GetStringLength()),
                         std::string_view(l.value.GetString(), l.value.GetStringLength()));
    }
    obj->labels = Labels(std::move(pairs));
  }
  obj->fields.reserve(fields.size());
  for (const auto& f : fields) {
    std::string value = fieldValue(doc, f, f.path);
    if (value.empty() && !f.fallback.empty()) value = fieldValue(doc, f, f.fallback);
    obj->fields.push_back(std::move(value));
  }
  obj->bytes = std::move(json);
  obj->metadata_end = uint32_t(metadataEnd(obj->bytes));
  return obj;
}

}  // namespace kcp::cache
