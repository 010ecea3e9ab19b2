// Which form the cache answers a read in, from the request's Accept header
// and User-Agent, as kube-apiserver negotiates it: the first media type the
// cache can produce wins. The cache writes JSON only: whole objects, or
// metadata only (PartialObjectMetadata, for metadata informers such as the
// garbage collector's).
#pragma once

#include <optional>
#include <string_view>

#include "proxy/http.h"

namespace kcp::proxy {

enum class ResponseForm { kFull, kMetadataOnly };

// nullopt: the client accepts nothing the cache writes (protobuf only,
// as=Table) or wants it pretty-printed (kube-apiserver pretty-prints for
// curl, Wget and browsers): forward. `verb` is list, get or watch.
std::optional<ResponseForm> cacheResponseForm(const RequestHead& head, std::string_view verb);

}  // namespace kcp::proxy
