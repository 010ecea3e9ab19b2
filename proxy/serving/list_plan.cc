#include "proxy/serving/list_plan.h"

#include "encoder/continue_token.h"

namespace kcp::proxy {
namespace {

// The first key after every key that starts with `prefix` ("ns/" -> "ns0").
std::string prefixEnd(std::string prefix) {
  if (!prefix.empty()) prefix.back() = char(prefix.back() + 1);
  return prefix;
}

// Consistent LISTs answering less than this are forwarded (kube-apiserver
// gzips only above it, too: below, a response is cheap).
constexpr size_t kSmallConsistentList = 128 << 10;

}  // namespace

std::optional<ListPlan> planList(const CachedResource& resource, const RequestInfo& info,
                                 const ListOptions& options) {
  ListPlan plan;
  const auto labels = cache::LabelSelector::parse(options.label_selector);
  const auto fields = cache::FieldSelector::parse(options.field_selector);
  if (!labels || !fields) return std::nullopt;
  auto filter = cache::ObjectFilter::make(*labels, *fields, resource.fields.fields,
                                          resource.fields.namespace_selectable);
  if (!filter) return std::nullopt;
  plan.filter = std::move(*filter);
  plan.prefix = info.namespace_.empty() ? "" : info.namespace_ + "/";
  // kube-apiserver narrows a list across namespaces with metadata.namespace=X
  // to namespace X, but only on a first page (its continue tokens are then
  // relative to X, and a continued list is not narrowed: as upstream, the
  // next page starts over across namespaces).
  if (const auto ns = plan.filter.requiredValue("metadata.namespace");
      ns && info.namespace_.empty() && options.continue_token.empty() && resource.namespaced) {
    plan.prefix = *ns + "/";
  }
  plan.limit = options.limit > 0 ? options.limit : 0;
  // A list with metadata.name=X in one namespace (or of a cluster-scoped
  // resource) is a single-object read in kube-apiserver: at most one item,
  // never a continue token, and an Exact one is answered from etcd at its
  // current revision, which only kube-apiserver knows.
  const bool single_object = options.continue_token.empty() &&
                             plan.filter.requiredValue("metadata.name") &&
                             (!info.namespace_.empty() || !resource.namespaced);
  if (single_object) plan.limit = 0;
  const std::string& rv_text = options.resource_version;
  const std::string& match = options.resource_version_match;

  // A continue token: the next page of the snapshot the first page came from.
  if (!options.continue_token.empty()) {
    if (!rv_text.empty() || !match.empty()) return std::nullopt;  // kube-apiserver refuses these
    const auto token = encoder::decodeContinueToken(options.continue_token);
    if (!token) return std::nullopt;
    plan.snapshot = resource.store->snapshotAt(token->resource_version);
    if (!plan.snapshot)
      return std::nullopt;  // upstream may still serve it from etcd, or answer 410
    plan.resource_version = token->resource_version;
    plan.start = plan.prefix + token->start;
    return plan;
  }
  if (rv_text.empty()) return std::nullopt;  // a consistent read: not yet served from the cache
  uint64_t rv;
  if (!cache::parseResourceVersion(rv_text, rv)) return std::nullopt;
  // Exact, or the legacy form of it: a resourceVersion other than 0 with a limit.
  if (match == "Exact" || (match.empty() && rv != 0 && options.limit > 0)) {
    if (rv == 0 || single_object) return std::nullopt;
    plan.snapshot = resource.store->snapshotAt(rv);
    if (!plan.snapshot) return std::nullopt;
    plan.resource_version = rv;
    return plan;
  }
  if (!match.empty() && match != "NotOlderThan") return std::nullopt;
  // Not older than rv: the newest snapshot, if it is new enough (kube-apiserver
  // waits up to 3 s for its cache and then answers 504; forwarding lets it).
  plan.snapshot = resource.store->current();
  if (plan.snapshot->resource_version < rv) return std::nullopt;
  plan.resource_version = plan.snapshot->resource_version;
  if (rv == 0) plan.limit = 0;  // kube-apiserver ignores the limit for resourceVersion=0
  // kube-apiserver lists pods and resource slices of one node from its
  // spec.nodeName index: only that node's objects count as "more items".
  const bool node_indexed =
      (resource.group.empty() && resource.resource == "pods") ||
      (resource.group == "resource.k8s.io" && resource.resource == "resourceslices");
  const auto& selectable = resource.fields.fields;
  for (size_t i = 0; node_indexed && i < selectable.size(); ++i) {
    if (selectable[i].label != "spec.nodeName") continue;
    if (const auto node = plan.filter.requiredValue("spec.nodeName"))
      plan.index = ListPlan::Index{i, *node};
  }
  return plan;
}

bool answerSmallerThan(const ListPlan& plan, size_t bytes) {
  const std::string first = plan.start.empty() ? plan.prefix : plan.start;
  size_t total = 0;
  int64_t selected = 0;
  for (auto c = plan.snapshot->objects.lowerBound(first);
       c.valid() && (plan.limit == 0 || selected < plan.limit); c.next()) {
    const cache::ObjectPtr& obj = c.object();
    if (!std::string_view(obj->key).starts_with(plan.prefix)) break;
    if (!plan.filter.empty() && !plan.filter.matches(*obj)) continue;
    ++selected;
    if ((total += obj->bytes.size()) >= bytes) return false;
  }
  return true;
}

encoder::ListMeta selectPage(const ListPlan& plan, std::vector<cache::ObjectPtr>& page) {
  // As kube-apiserver's cacher: up to `limit` selected objects; more items
  // remain when any object (selected or not) follows the last one selected;
  // the continue token starts right after it; remainingItemCount only
  // without selectors.
  const cache::BTree& objects = plan.snapshot->objects;
  const std::string first = plan.start.empty() ? plan.prefix : plan.start;
  bool more = false;
  for (auto c = objects.lowerBound(first); c.valid(); c.next()) {
    const cache::ObjectPtr& obj = c.object();
    if (!std::string_view(obj->key).starts_with(plan.prefix)) break;
    if (int64_t(page.size()) == plan.limit) {
      if (plan.index && obj->fields[plan.index->field] != plan.index->value) continue;
      more = true;
      break;
    }
    if (plan.filter.empty() || plan.filter.matches(*obj)) page.push_back(obj);
  }
  encoder::ListMeta meta{plan.resource_version};
  if (more && !page.empty()) {
    // Relative to the list's key prefix, with the leading '/' the watch cache writes.
    std::string start = "/";
    start.append(std::string_view(page.back()->key).substr(plan.prefix.size()));
    start.push_back('\0');  // the first key after the last one returned
    meta.continue_token = encoder::encodeContinueToken({plan.resource_version, std::move(start)});
    if (plan.filter.empty()) {
      const size_t in_range = objects.countFrom(first) -
                              (plan.prefix.empty() ? 0 : objects.countFrom(prefixEnd(plan.prefix)));
      meta.remaining_item_count = int64_t(in_range) - plan.limit;
    }
  }
  return meta;
}

bool isConsistentList(const ListOptions& options) {
  return options.resource_version.empty() && options.resource_version_match.empty() &&
         options.continue_token.empty();
}

std::optional<ListOptions> consistentListOptions(const CachedResource& resource,
                                                 const RequestInfo& info,
                                                 const ListOptions& options,
                                                 std::chrono::steady_clock::time_point now) {
  ListOptions at_least = options;
  at_least.resource_version_match = "NotOlderThan";
  at_least.resource_version =
      std::string(1, '1');  // (not a literal: GCC 12 warns falsely on that assignment)
  const auto plan = planList(resource, info, at_least);
  if (!plan) return std::nullopt;
  if (resource.staleness(now).count() == 0 && answerSmallerThan(*plan, kSmallConsistentList))
    return std::nullopt;
  return at_least;
}

}  // namespace kcp::proxy
