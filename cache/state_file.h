// A resource's cache saved to disk, for a warm restart: the objects of one
// snapshot exactly as the store holds them, and the resourceVersion they are
// current at, so a restarted proxy resumes its upstream watch from there
// instead of listing everything again.
//
// Format: "KCPSTATE1\n", a length-prefixed JSON header, then each object as
// a 4-byte big-endian length and its bytes, then 0xFFFFFFFF and the CRC32 of
// everything before it. A file that is truncated, altered or from another
// resource is refused as a whole (the proxy then lists as usual).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/object.h"
#include "cache/store.h"

namespace kcp::cache {

struct StateHeader {
  std::string resource;  // as configured, e.g. "configmaps" or "deployments.apps"
  Encoding encoding = Encoding::kJson;
  std::string path;  // collection path, e.g. /api/v1/configmaps
  std::string kind, api_version;
  uint64_t resource_version = 0;
  bool sorted_list_keys = false;
};

struct SavedState {
  StateHeader header;
  std::vector<std::string> objects;
};

// Writes `snapshot` to `file` atomically (a temporary file, fsync, rename).
// Safe on any thread: a snapshot is immutable. False with `error` on failure.
bool writeState(const std::string& file, StateHeader header, const Snapshot& snapshot,
                std::string* error);

// Reads a file written by writeState; nullopt with `error` when it is missing
// or unusable.
std::optional<SavedState> readState(const std::string& file, std::string* error);

// The parser behind readState, on bytes in memory (fuzzed).
std::optional<SavedState> parseState(std::string_view data, std::string* error);

// The file name a resource's state is kept under, inside the state folder.
std::string stateFileName(const std::string& resource, Encoding encoding);

}  // namespace kcp::cache
