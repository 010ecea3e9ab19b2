// Putting cached objects into a response by reference: the evbuffer holds
// the object alive until its bytes are written, nothing is copied.
// Every function here throws std::bad_alloc when libevent cannot take the
// bytes: a body with bytes missing must never go out, and the session's
// callback that catches it ends the stream.
#pragma once

#include <event2/buffer.h>

#include <cstddef>
#include <string_view>

#include "cache/object.h"
#include "proxy/request/response_form.h"

namespace kcp::proxy {

// evbuffer_add of `bytes` to `out`, checked.
void appendBytes(evbuffer* out, std::string_view bytes);

// Moves exactly `n` bytes from `from` to `to` (evbuffer_remove_buffer), checked.
void moveBytes(evbuffer* from, evbuffer* to, size_t n);

// Adds `bytes` (a span of `object`'s stored bytes) to `out` by reference.
void addObjectBytes(evbuffer* out, const cache::ObjectPtr& object, std::string_view bytes);

// The `"metadata":{...}` member of an object's metadata-only JSON form:
// spliced from a typed object, made once for a custom resource (whose
// metadata kube-apiserver writes typed: Object::typedMetadata). Throws
// std::runtime_error when a custom resource's metadata is unusable.
std::string_view metadataJson(const cache::Object& object);

// Adds `object` as a GET body or a watch event carries it: metadata only
// ({"kind":"PartialObjectMetadata",...,"metadata":{...}}), or whole, with
// `type_meta` (kind and apiVersion; empty for custom resources, which keep
// theirs) put back in front of a typed object stored in list-item form.
// JSON only.
void addSingleObject(evbuffer* out, const cache::ObjectPtr& object, ResponseForm form,
                     std::string_view type_meta);

// The bytes of a protobuf object a response carries: the whole message, or
// for metadata only its ObjectMeta field (which is a PartialObjectMetadata
// message by itself), also for a custom resource's JSON object (made once,
// Object::typedMetadata; throws std::runtime_error when that fails).
std::string_view protobufObjectBytes(const cache::Object& object, bool metadata_only);

// Adds a protobuf object in its envelope (GET bodies): `api_version` and
// `kind` are the resource's, replaced by PartialObjectMetadata's for metadata only.
void addProtobufObject(evbuffer* out, const cache::ObjectPtr& object, bool metadata_only,
                       std::string_view api_version, std::string_view kind);

}  // namespace kcp::proxy
