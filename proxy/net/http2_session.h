// A client connection speaking HTTP/2 (TLS with ALPN h2, or cleartext with
// prior knowledge), served with nghttp2. Each stream's request is handed to a
// RequestHandler chosen by the Router; response bodies are pulled from the
// handler only as fast as the socket drains.
#pragma once

#include <event2/bufferevent.h>
#include <nghttp2/nghttp2.h>

#include <memory>
#include <unordered_map>

#include "proxy/net/exchange.h"
#include "proxy/net/session.h"

namespace kcp::proxy {

class Http2Session : public Session {
 public:
  // Takes ownership of `bev` (connected, TLS handshake done); bytes already
  // in its input buffer are the start of the connection.
  Http2Session(SessionHost& host, Router& router, const ClientLimits& limits, bufferevent* bev,
               PeerInfo peer);
  ~Http2Session() override;

  // Sends the server preface and processes what is already buffered. May
  // release the session (on a protocol error). Never throws: a failure closes
  // the connection.
  void start();
  void drain() override;
  size_t activeRequests() const override { return streams_.size(); }

 private:
  class Stream;
  void onRead();
  void flush();
  void onWrite();
  void lingeringClose();
  static void onLingerReadCb(bufferevent* bev, void*) noexcept;
  void scheduleFlush();
  void close(const char* why);
  void respondError(Stream& stream, int code, const char* reason, const std::string& message);
  Stream* streamOf(int32_t id);

  // Internal failures (see reportInternalError), from callbacks that must
  // not throw. An exception or a failed call: counted, logged, and the
  // connection closed (`detail` null inside a catch block).
  void failConnection(Metrics::InternalError where, const char* context,
                      const char* detail = nullptr) noexcept;
  // nghttp2's `call` returned `rv`: ends stream `stream_id`, if given and
  // nghttp2 can still reset it, else the connection (after a fatal error
  // nghttp2's session is unusable).
  void nghttp2Failed(const char* call, int rv, int32_t stream_id = 0) noexcept;
  // close(), for those paths: if close() itself throws (its log line), the
  // session is still handed back for deletion.
  void closeAfterFailure(const char* why) noexcept;
  // RST_STREAM `error_code` on stream `id`; if nghttp2 cannot even queue
  // that, the connection ends.
  void submitReset(int32_t id, uint32_t error_code) noexcept;
  // Marks `stream` failed (its handler hears nothing more but its close) and
  // resets it with INTERNAL_ERROR.
  void resetAfterError(Stream& stream) noexcept;
  // Gives `n` bytes of stream `id`'s window (and the connection's) back.
  void consume(int32_t id, size_t n) noexcept;

  static Http2Session& self(void* p) { return *static_cast<Http2Session*>(p); }
  static void onReadCb(bufferevent*, void* p) noexcept;
  static void onWriteCb(bufferevent*, void* p) noexcept;
  static void onEventCb(bufferevent*, short what, void* p) noexcept;
  static void onFlushCb(evutil_socket_t, short, void* p) noexcept;

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* p) noexcept;
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                      void* p) noexcept;
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* p) noexcept;
  static int onDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                         void* p) noexcept;
  static int onStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* p) noexcept;
  static int onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* p) noexcept;
  static ssize_t onReadResponseBody(nghttp2_session*, int32_t id, uint8_t*, size_t length,
                                    uint32_t* flags, nghttp2_data_source*, void* p) noexcept;
  static int onSendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                        size_t length, nghttp2_data_source*, void* p) noexcept;

  SessionHost& host_;
  Router& router_;
  ClientLimits limits_;
  bufferevent* bev_;
  PeerInfo peer_;
  nghttp2_session* session_ = nullptr;
  event* flush_ev_;
  // A DATA frame's payload, pulled from its handler before any byte of the
  // frame is written: a handler that fails costs its stream, not the
  // connection's framing. Empty between frames.
  evbuffer* data_payload_;
  event* idle_timer_;  // armed while no stream is open
  static void onIdleCb(evutil_socket_t, short, void* p) noexcept;
  void armIdle();
  // Armed while a stream's request head is incomplete: it must be complete
  // within the header timeout (a slowloris dripping HEADERS/CONTINUATION).
  event* header_timer_;
  static void onHeaderTimeoutCb(evutil_socket_t, short, void* p) noexcept;
  void armHeaderTimer();
  void terminate(uint32_t error_code, const char* why);
  bool terminated_by_us_ = false;  // a GOAWAY with an error that nghttp2 sent itself is a flood
  bool closing_ = false;
  bool finishing_ = false;  // session over, last bytes still being written
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
};

}  // namespace kcp::proxy
