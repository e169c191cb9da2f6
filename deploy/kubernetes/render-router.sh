#!/usr/bin/env bash
# render-router.sh -- write router/haproxy.cfg (the router's ConfigMap, see kustomization.yaml)
# from deploy/router/haproxy.cfg.in, the template the local cluster uses, for the
# StatefulSet's pods sandboxd-0 .. sandboxd-$((MAX_REPLICAS - 1)) in NAMESPACE. Run it again
# after changing either (or the HPA's maxReplicas beyond MAX_REPLICAS);
# scripts/check-kubernetes.sh fails while the committed file is stale.
#   render-router.sh [OUT]   (default: router/haproxy.cfg beside this script; - for stdout)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAX_REPLICAS=${MAX_REPLICAS:-8}
NAMESPACE=${NAMESPACE:-sandboxd}
out=${1:-$here/router/haproxy.cfg}
nodes=()
for ((i = 0; i < MAX_REPLICAS; i++)); do
    nodes+=("sandboxd-$i=sandboxd-$i.sandboxd-headless.$NAMESPACE.svc.cluster.local:8080")
done
if [[ $out == - ]]; then
    "$here/../router/render.sh" --bind :8080 --dns "${nodes[@]}"
else
    mkdir -p "$(dirname "$out")"
    "$here/../router/render.sh" --bind :8080 --dns "${nodes[@]}" >"$out"
fi
