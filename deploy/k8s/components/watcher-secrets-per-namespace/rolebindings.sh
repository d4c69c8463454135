#!/usr/bin/env bash
# rolebindings.sh [SELECTOR] [RIPPLE_NAMESPACE]: print one RoleBinding per namespace matching
# SELECTOR (default ripple.io/tenant), granting the ripple-watcher ServiceAccount of
# RIPPLE_NAMESPACE (default ripple) the ClusterRole ripple-watcher-secrets there. Apply with
#   deploy/k8s/components/watcher-secrets-per-namespace/rolebindings.sh | kubectl apply -f -
# and again whenever tenant namespaces are added (a controller or a CI job can run it).
set -euo pipefail
selector="${1:-ripple.io/tenant}"
ripple_ns="${2:-ripple}"
for ns in $(kubectl get namespaces -l "$selector" -o jsonpath='{.items[*].metadata.name}'); do
  cat <<YAML
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: ripple-watcher-secrets
  namespace: $ns
  labels:
    app.kubernetes.io/part-of: ripple
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: ripple-watcher-secrets
subjects:
  - kind: ServiceAccount
    name: ripple-watcher
    namespace: $ripple_ns
YAML
done
