// kube-apiserver's `Status` error objects (meta/v1 Status), encoded exactly as
// kube-apiserver sends them, so a Kubernetes client sees the same error it
// would get from the apiserver itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kcp::encoder {

// metav1.StatusDetails; empty fields are omitted as Go's `omitempty` does.
struct StatusDetails {
  std::string name{};
  std::string group{};
  std::string kind{};
  int64_t retry_after_seconds = 0;
};

// A failure Status: HTTP code, machine-readable reason (metav1.StatusReason,
// e.g. "Forbidden", "Expired", "ServiceUnavailable") and human message.
struct Status {
  int code = 500;
  std::string reason{};
  std::string message{};
  StatusDetails details{};
};

// The JSON body, field order as kube-apiserver writes it, with its trailing newline.
std::string statusJson(const Status& status);

// The protobuf body (for clients that take protobuf), enveloped, as gogo-protobuf writes it.
std::string statusProtobuf(const Status& status);

}  // namespace kcp::encoder
