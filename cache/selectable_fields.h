// The field selectors kube-apiserver 1.37 supports per built-in resource,
// beyond metadata.name and metadata.namespace (its registries' GetAttrs and
// field label conversions), and where each value comes from in the object.
#pragma once

#include <string_view>

#include "cache/object.h"

namespace kcp::cache {

// The fields of `group`/`resource` ("" for the core group); empty for
// resources that support only the metadata fields (custom resources included:
// their selectableFields are left to kube-apiserver, the request is forwarded).
const SelectableFields& selectableFields(std::string_view group, std::string_view resource);

}  // namespace kcp::cache
