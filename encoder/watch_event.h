// kube-apiserver's JSON watch framing: one {"type":T,"object":O} per line,
// where O is the object exactly as a GET returns it. Events are spliced:
// head, the object's stored bytes, tail.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "encoder/status.h"

namespace kcp::encoder {

// {"type":"ADDED","object": -- the object and kJsonWatchEventTail follow.
std::string jsonWatchEventHead(std::string_view type);
inline constexpr std::string_view kJsonWatchEventTail = "}\n";

// A BOOKMARK: an object of the resource's kind holding only the
// resourceVersion (and, ending a watch-list's initial events, the
// k8s.io/initial-events-end annotation). `sorted_keys` for custom resources.
std::string jsonBookmarkEvent(std::string_view kind, std::string_view api_version,
                              uint64_t resource_version, bool sorted_keys, bool initial_events_end);

// An ERROR event carrying a Status (e.g. 410 Expired for a too old resourceVersion).
std::string jsonErrorEvent(const Status& status);

}  // namespace kcp::encoder
