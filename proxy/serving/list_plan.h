// Whether and how the cache answers a LIST, decided as kube-apiserver 1.37's
// watch cache decides it, without an event loop: the plan (snapshot, key
// range, page, selection), and for the paged case the page itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cache/selector.h"
#include "cache/store.h"
#include "encoder/json_list.h"
#include "proxy/request/list_options.h"
#include "proxy/request/request_info.h"
#include "proxy/serving/cached_resource.h"

namespace kcp::proxy {

// What one LIST reads from the cache, following kube-apiserver 1.37's watch
// cache: which snapshot, which key range, how many, which objects.
struct ListPlan {
  cache::SnapshotPtr snapshot;
  uint64_t resource_version = 0;  // of the list: the snapshot's, or the Exact one asked for
  std::string prefix;             // "namespace/" for a namespaced list, "" for all
  std::string start;              // the first key (from a continue token), or ""
  int64_t limit = 0;              // 0: everything
  cache::ObjectFilter filter;
  // Set when kube-apiserver would list from its spec.nodeName index: only
  // objects of that node count as more items after a full page.
  struct Index {
    size_t field;  // into Object::fields
    std::string value;
  };
  std::optional<Index> index;
};

// The plan for a LIST the cache can answer exactly as kube-apiserver would,
// or nullopt when the request must be forwarded: a consistent read (see
// consistentListOptions),
// a snapshot no longer held, a selector on a field the resource lacks, or
// anything kube-apiserver would refuse (its own error message then reaches
// the client).
std::optional<ListPlan> planList(const CachedResource& resource, const RequestInfo& info,
                                 const ListOptions& options);

// Whether the plan's answer (its first page) holds fewer than `bytes` of
// objects; stops walking as soon as it knows.
bool answerSmallerThan(const ListPlan& plan, size_t bytes);

// Selects one page of a plan with a limit into `page` and returns the list
// metadata for it (its continue token goes in the head of a typed list).
encoder::ListMeta selectPage(const ListPlan& plan, std::vector<cache::ObjectPtr>& page);

// Whether a LIST is a consistent read (no resourceVersion, match or continue).
bool isConsistentList(const ListOptions& options);

// A consistent LIST is served as "not older than" kube-apiserver's current
// resourceVersion, once the cache has reached it: the options to plan it
// with then (their resourceVersion to be set to upstream's). nullopt: it
// goes upstream at once, because the cache cannot answer it, or because the
// cache is current and the answer small (under 128 KiB): kube-apiserver
// answers that from its own watch cache at about the cost of the probe that
// serving it from ours takes, and without a wait for a bookmark. (A stale
// cache may mean kube-apiserver is out of reach: then the probe's failure
// lets --max-staleness decide.)
std::optional<ListOptions> consistentListOptions(const CachedResource& resource,
                                                 const RequestInfo& info,
                                                 const ListOptions& options,
                                                 std::chrono::steady_clock::time_point now);

}  // namespace kcp::proxy
