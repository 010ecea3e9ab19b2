#!/usr/bin/env bash
# Impersonation, selectors and node identities (issue 15): cached reads are
# authorized exactly as kube-apiserver authorizes them. A matrix of token and
# certificate users with and without impersonate rights (legacy and
# constrained), in delegate and trust-local mode, impersonating users,
# groups, uids, extras, service accounts, nodes and anonymous; LIST, GET and
# WATCH; JSON and protobuf; rv=0, rv=N and consistent; and a kubelet's node
# identity reading its pods by field selector and secrets its pods use: the
# same status codes and Status bytes through the proxy as directly. Then the
# leak this fixes, kubectl --as through both modes, a certificate user's
# impersonated write, and a trust-local kubeconfig kubectl uses as it is.
source "$(dirname "$0")/lib.sh"
PROXY_BIN=${PROXY_BIN:-$ROOT/build/kube-cache-proxy}
state=$(mktemp -d)
K=$ADMIN_KUBECONFIG
port=$(free_port) aport=$(free_port) tport=$(free_port) taport=$(free_port)
proxies=()
trap 'kill "${proxies[@]}" 2>/dev/null; wait "${proxies[@]}" 2>/dev/null; rm -rf "$state"; rm -f "$_log"' EXIT

setup() { # idempotent: the test cluster may be reused
  kubectl --kubeconfig "$K" apply -f - <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: imp}
---
apiVersion: v1
kind: Namespace
metadata: {name: authz-b}
---
apiVersion: v1
kind: Namespace
metadata: {name: node-pods}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: gateway, namespace: imp}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: constrained, namespace: imp}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: authz-b}
---
# Legacy impersonation, as gateways and dashboards have it, and reads of
# its own across the cluster (the leak: the proxy served those to whomever
# the gateway impersonated).
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kcp-imp-legacy}
rules:
- {apiGroups: [""], resources: [users], verbs: [impersonate], resourceNames: [team-a-reader, no-access, "system:anonymous", "system:node:$NODE_NAME"]}
- {apiGroups: [""], resources: [groups], verbs: [impersonate], resourceNames: [team-a-devs, "system:nodes"]}
- {apiGroups: [""], resources: [serviceaccounts], verbs: [impersonate], resourceNames: [reader]}
- {apiGroups: [authentication.k8s.io], resources: [uids], verbs: [impersonate], resourceNames: [uid-1]}
- {apiGroups: [authentication.k8s.io], resources: [userextras/scopes], verbs: [impersonate]}
- {apiGroups: [""], resources: [configmaps, secrets, pods], verbs: [get, list, watch]}
---
# Constrained impersonation (KEP 5284): team-a-reader only for reads of
# configmaps and pods, and the node only for its pods.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kcp-imp-constrained}
rules:
- {apiGroups: [authentication.k8s.io], resources: [users], verbs: ["impersonate:user-info"], resourceNames: [team-a-reader]}
- {apiGroups: [authentication.k8s.io], resources: [groups], verbs: ["impersonate:user-info"], resourceNames: [team-a-devs]}
- {apiGroups: [authentication.k8s.io], resources: [nodes], verbs: ["impersonate:arbitrary-node"], resourceNames: [$NODE_NAME]}
- {apiGroups: [""], resources: [configmaps, pods], verbs: ["impersonate-on:user-info:list", "impersonate-on:user-info:get", "impersonate-on:user-info:watch"]}
- {apiGroups: [""], resources: [pods], verbs: ["impersonate-on:arbitrary-node:list", "impersonate-on:arbitrary-node:watch"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kcp-imp-legacy}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kcp-imp-legacy}
subjects:
- {kind: ServiceAccount, name: gateway, namespace: imp}
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: cert-gateway}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kcp-imp-constrained}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kcp-imp-constrained}
subjects: [{kind: ServiceAccount, name: constrained, namespace: imp}]
---
# cert-gateway is also a trust-local proxy's own identity here.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kcp-imp-proxy}
rules:
- {apiGroups: [authentication.k8s.io], resources: [tokenreviews], verbs: [create]}
- {apiGroups: [authorization.k8s.io], resources: [subjectaccessreviews], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kcp-imp-proxy}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kcp-imp-proxy}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: cert-gateway}]
---
# team-a-devs may read configmaps in default: a group changes the answer.
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: team-a-devs-view, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: team-a-devs}]
---
# A pod on the node that uses node-secret: the Node authorizer lets the node read it, not authz-probe.
apiVersion: v1
kind: Secret
metadata: {name: node-secret, namespace: node-pods}
stringData: {k: v}
---
apiVersion: v1
kind: Pod
metadata: {name: on-node, namespace: node-pods}
spec:
  nodeName: $NODE_NAME
  containers: [{name: c, image: busybox}]
  volumes: [{name: s, secret: {secretName: node-secret}}]
---
apiVersion: v1
kind: Pod
metadata: {name: elsewhere, namespace: node-pods}
spec:
  nodeName: kcp-node-2
  containers: [{name: c, image: busybox}]
YAML
  for ns in team-a default node-pods; do
    kubectl --kubeconfig "$K" -n "$ns" create configmap authz-probe --from-literal=k=v --dry-run=client -o yaml |
      kubectl --kubeconfig "$K" apply -f -
    kubectl --kubeconfig "$K" -n "$ns" create secret generic authz-probe --from-literal=k=v --dry-run=client -o yaml |
      kubectl --kubeconfig "$K" apply -f -
  done
  kubectl --kubeconfig "$K" -n team-a run imp-pod --image=busybox --restart=Never --dry-run=client -o yaml |
    kubectl --kubeconfig "$K" apply -f -
}
check "RBAC for legacy and constrained impersonators, a node's pods and secrets" setup
# The delegate proxy's own identity has exactly the ClusterRole the example manifest gives it.
proxy_role() {
  /usr/bin/python3 -c 'import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ClusterRole":
        d["metadata"] = {"name": "kcp-test-proxy"}
        print("---"); print(yaml.safe_dump(d))' "$ROOT/docker/examples/shared.yaml" >"$state/role.yaml" &&
    kubectl --kubeconfig "$K" apply -f "$state/role.yaml" &&
    kubectl --kubeconfig "$K" create clusterrolebinding kcp-test-proxy --clusterrole kcp-test-proxy \
      --user kube-cache-proxy --dry-run=client -o yaml | kubectl --kubeconfig "$K" apply -f -
}
check "the delegate proxy's identity gets the example manifest's ClusterRole" proxy_role

# Delegate mode (client certificates of the cluster's CA accepted), and
# trust-local mode whose own identity is cert-gateway.
"$PROXY_BIN" --upstream-kubeconfig "$PROXY_KUBECONFIG" --state-dir "$state/delegate" --listen "127.0.0.1:$port" \
  --admin-listen "127.0.0.1:$aport" --cache-resources configmaps,secrets,pods --client-ca-file "$CA_FILE" \
  --audit-log-path "$state/audit.log" >"$state/delegate.log" 2>&1 &
proxies+=($!)
"$PROXY_BIN" --upstream-kubeconfig "$CERT_GATEWAY_KUBECONFIG" --state-dir "$state/trust" --listen "127.0.0.1:$tport" \
  --admin-listen "127.0.0.1:$taport" --cache-resources configmaps,secrets,pods --auth-mode trust-local \
  --write-kubeconfig "$state/trust.kubeconfig" >"$state/trust.log" 2>&1 &
proxies+=($!)
ready() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return 0; sleep 0.2; done; return 1; }
check "both proxies sync their caches" bash -c "$(declare -f ready); ready $aport && ready $taport"

gateway=$(kubectl --kubeconfig "$K" -n imp create token gateway --duration 1h)
constrained=$(kubectl --kubeconfig "$K" -n imp create token constrained --duration 1h)
reader=$(token_of "$TEAM_A_READER_KUBECONFIG")
noaccess=$(token_of "$NO_ACCESS_KUBECONFIG")
pki=$KCLUSTER_DIR/pki
rv() { kubectl --kubeconfig "$K" get --raw "/api/v1/$1?limit=1" | jq -r .metadata.resourceVersion; }
cat >"$state/matrix.json" <<JSON
{
  "apiserver": "$APISERVER_URL", "cluster_ca": "$CA_FILE", "node": "$NODE_NAME",
  "rv": {"configmaps": "$(rv configmaps)", "pods": "$(rv pods)"},
  "proxies": {"delegate": {"port": $port, "ca": "$state/delegate/pki/ca.crt"},
              "trust-local": {"port": $tport, "ca": "$state/trust/pki/ca.crt"}},
  "identities": {
    "serviceaccount gateway (legacy impersonator, token)": {"proxy": "delegate", "token": "$gateway"},
    "serviceaccount constrained (constrained impersonator, token)": {"proxy": "delegate", "token": "$constrained"},
    "team-a-reader (no impersonate rights, token)": {"proxy": "delegate", "token": "$reader"},
    "no-access (token)": {"proxy": "delegate", "token": "$noaccess"},
    "cert-gateway (legacy impersonator, certificate)": {"proxy": "delegate", "cert": "$pki/cert-gateway.crt", "key": "$pki/cert-gateway.key"},
    "admin (system:masters, certificate)": {"proxy": "delegate", "cert": "$pki/admin.crt", "key": "$pki/admin.key",
      "skip": ["node"]},
    "trust-local client (acts as cert-gateway)": {"proxy": "trust-local",
      "direct": {"cert": "$pki/cert-gateway.crt", "key": "$pki/cert-gateway.key"}},
    "node $NODE_NAME (certificate)": {"proxy": "delegate", "cert": "$pki/node-1.crt", "key": "$pki/node-1.key", "node_reads": true}
  }
}
JSON
matrix() { /usr/bin/python3 "$ROOT/tests/e2e/impersonation_matrix.py" "$state/matrix.json" | tee "$state/matrix.out"; }
check "impersonation and node matrix: the same codes and Status bytes through the proxy as directly" matrix
served() { proxy_requests "$1" cache; }  # how many reads a proxy answered from its cache
cached_too() {
  local d t; d=$(served $aport) t=$(served $taport)
  echo "served from the cache: $d by the delegate proxy, $t by the trust-local one"
  ((d > 200 && t > 50))
}
check "and the allowed reads were served from the cache" cached_too

# The leak this closes: a gateway allowed to read everything, impersonating
# a user who may not read default, got default's configmaps from the cache.
leak() {
  local path="/api/v1/namespaces/default/configmaps?resourceVersion=0" p d
  p=$(curl -s -o "$state/leak.p" -w '%{http_code}' --cacert "$state/delegate/pki/ca.crt" -A kcp \
    -H "Authorization: Bearer $gateway" -H "Impersonate-User: team-a-reader" "https://127.0.0.1:$port$path")
  d=$(curl -s -o "$state/leak.d" -w '%{http_code}' --cacert "$CA_FILE" -A kcp \
    -H "Authorization: Bearer $gateway" -H "Impersonate-User: team-a-reader" "$APISERVER_URL$path")
  echo "proxy $p, kube-apiserver $d: $(cat "$state/leak.p")"
  [[ $p == 403 && $d == 403 ]] && cmp -s "$state/leak.p" "$state/leak.d"
}
check "a gateway impersonating team-a-reader is refused default's configmaps, as directly" leak

# kubectl --as, with a certificate (delegate) and through a trust-local
# proxy's own kubeconfig (no terminal: it must not ask for a password).
printf 'apiVersion: v1\nkind: Config\nclusters: [{name: p, cluster: {server: "https://127.0.0.1:%s", certificate-authority: "%s"}}]\nusers: [{name: u, user: {client-certificate: "%s", client-key: "%s"}}]\ncontexts: [{name: p, context: {cluster: p, user: u}}]\ncurrent-context: p\n' \
  "$port" "$state/delegate/pki/ca.crt" "$pki/cert-gateway.crt" "$pki/cert-gateway.key" >"$state/cert-gateway.kubeconfig"
same() { # same PROXY-KUBECONFIG DIRECT-KUBECONFIG ARGS...: identical output and exit code
  local p=$1 d=$2 a b ra rb; shift 2
  a=$(kubectl --kubeconfig "$p" "$@" 2>&1 </dev/null); ra=$?
  b=$(kubectl --kubeconfig "$d" "$@" 2>&1 </dev/null); rb=$?
  echo "proxy ($ra): $a"; echo "direct ($rb): $b"
  [[ $a == "$b" && $ra == "$rb" ]]
}
for mode in cert-gateway trust; do
  check "kubectl --as team-a-reader ($mode): team-a's configmaps, as directly" \
    same "$state/$mode.kubeconfig" "$CERT_GATEWAY_KUBECONFIG" --as team-a-reader -n team-a get configmaps -o name
  check "kubectl --as team-a-reader ($mode): default's refused, as directly" \
    same "$state/$mode.kubeconfig" "$CERT_GATEWAY_KUBECONFIG" --as team-a-reader -n default get configmaps
  check "kubectl --as someone not allowed ($mode): refused, as directly" \
    same "$state/$mode.kubeconfig" "$CERT_GATEWAY_KUBECONFIG" --as somebody-else -n team-a get configmaps
done
write_as() { # a certificate user's impersonated write goes up with its body, as the impersonated user
  local out; out=$(kubectl --kubeconfig "$state/cert-gateway.kubeconfig" --as team-a-reader -n team-a create configmap imp-write 2>&1)
  echo "$out"
  grep -q 'User "team-a-reader" cannot create resource "configmaps"' <<<"$out" || return 1
  printf 'apiVersion: v1\nkind: Config\nclusters: [{name: p, cluster: {server: "https://127.0.0.1:%s", certificate-authority: "%s"}}]\nusers: [{name: u, user: {client-certificate: "%s", client-key: "%s"}}]\ncontexts: [{name: p, context: {cluster: p, user: u}}]\ncurrent-context: p\n' \
    "$port" "$state/delegate/pki/ca.crt" "$pki/admin.crt" "$pki/admin.key" >"$state/admin-proxy.kubeconfig"
  kubectl --kubeconfig "$K" -n imp delete configmap imp-write --ignore-not-found >/dev/null
  kubectl --kubeconfig "$state/admin-proxy.kubeconfig" --as system:serviceaccount:imp:gateway --as-group system:masters \
    -n imp create configmap imp-write --from-literal=payload="$(head -c 20000 /dev/zero | tr '\0' x)" || return 1
  [[ $(kubectl --kubeconfig "$K" -n imp get configmap imp-write -o jsonpath='{.data.payload}' | wc -c) == 20000 ]] || return 1
  echo "created by: $(kubectl --kubeconfig "$K" -n imp get configmap imp-write -o jsonpath='{.metadata.managedFields[0].manager}')"
}
check "a certificate user's impersonated writes: refused as team-a-reader, made with a 20 KB body as masters" write_as
no_prompt() { # a trust-local kubeconfig: kubectl uses it as it is, without a terminal
  kubectl --kubeconfig "$state/trust.kubeconfig" -n team-a get configmaps authz-probe -o name </dev/null
}
check "the trust-local proxy's written kubeconfig works for kubectl without a terminal" no_prompt
audited() {
  jq -s -e '[.[] | select(.impersonatedBy != null)] | length > 0' "$state/audit.log" >/dev/null || return 1
  jq -c 'select(.impersonatedBy != null)' "$state/audit.log" | sed -n 1,2p
}
check "the audit log names impersonated users and who impersonated them" audited
check "no sanitizer report" bash -c "! grep -hE 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' '$state/delegate.log' '$state/trust.log'"
finish
