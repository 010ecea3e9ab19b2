// Impersonation headers as kube-apiserver reads them, and its impersonation
// modes run to a decision with authorizer answers taken from the input, on
// arbitrary bytes: never a crash, always a decision, and a decided user is
// the one the headers named.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "proxy/auth/impersonation.h"

using namespace kcp::proxy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  // Lines "name: value" are headers; the byte after the last line seeds the answers.
  Headers headers;
  size_t at = 0;
  while (at < input.size()) {
    const size_t nl = input.find('\n', at);
    const std::string line =
        input.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    at = nl == std::string::npos ? input.size() : nl + 1;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    headers.push_back({toLower(line.substr(0, colon)), line.substr(colon + 1)});
  }
  const ImpersonationHeaders read = readImpersonationHeaders(headers);
  if (read.invalid && read.invalid->code != 400) __builtin_trap();
  if (!read.present || read.invalid) return 0;
  UserInfo requestor{"system:serviceaccount:ns:sa",
                     "",
                     {"system:authenticated"},
                     {{"authentication.kubernetes.io/node-name", {"node-1"}}}};
  AccessAttributes request;
  request.verb = "list";
  request.version = "v1";
  request.resource = "pods";
  std::map<std::string, ReviewAnswer> answers;
  const uint8_t seed = size > 0 ? data[size - 1] : 0;
  for (int step = 0; step < 1000; ++step) {
    const auto d =
        decideImpersonation(requestor, read.wanted, request, seed % 6 - 1, seed & 0x40,
                            [&](const AccessAttributes& a) -> std::optional<ReviewAnswer> {
                              const auto it = answers.find(accessKey(a));
                              if (it == answers.end()) return std::nullopt;
                              return it->second;
                            });
    switch (d.kind) {
      case ImpersonationDecision::Kind::kNeedReview: {
        const std::string key = accessKey(d.review);
        if (answers.count(key)) __builtin_trap();  // asked twice: it would never end
        answers[key] = ReviewAnswer{(std::hash<std::string>{}(key) + seed) % 3 != 0, "reason", ""};
        continue;
      }
      case ImpersonationDecision::Kind::kImpersonated:
        if (d.user.name != read.wanted.name) __builtin_trap();
        return 0;
      case ImpersonationDecision::Kind::kRefused:
        if (d.refusal.code != 403) __builtin_trap();
        return 0;
      case ImpersonationDecision::Kind::kAmbiguous:
        return 0;
    }
  }
  __builtin_trap();  // no decision
}
