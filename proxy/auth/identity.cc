#include "proxy/auth/identity.h"

namespace kcp::proxy {

Identity identify(const RequestHead& head, const PeerInfo& peer, const IdentityOptions& options) {
  Identity who;
  // The cleartext listener is loopback only (a sidecar's): it acts as the proxy.
  if (!peer.tls || !options.delegate) return who;
  if (const std::string* authorization = head.header("authorization")) {
    if (authorization->size() > 7 && authorization->starts_with("Bearer ")) {
      who.kind = Identity::Kind::kToken;
      who.token = authorization->substr(7);
    } else {
      who.kind = Identity::Kind::kOwnCredentials;
    }
    return who;
  }
  if (!peer.cert_user.empty()) {
    who.kind = Identity::Kind::kUser;
    who.user.name = peer.cert_user;
    who.user.groups = peer.cert_groups;
    who.user.groups.push_back("system:authenticated");
    return who;
  }
  if (options.anonymous) {
    who.kind = Identity::Kind::kUser;
    who.user.name = "system:anonymous";
    who.user.groups = {"system:unauthenticated"};
    return who;
  }
  who.kind = Identity::Kind::kUnauthenticated;
  return who;
}

encoder::Status unauthorizedStatus() {
  return {401, "Unauthorized", "Unauthorized", {}};
}

}  // namespace kcp::proxy
