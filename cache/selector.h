// Label and field selectors with kube-apiserver's grammar and matching
// (k8s.io/apimachinery pkg/labels and pkg/fields). A selector this parser
// cannot read is never guessed at: the caller forwards the request, so the
// client gets kube-apiserver's own 400 message.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/object.h"

namespace kcp::cache {

class LabelSelector {
 public:
  enum class Op {
    kExists,
    kDoesNotExist,
    kEquals,
    kNotEquals,
    kIn,
    kNotIn,
    kGreaterThan,
    kLessThan
  };
  struct Requirement {
    std::string key;
    Op op;
    std::vector<std::string> values;  // sorted, unique
  };

  // Parses `labelSelector` as labels.Parse does; nullopt when invalid.
  static std::optional<LabelSelector> parse(std::string_view text);

  bool empty() const { return requirements_.empty(); }
  bool matches(const Labels& labels) const;
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
};

class FieldSelector {
 public:
  struct Requirement {
    std::string field;  // e.g. "metadata.name", "spec.nodeName"
    bool equals;        // "=" or "==" (true), "!=" (false)
    std::string value;  // unescaped
  };

  // Parses `fieldSelector` as fields.ParseSelector does; nullopt when invalid.
  static std::optional<FieldSelector> parse(std::string_view text);

  bool empty() const { return requirements_.empty(); }
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
};

// A LIST's or WATCH's selection, resolved against one resource's selectable
// fields so that matching an object is comparisons only.
class ObjectFilter {
 public:
  // nullopt when the field selector names a field the resource does not have
  // (kube-apiserver answers 400 "field label not supported"). Every resource
  // has metadata.name; metadata.namespace where `namespace_selectable`.
  static std::optional<ObjectFilter> make(LabelSelector labels, const FieldSelector& fields,
                                          const SelectableFields& selectable,
                                          bool namespace_selectable);
  // The value an equality requirement on `field` asks for, if there is one.
  std::optional<std::string> requiredValue(std::string_view field) const;
  bool empty() const { return labels_.empty() && fields_.empty(); }
  bool matches(const Object& object) const;

 private:
  struct FieldTest {
    std::string field;
    int index;  // into Object::fields; kName and kNamespace for the metadata fields
    bool equals;
    std::string value;
  };
  static constexpr int kName = -1, kNamespace = -2;
  LabelSelector labels_;
  std::vector<FieldTest> fields_;
};

// Label keys and values as kube-apiserver validates them.
bool isQualifiedName(std::string_view key);
bool isLabelValue(std::string_view value);

}  // namespace kcp::cache
