// Putting cached objects into a response by reference: the evbuffer holds
// the object alive until its bytes are written, nothing is copied.
#pragma once

#include <event2/buffer.h>

#include <string_view>

#include "cache/object.h"
#include "proxy/response_form.h"

namespace kcp::proxy {

// Adds `bytes` (a span of `object`'s stored bytes) to `out` by reference.
void addObjectBytes(evbuffer* out, const cache::ObjectPtr& object, std::string_view bytes);

// Adds `object` as a GET body or a watch event carries it: metadata only
// ({"kind":"PartialObjectMetadata",...,"metadata":{...}}), or whole, with
// `type_meta` (kind and apiVersion; empty for custom resources, which keep
// theirs) put back in front of a typed object stored in list-item form.
void addSingleObject(evbuffer* out, const cache::ObjectPtr& object, ResponseForm form, std::string_view type_meta);

}  // namespace kcp::proxy
