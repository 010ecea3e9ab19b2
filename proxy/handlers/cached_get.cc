#include "proxy/handlers/cached_get.h"

#include <new>

#include "cache/json_scan.h"
#include "cache/protobuf.h"
#include "encoder/status.h"
#include "proxy/handlers/object_bytes.h"

namespace kcp::proxy {

CachedGet::CachedGet(const CachedResource& resource, const cache::SnapshotPtr& snapshot,
                     ResponseForm form, const RequestHead& head, const RequestInfo& info,
                     DownstreamStream& stream, Metrics::Shard& metrics)
    : body_(evbuffer_new()),
      record_(metrics, info.verb, info.resource, head, "cache", stream.peer()) {
  if (body_ == nullptr) throw std::bad_alloc();
  try {
    record_.audit(info);
    const std::string key = cache::objectKey(info.namespace_, info.name);
    ResponseHead response;
    const bool protobuf = form.encoding == cache::Encoding::kProtobuf;
    response.headers = {{"cache-control", "no-cache, private"},
                        {"content-type", protobuf ? std::string(cache::protobuf::kContentType)
                                                  : "application/json"}};
    if (cache::ObjectPtr obj = snapshot->objects.find(key)) {
      response.status = 200;
      if (protobuf) {
        addProtobufObject(body_, obj, form.metadata_only, resource.group_version, resource.kind);
      } else {
        addSingleObject(body_, obj, form,
                        resource.reflector->sortedListKeys()
                            ? ""
                            : cache::typeMetaPrefix(resource.kind, resource.group_version));
        appendBytes(body_, "\n");
      }
    } else {
      response.status = 404;
      const std::string qualified =
          resource.group.empty() ? resource.resource : resource.resource + "." + resource.group;
      encoder::Status status{404,
                             "NotFound",
                             qualified + " \"" + info.name + "\" not found",
                             {info.name, resource.group, resource.resource}};
      appendBytes(body_, encoder::statusJson(status));
    }
    record_.setStatus(response.status);
    stream.submitResponse(response, false);
  } catch (...) {
    evbuffer_free(body_);  // no destructor runs for a constructor that throws
    throw;
  }
}

CachedGet::~CachedGet() {
  evbuffer_free(body_);
}

size_t CachedGet::responseBodyReady(bool* eof) {
  *eof = true;
  return evbuffer_get_length(body_);
}

void CachedGet::pullResponseBody(evbuffer* out, size_t n) {
  moveBytes(body_, out, n);
  record_.addBytesOut(n);
}

}  // namespace kcp::proxy
