// Who sent a request, as far as the proxy can tell before asking
// kube-apiserver: the proxy itself (the cleartext listener, trust-local
// mode), a bearer token to review, a verified client certificate's user,
// anonymous, or nobody (401).
#pragma once

#include <string>

#include "encoder/status.h"
#include "proxy/auth/access_review.h"
#include "proxy/net/exchange.h"
#include "proxy/request/http.h"

namespace kcp::proxy {

// How a request is identified.
struct Identity {
  enum class Kind {
    kProxy,           // acts as the proxy (cleartext loopback listener, trust-local mode)
    kToken,           // a bearer token, authenticated by TokenReview when the proxy needs the user
    kUser,            // a verified client certificate, or system:anonymous
    kOwnCredentials,  // credentials the proxy does not read (not a bearer token): forwarded as they
                      // are
    kUnauthenticated,  // nothing, and anonymous requests are refused: 401
  };
  Kind kind = Kind::kProxy;
  std::string token;
  UserInfo user;
};

// How clients of the TLS listener are identified (--auth-mode and friends).
struct IdentityOptions {
  bool delegate = true;    // else trust-local: every client acts as the proxy
  bool anonymous = false;  // --anonymous-auth
};

// Decides from the request's Authorization header and the connection (TLS,
// the certificate the handshake verified): see Identity::Kind.
Identity identify(const RequestHead& head, const PeerInfo& peer, const IdentityOptions& options);

// kube-apiserver's 401 Status.
encoder::Status unauthorizedStatus();

}  // namespace kcp::proxy
