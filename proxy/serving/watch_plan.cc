#include "proxy/serving/watch_plan.h"

#include <random>

namespace kcp::proxy {
namespace {

constexpr std::chrono::seconds kMinRequestTimeout{1800};  // kube-apiserver's --min-request-timeout

}  // namespace

std::optional<WatchPlan> planWatch(const CachedResource& resource, const RequestInfo& info,
                                   const ListOptions& options, uint64_t upstream_rv,
                                   bool* consistent) {
  *consistent = false;
  WatchPlan plan;
  const auto labels = cache::LabelSelector::parse(options.label_selector);
  const auto fields = cache::FieldSelector::parse(options.field_selector);
  if (!labels || !fields || !options.continue_token.empty() || options.limit != 0)
    return std::nullopt;
  auto filter = cache::ObjectFilter::make(*labels, *fields, resource.fields.fields,
                                          resource.fields.namespace_selectable);
  if (!filter) return std::nullopt;
  plan.filter = std::move(*filter);
  plan.prefix = info.namespace_.empty() ? "" : info.namespace_ + "/";
  plan.bookmarks = options.allow_watch_bookmarks;
  if (options.timeout_seconds && *options.timeout_seconds < 0) return std::nullopt;
  if (options.timeout_seconds && *options.timeout_seconds > 0) {
    plan.timeout = std::chrono::seconds(*options.timeout_seconds);
  } else {
    // As kube-apiserver: a random time between the minimum request timeout and twice it.
    static thread_local std::mt19937 rnd{std::random_device{}()};
    plan.timeout =
        std::chrono::seconds(kMinRequestTimeout.count() + std::uniform_int_distribution<int64_t>(
                                                              0, kMinRequestTimeout.count())(rnd));
  }
  const std::string& rv_text = options.resource_version;
  uint64_t rv = 0;
  if (!rv_text.empty() && !cache::parseResourceVersion(rv_text, rv)) return std::nullopt;
  // kube-apiserver 1.37 turns a watch from "" or "0" that asks for neither
  // into a watch-list (SetListOptionsDefaults); sendInitialEvents needs
  // NotOlderThan and NotOlderThan needs sendInitialEvents (else 422).
  std::optional<bool> send_initial = options.send_initial_events;
  std::string match = options.resource_version_match;
  if (!send_initial && match.empty() && rv == 0) {
    send_initial = true;
    match = "NotOlderThan";
  }
  if (send_initial.has_value() != (match == "NotOlderThan") ||
      (!match.empty() && match != "NotOlderThan")) {
    return std::nullopt;
  }
  if (rv_text.empty()) {
    // Not older than etcd's current revision: the caller learns it first.
    *consistent = true;
    rv = std::max<uint64_t>(upstream_rv, 1);
  }
  const cache::SnapshotPtr current = resource.store->current();
  if (send_initial.value_or(false)) {
    // The newest snapshot (kube-apiserver waits up to 3 s for its cache to
    // reach rv; forwarding lets it), then its changes.
    if (current->resource_version < rv) return std::nullopt;
    plan.initial = current;
    plan.initial_events_end = options.allow_watch_bookmarks;
    plan.from = current->resource_version;
    return plan;
  }
  if (send_initial.has_value() && rv_text.empty()) {
    // sendInitialEvents=false without a resourceVersion: changes after etcd's current revision.
    if (current->resource_version < rv) return std::nullopt;
    plan.from = rv;
    return plan;
  }
  if (rv == 0)
    rv = current->resource_version;  // sendInitialEvents=false from 0: from the cache's state
  // Changes after rv. kube-apiserver holds a watch from the future open until
  // then; forwarding does exactly that.
  if (rv > current->resource_version) return std::nullopt;
  if (rv < resource.store->oldestResourceVersion()) {
    plan.expired = rv;
    return plan;
  }
  plan.from = rv;
  return plan;
}

}  // namespace kcp::proxy
