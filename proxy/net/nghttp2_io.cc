#include "proxy/net/nghttp2_io.h"

#include "proxy/ops/metrics.h"

namespace kcp::proxy {

int newSession(nghttp2_session** session, bool server, void* user_data,
               const std::function<void(nghttp2_session_callbacks*)>& set_callbacks,
               const std::function<void(nghttp2_option*)>& set_options) {
  nghttp2_session_callbacks* cbs;
  if (const int rv = nghttp2_session_callbacks_new(&cbs); rv != 0) return rv;
  set_callbacks(cbs);
  nghttp2_option* opt;
  if (const int rv = nghttp2_option_new(&opt); rv != 0) {
    nghttp2_session_callbacks_del(cbs);
    return rv;
  }
  nghttp2_option_set_no_auto_window_update(opt, 1);
  if (set_options) set_options(opt);
  const int rv = server ? nghttp2_session_server_new2(session, cbs, user_data, opt)
                        : nghttp2_session_client_new2(session, cbs, user_data, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  return rv;
}

ssize_t receiveInto(nghttp2_session* session, evbuffer* in, const std::function<bool()>& stop) {
  while (evbuffer_get_length(in) > 0 && !stop()) {
    evbuffer_iovec v;
    if (evbuffer_peek(in, -1, nullptr, &v, 1) < 1) break;
    const ssize_t n =
        nghttp2_session_mem_recv(session, static_cast<const uint8_t*>(v.iov_base), v.iov_len);
    if (n < 0) return n;
    if (evbuffer_drain(in, size_t(n)) != 0) {  // else the same bytes would be fed twice
      reportInternalError(Metrics::InternalError::kLibevent, "HTTP/2 receive",
                          "evbuffer_drain failed");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }
  return 0;
}

ssize_t sendFrom(nghttp2_session* session, evbuffer* out, size_t high_watermark) {
  while (evbuffer_get_length(out) < high_watermark) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session, &data);
    if (n <= 0) return n;
    if (evbuffer_add(out, data, size_t(n)) != 0) {  // frames lost: the connection cannot go on
      reportInternalError(Metrics::InternalError::kLibevent, "HTTP/2 send", "evbuffer_add failed");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }
  return 0;
}

bool internalFailure(ssize_t error) noexcept {
  if (error == NGHTTP2_ERR_NOMEM) {
    reportInternalError(Metrics::InternalError::kNghttp2, "HTTP/2 session",
                        nghttp2_strerror(int(error)));
    return true;
  }
  return error == NGHTTP2_ERR_CALLBACK_FAILURE;
}

}  // namespace kcp::proxy
