#!/usr/bin/env bash
# kubectl: a tool, not a server (no process, no port). Built from the same Go module as the
# kube-apiserver (stack/build/kube pins k8s.io/kubernetes and every staging module), cached as
# $RIPPLE_CACHE/bin/kubectl-<version>. `install` and `up` build it once; `up` writes its path
# to $RIPPLE_RUN/env as RIPPLE_KUBECTL. `kubectl kustomize` is the kustomize the deploy tests use.
#   "$RIPPLE_KUBECTL" --kubeconfig "$KUBECONFIG" get ns

kubectl_version() { apiserver_version; }

kubectl_bin() { echo "$RIPPLE_CACHE/bin/kubectl-$(kubectl_version)"; }

kubectl_install() {
  kube_build kubectl kubectl "$(kubectl_bin)" "minutes on 2 cores when nothing is cached"
}

kubectl_env() {
  local bin; bin="$(kubectl_bin)"
  if [[ -x "$bin" ]]; then echo "RIPPLE_KUBECTL=$bin"; fi
}
