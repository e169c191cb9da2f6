#!/usr/bin/env bash
# check-kubernetes.sh -- check deploy/kubernetes and the router config offline (used by .ci/run):
#   1. the router's ConfigMap source (deploy/kubernetes/router/haproxy.cfg) is what
#      deploy/kubernetes/render-router.sh renders from deploy/router/haproxy.cfg.in now;
#   2. HAProxy accepts it, and the local cluster's rendering of the same template
#      (`haproxy -c`; haproxy is in scripts/packages.txt, group test);
#   3. `kubectl kustomize deploy/kubernetes` builds (kubectl as installed; else Debian's
#      kubernetes-client is installed for it);
#   4. every object it builds passes the Kubernetes JSON schemas bundled in the npm package
#      kubernetes-models (pinned in deploy/kubernetes/validate/package-lock.json, installed
#      with `npm ci`), and the rules of deploy/kubernetes/validate/validate.mjs.
# Nothing talks to a cluster. Exit 0 when all pass.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
k8s=deploy/kubernetes
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

need() { # need CMD GROUP-OR-PACKAGE...: install what provides CMD when it is missing
    command -v "$1" >/dev/null && return 0
    local cmd=$1
    shift
    echo "check-kubernetes: installing $* for $cmd"
    if [[ $1 == --apt ]]; then
        shift
        [[ $(id -u) == 0 ]] || { echo "check-kubernetes: $cmd is missing (apt-get install $*)" >&2 && exit 1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null
    else
        scripts/install-deps.sh "$@"
    fi
}
need haproxy test
need node bench
need npm bench
need kubectl --apt kubernetes-client

echo "check-kubernetes: 1. $k8s/router/haproxy.cfg is rendered from deploy/router/haproxy.cfg.in"
"$k8s/render-router.sh" "$tmp/haproxy.cfg"
if ! diff -u "$k8s/router/haproxy.cfg" "$tmp/haproxy.cfg"; then
    echo "check-kubernetes: $k8s/router/haproxy.cfg is stale: run $k8s/render-router.sh" >&2
    exit 1
fi

echo "check-kubernetes: 2. haproxy -c on the Kubernetes and the local renderings"
deploy/router/render.sh --bind 127.0.0.1:8080 node-1=127.0.0.1:8081 node-2=127.0.0.1:8082 \
    >"$tmp/local.cfg"
haproxy -c -q -f "$tmp/haproxy.cfg"
haproxy -c -q -f "$tmp/local.cfg"

echo "check-kubernetes: 3. kubectl kustomize $k8s ($(kubectl version --client 2>/dev/null | head -n 1))"
kubectl kustomize "$k8s" >"$tmp/all.yaml"

echo "check-kubernetes: 4. schemas (kubernetes-models) and sandboxd's rules"
if [[ ! -d $k8s/validate/node_modules || $k8s/validate/package-lock.json -nt $k8s/validate/node_modules ]]; then
    (cd "$k8s/validate" && npm ci --no-audit --no-fund >/dev/null)
    touch "$k8s/validate/node_modules"
fi
node "$k8s/validate/validate.mjs" <"$tmp/all.yaml"
echo "check-kubernetes: ok"
