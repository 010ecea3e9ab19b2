#!/usr/bin/env bash
# Delegate auth: the proxy serves a cached read only to a client that
# kube-apiserver would allow the same read. An RBAC matrix (token users, a
# service account with a namespaced role, a group binding, a cluster-admin
# client certificate; get, list and watch; three resources; four scopes;
# JSON and protobuf) through the proxy and directly gets the same
# allow/deny and the same Status bodies, also right after a RoleBinding is
# removed (allowed at most for the authorization cache's TTL). Requests
# without credentials get 401 unless --anonymous-auth. The audit log has a
# line for each read the cache answered or refused.
source "$(dirname "$0")/lib.sh"
PROXY_BIN=${PROXY_BIN:-$ROOT/build/kube-cache-proxy}
state=$(mktemp -d)
K=$ADMIN_KUBECONFIG
port=$(free_port) aport=$(free_port)
"$PROXY_BIN" --upstream-kubeconfig "$K" --state-dir "$state" --listen "127.0.0.1:$port" \
  --admin-listen "127.0.0.1:$aport" --cache-resources configmaps,secrets,pods --client-ca-file "$CA_FILE" \
  --authorization-cache-authorized-ttl 3s --authorization-cache-unauthorized-ttl 3s \
  --audit-log-path "$state/audit.log" >"$state/proxy.log" 2>&1 &
proxy=$!
trap 'kill $proxy 2>/dev/null; wait $proxy 2>/dev/null; rm -rf "$state"; rm -f "$_log"' EXIT
ready() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null && return 0; sleep 0.2; done; return 1; }
check "the proxy syncs its cache" ready

# A service account with a namespaced role, and a group binding (every
# service account of authz-b may read secrets in team-a).
setup() { # idempotent: the test cluster may be reused (and has no controller to delete namespaces)
  kubectl --kubeconfig "$K" apply -f - <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: authz-b}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: authz-b}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-reader, namespace: authz-b}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: cm-reader, namespace: authz-b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-reader}
subjects: [{kind: ServiceAccount, name: reader, namespace: authz-b}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: team-a}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: sa-group-secrets, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:serviceaccounts:authz-b"}]
YAML
  for ns in team-a authz-b default; do
    kubectl --kubeconfig "$K" -n "$ns" create configmap authz-probe --from-literal=k=v --dry-run=client -o yaml |
      kubectl --kubeconfig "$K" apply -f -
    kubectl --kubeconfig "$K" -n "$ns" create secret generic authz-probe --from-literal=k=v --dry-run=client -o yaml |
      kubectl --kubeconfig "$K" apply -f -
  done
}
check "a service account with a role, and a group binding" setup
sa_token=$(kubectl --kubeconfig "$K" -n authz-b create token reader --duration 1h)
cat >"$state/users.json" <<JSON
{
  "team-a-reader": {"token": "$(token_of "$TEAM_A_READER_KUBECONFIG")"},
  "no-access": {"token": "$(token_of "$NO_ACCESS_KUBECONFIG")"},
  "serviceaccount authz-b/reader": {"token": "$sa_token"},
  "cluster-admin (client certificate)": {"cert": "$KCLUSTER_DIR/pki/admin.crt", "key": "$KCLUSTER_DIR/pki/admin.key"}
}
JSON
matrix() {
  (cd "$ROOT/tests/e2e" && /usr/bin/python3 authz_matrix.py "$port" "$state/pki/ca.crt" "$APISERVER_URL" "$CA_FILE" \
    "$state/users.json") | tee "$state/matrix.out"
}
check "RBAC matrix: the same allow/deny and Status bodies through the proxy as directly" matrix
served_from_cache() { proxy_requests "$aport" cache; }
mostly_cached() { # at least 4 in 5 (protobuf's first reads, and protobuf NotFound, are forwarded)
  local n allowed; n=$(served_from_cache); allowed=$(grep -o '([0-9]* allowed' "$state/matrix.out" | tr -dc 0-9)
  echo "$n of the $allowed allowed reads served from the cache"; ((allowed > 0 && n * 5 >= allowed * 4))
}
check "and most allowed reads were served from the cache" mostly_cached

# Right after a RoleBinding goes, the proxy may allow for its cache's TTL (3 s here), then refuses.
code() { curl -s -o /dev/null -w '%{http_code}' --cacert "$state/pki/ca.crt" -H "Authorization: Bearer $sa_token" "https://127.0.0.1:$port$1"; }
revoked() {
  local path=/api/v1/namespaces/authz-b/configmaps?resourceVersion=0
  [[ $(code "$path") == 200 ]] || { echo "not allowed before the removal"; return 1; }
  kubectl --kubeconfig "$K" -n authz-b delete rolebinding cm-reader
  local t0=$SECONDS
  while [[ $(code "$path") == 200 ]]; do
    ((SECONDS - t0 <= 6)) || { echo "still allowed $((SECONDS - t0)) s after the removal"; return 1; }
    sleep 0.2
  done
  echo "refused $((SECONDS - t0)) s after the RoleBinding was removed"
  [[ $(code "$path") == 403 ]]
}
check "a removed RoleBinding: allowed at most for the cache TTL, then 403" revoked
check "after it, the matrix is identical again" matrix
check "no credentials: 401 (no --anonymous-auth)" \
  bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' --cacert '$state/pki/ca.crt' https://127.0.0.1:$port/api/v1/namespaces/team-a/configmaps) == 401 ]]"
bad_token() {
  local out; out=$(curl -s --cacert "$state/pki/ca.crt" -H "Authorization: Bearer not-a-token" \
    "https://127.0.0.1:$port/api/v1/namespaces/team-a/configmaps?resourceVersion=0")
  echo "$out"; jq -e '.code == 401 and .reason == "Unauthorized"' <<<"$out" >/dev/null
}
check "an unknown token on a cached read: 401 Unauthorized Status" bad_token
audited() {
  # Every line JSON; allowed reads with their bytes, refusals with their code, each with its user.
  jq -e -s 'length > 0' "$state/audit.log" >/dev/null || return 1
  local allow forbid unauth
  allow=$(jq -s '[.[] | select(.decision == "allow" and .user == "team-a-reader" and .namespace == "team-a" and .code == 200 and .bytes > 0)] | length' "$state/audit.log")
  forbid=$(jq -s '[.[] | select(.decision == "forbid" and .user == "no-access" and .code == 403)] | length' "$state/audit.log")
  unauth=$(jq -s '[.[] | select(.decision == "unauthenticated" and .code == 401)] | length' "$state/audit.log")
  echo "audit log: $(wc -l <"$state/audit.log") lines; team-a-reader served in team-a: $allow; no-access refused: $forbid; unauthenticated: $unauth"
  head -2 "$state/audit.log"
  ((allow > 0 && forbid > 0 && unauth > 0))
}
check "the audit log records cached reads served and refused, with user, decision, code and bytes" audited
check "the proxy logged no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' '$state/proxy.log'"
finish
