#include "proxy/net/static_response.h"

namespace kcp::proxy {

RequestHandlerPtr StaticResponse::send(DownstreamStream& stream, int code, std::string content_type,
                                       std::string body) {
  ResponseHead head;
  head.status = code;
  head.content_length = int64_t(body.size());
  head.headers = {{"content-type", std::move(content_type)},
                  {"cache-control", "no-cache, private"},
                  {"content-length", std::to_string(body.size())}};
  const bool empty = body.empty();
  auto handler = std::make_unique<StaticResponse>(std::move(body));
  stream.submitResponse(head, empty);
  return handler;
}

RequestHandlerPtr StaticResponse::sendStatus(DownstreamStream& stream,
                                             const encoder::Status& status, bool protobuf) {
  if (protobuf)
    return send(stream, status.code, "application/vnd.kubernetes.protobuf",
                encoder::statusProtobuf(status));
  return send(stream, status.code, "application/json", encoder::statusJson(status));
}

}  // namespace kcp::proxy
