// The nghttp2 plumbing both HTTP/2 sides share (Http2Session towards
// clients, UpstreamConnection towards kube-apiserver): session creation with
// automatic WINDOW_UPDATEs off, feeding received bytes in, draining frames
// out under a watermark, and header entries that point at strings.
#pragma once

#include <event2/buffer.h>
#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <functional>
#include <string>

namespace kcp::proxy {

// Creates a client or server session for `user_data`, with the callbacks
// `set_callbacks` installs and flow control left to the caller (no automatic
// WINDOW_UPDATE: windows reopen only as data is consumed); `set_options`,
// if given, adds options of the caller's (a server's flood limits). Returns 0
// or an nghttp2 error code.
int newSession(nghttp2_session** session, bool server, void* user_data,
               const std::function<void(nghttp2_session_callbacks*)>& set_callbacks,
               const std::function<void(nghttp2_option*)>& set_options = {});

// Feeds what `in` holds to the session, draining what it consumed, until
// `in` is empty or `stop()` turns true (a callback closed the connection).
// Returns 0 or the negative nghttp2 error that made the session give up;
// NGHTTP2_ERR_CALLBACK_FAILURE means our side failed (a callback, or
// libevent here) and was already reported, see reportInternalError.
ssize_t receiveInto(nghttp2_session* session, evbuffer* in, const std::function<bool()>& stop);

// Serializes frames into `out` while it holds less than `high_watermark`.
// Returns 0 or a negative nghttp2 error (NGHTTP2_ERR_CALLBACK_FAILURE as
// for receiveInto). Either way an error leaves the session unusable.
ssize_t sendFrom(nghttp2_session* session, evbuffer* out, size_t high_watermark);

// Whether an error from receiveInto or sendFrom was a failure of ours or of
// nghttp2 (out of memory) rather than the peer's doing; counts nghttp2's.
bool internalFailure(ssize_t error) noexcept;

// A header entry pointing at `name` and `value` (nghttp2 copies them when
// the frame is submitted).
inline nghttp2_nv headerEntry(const std::string& name, const std::string& value) {
  return {const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
          const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())), name.size(),
          value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace kcp::proxy
