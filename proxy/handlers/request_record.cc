#include "proxy/handlers/request_record.h"

#include "config/log.h"
#include "proxy/ops/audit.h"

namespace kcp::proxy {

namespace {
std::string headerOr(const RequestHead& head, std::string_view name) {
  const std::string* value = head.header(name);
  return value ? *value : std::string();
}
}  // namespace

RequestRecord::RequestRecord(Metrics::Shard& metrics, std::string verb, std::string resource,
                             const RequestHead& head, const char* served_from, const PeerInfo& peer)
    : metrics_(metrics),
      verb_(std::move(verb)),
      resource_(std::move(resource)),
      method_(head.method),
      path_(head.path),
      user_agent_(headerOr(head, "user-agent")),
      accept_(headerOr(head, "accept")),
      served_from_(served_from),
      client_(peer.address),
      protocol_(peer.protocol),
      start_(head.received) {
  metrics_.in_flight.fetch_add(1, std::memory_order_relaxed);
  if (isWatch()) watchGauge().fetch_add(1, std::memory_order_relaxed);
}

void RequestRecord::audit(const RequestInfo& info) {
  if (audit::enabled()) audited_ = info;
}

RequestRecord::~RequestRecord() {
  metrics_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  if (isWatch()) watchGauge().fetch_sub(1, std::memory_order_relaxed);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int code = status_ == 0 ? 499 : status_;
  if (audited_) audit::cachedRead(*audited_, "allow", code, bytes_out_);
  metrics_.recordRequest(verb_, resource_, code, served_from_, seconds, bytes_in_, bytes_out_);
  if (log::enabled(1)) {
    log::verbose(1, "request",
                 {{"verb", verb_},
                  {"method", method_},
                  {"path", path_},
                  {"code", std::to_string(code)},
                  {"served_from", served_from_},
                  {"bytes_in", std::to_string(bytes_in_)},
                  {"bytes_out", std::to_string(bytes_out_)},
                  {"ms", std::to_string(int64_t(seconds * 1000))},
                  {"client", client_},
                  {"protocol", protocol_},
                  {"user_agent", user_agent_},
                  {"accept", accept_}});
  }
}

}  // namespace kcp::proxy
