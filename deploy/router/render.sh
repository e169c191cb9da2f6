#!/usr/bin/env bash
# render.sh -- write the router's HAProxy config from deploy/router/haproxy.cfg.in for one list
# of replicas: the local cluster (deploy/local/cluster.sh) and Kubernetes
# (deploy/kubernetes/router/haproxy.cfg, see scripts/check-kubernetes.sh) use the same template.
#
#   render.sh --bind ADDR:PORT [--dns] NODE=HOST:PORT...  > haproxy.cfg
#
# NODE is a replica's NODE_ID ([a-z0-9-]{1,40}); HOST:PORT where it listens. --dns: the hosts
# are DNS names that may not resolve yet (Kubernetes pods of a StatefulSet that is scaled
# down): HAProxy then resolves them at run time through the nameservers of /etc/resolv.conf
# and starts without them.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bind="" dns=0 nodes=()
while (($#)); do
    case $1 in
    --bind) bind=$2 && shift 2 ;;
    --dns) dns=1 && shift ;;
    -h | --help) sed -n '2,12p' "$0" && exit 0 ;;
    *=*) nodes+=("$1") && shift ;;
    *) echo "render.sh: unknown argument '$1' (see --help)" >&2 && exit 2 ;;
    esac
done
[[ -n $bind ]] || { echo "render.sh: --bind ADDR:PORT is required" >&2 && exit 2; }
((${#nodes[@]})) || { echo "render.sh: name at least one NODE=HOST:PORT" >&2 && exit 2; }

server_opts="" resolvers=""
if ((dns)); then
    server_opts="resolvers dns init-addr none resolve-prefer ipv4"
    resolvers=$'resolvers dns\n    parse-resolv-conf\n    hold valid 5s\n    hold nx 1s\n    hold obsolete 5s'
fi
pool="" any="" backends=""
for n in "${nodes[@]}"; do
    name=${n%%=*} addr=${n#*=}
    if ! [[ $name =~ ^[a-z0-9-]{1,40}$ ]] || [[ -z $addr || $addr != *:* ]]; then
        echo "render.sh: '$n' is not NODE=HOST:PORT with NODE of [a-z0-9-]{1,40}" >&2
        exit 2
    fi
    pool+="    server $name $addr check"$'\n'
    any+="    server $name $addr check"$'\n'
    gone="{\\\"error\\\":{\\\"code\\\":\\\"unavailable\\\",\\\"message\\\":\\\"the replica $name that owns this session is gone (stopped or crashed), and its sessions with it; create a new session\\\"}}"
    # a kept-alive connection to a replica that died answers nothing: one retry on a new
    # connection turns that into the refused connection, and so the 503 below
    backends+="backend node-$name
    option httpchk
    http-check send meth GET uri /health
    http-check expect status 200
    retry-on conn-failure empty-response
    retries 1
    http-error status 503 content-type application/json string \"$gone\"
    http-error status 502 content-type application/json string \"$gone\"
    server $name $addr check
"$'\n'
done

while IFS= read -r line; do
    case $line in
    '#@RESOLVERS@') [[ -n $resolvers ]] && printf '%s\n' "$resolvers" ;;
    '#@POOL_SERVERS@') printf '%s' "$pool" ;;
    '#@ANY_SERVERS@') printf '%s' "$any" ;;
    '#@NODE_BACKENDS@') printf '%s' "$backends" ;;
    *)
        line=${line//@BIND@/$bind}
        line=${line//@SERVER_OPTS@/$server_opts}
        printf '%s\n' "${line%"${line##*[![:space:]]}"}"
        ;;
    esac
done <"$here/haproxy.cfg.in"
