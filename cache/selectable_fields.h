// The field selectors kube-apiserver 1.37 accepts per built-in resource
// (its field label conversions) and where each value comes from (its
// registries' GetAttrs), so a cached LIST selects exactly the objects
// kube-apiserver would.
#pragma once

#include <string_view>

#include "cache/object.h"

namespace kcp::cache {

struct ResourceFields {
  // metadata.name is always selectable; metadata.namespace unless the
  // resource's conversion refuses it (nodes, namespaces, ...).
  bool namespace_selectable = true;
  SelectableFields fields{};
};

// The fields of `group`/`resource` ("" for the core group). Any other
// resource: metadata.name, and metadata.namespace when namespaced. Selectors
// on anything else (a custom resource's selectableFields, metadata.namespace
// of a cluster-scoped resource) are left to kube-apiserver: such requests
// are forwarded.
ResourceFields selectableFields(std::string_view group, std::string_view resource, bool namespaced);

}  // namespace kcp::cache
