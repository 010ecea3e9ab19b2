// kube-apiserver's continue tokens (k8s.io/apiserver pkg/storage/continue.go):
// base64url without padding of {"v":"meta.k8s.io/v1","rv":N,"start":"KEY"},
// where KEY is the next key to list, relative to the list's key prefix. Using
// the same format lets a client carry a token between the proxy and
// kube-apiserver.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kcp::encoder {

struct ContinueToken {
  uint64_t resource_version = 0;
  // The next key, relative to the list's key prefix ("name\0" in a namespace,
  // "namespace/name\0" across all). kube-apiserver's watch cache writes it
  // with a leading '/' (its etcd path writes it without); decoding removes it.
  std::string start;
};

std::string encodeContinueToken(const ContinueToken& token);

// Decodes a token exactly as kube-apiserver would accept it; nullopt for
// anything else (the caller forwards, so the client gets upstream's error).
std::optional<ContinueToken> decodeContinueToken(std::string_view text);

}  // namespace kcp::encoder
