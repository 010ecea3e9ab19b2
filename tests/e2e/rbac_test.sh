#!/usr/bin/env bash
# The test cluster's users get exactly the access the README promises.
source "$(dirname "$0")/lib.sh"

reader=$(token_of "$TEAM_A_READER_KUBECONFIG")
noaccess=$(token_of "$NO_ACCESS_KUBECONFIG")

check "admin lists namespaces" kubectl --kubeconfig "$ADMIN_KUBECONFIG" get ns team-a default
check "team-a-reader lists configmaps in team-a" \
  kubectl --kubeconfig "$TEAM_A_READER_KUBECONFIG" -n team-a get configmaps
check "team-a-reader lists pods in team-a" expect_code 200 "$reader" /api/v1/namespaces/team-a/pods
check "team-a-reader watches configmaps in team-a" \
  expect_code 200 "$reader" "/api/v1/namespaces/team-a/configmaps?watch=true&timeoutSeconds=1"
check "team-a-reader is refused (403) configmaps in default" \
  expect_code 403 "$reader" /api/v1/namespaces/default/configmaps
check "team-a-reader is refused (403) secrets in team-a" \
  expect_code 403 "$reader" /api/v1/namespaces/team-a/secrets
check "team-a-reader is refused (403) configmaps across namespaces" \
  expect_code 403 "$reader" /api/v1/configmaps
check "team-a-reader cannot create in team-a" fails \
  kubectl --kubeconfig "$TEAM_A_READER_KUBECONFIG" -n team-a create configmap nope
for path in /api/v1/namespaces/team-a/configmaps /api/v1/namespaces/default/configmaps \
  /api/v1/pods /api/v1/namespaces; do
  check "no-access is refused (403) $path" expect_code 403 "$noaccess" "$path"
done
check "an unknown token is refused (401)" expect_code 401 not-a-token /api/v1/namespaces
check "kubectl reports no-access as Forbidden" bash -c \
  "kubectl --kubeconfig '$NO_ACCESS_KUBECONFIG' -n team-a get configmaps 2>&1 | grep -q 'Forbidden'"
finish
