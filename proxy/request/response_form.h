// Which form the cache answers a read in, from the request's Accept header
// and User-Agent, as kube-apiserver negotiates it: the first media type the
// cache can produce wins. The cache writes JSON and protobuf: whole objects,
// or metadata only (PartialObjectMetadata, for metadata informers such as the
// garbage collector's).
#pragma once

#include <optional>
#include <string_view>

#include "cache/object.h"
#include "proxy/request/http.h"

namespace kcp::proxy {

struct ResponseForm {
  cache::Encoding encoding = cache::Encoding::kJson;
  bool metadata_only = false;
  bool operator==(const ResponseForm&) const = default;
};

// nullopt: the client accepts nothing the cache writes (as=Table, YAML) or
// wants it pretty-printed (kube-apiserver pretty-prints for curl, Wget and
// browsers): forward. `verb` is list, get or watch. Without `protobuf` (a
// custom resource has no protobuf form), protobuf entries for whole objects
// are passed over, as kube-apiserver does (metadata only is typed: protobuf
// works for every resource).
std::optional<ResponseForm> cacheResponseForm(const RequestHead& head, std::string_view verb,
                                              bool protobuf);

}  // namespace kcp::proxy
