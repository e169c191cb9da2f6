#!/usr/bin/env bash
# check-docker.sh -- build the Docker image and prove it works the way the README runs it.
#
#   sudo ./scripts/check-docker.sh
#
# Installs docker.io and debootstrap when missing (group "docker" of scripts/packages.txt),
# starts dockerd when no engine answers (and stops it again, also on failure), makes the
# debian:bookworm-slim base when the engine has none (scripts/docker-base.sh), builds the image,
# and runs it with the README's command on a free loopback port. Then, through the published
# port: GET /health; one POST /execute whose output is checked; one browser session that
# navigates to a page and reads it back. The page is served inside the container (Chromium there
# cannot reach this host's loopback, and no other network is used): what a user checks first
# is that a page loads and renders, so the check is a real HTTP navigation (status 200, title,
# rendered DOM, evaluate), not just about:blank. Then `docker stop` must end the server
# cleanly (exit 0, no SIGKILL). Last, the faster variant the README offers (the same plus
# `--security-opt systempaths=unconfined`) must give runs a /proc of their own. Everything it
# made is removed at the end (the
# container, the image, the build stage's image, the base image if this run made it);
# CHECK_DOCKER_KEEP=1 keeps the images for a look. Exits nonzero on the first failure, with
# the container's log. Bounded: each step has a time limit (a cold build takes 2-15 minutes).
#
# Environment: DOCKER (client, default docker), DOCKERD_FLAGS (extra flags when this script
# starts dockerd, e.g. "--storage-driver=vfs --iptables=false"), BUILD_TIMEOUT_S (default 1500).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
docker=${DOCKER:-docker}
export DOCKER=$docker
tag="sandboxd-check:$$"
build_tag="sandboxd-check-build:$$"
name="sandboxd-check-$$"
base=debian:bookworm-slim
token=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
work=$(mktemp -d)
started_dockerd=""
made_base=0
t0=$SECONDS

say() { echo "check-docker: $*"; }
fail() {
    echo "check-docker: FAILED: $*" >&2
    if [[ -n ${container_up:-} ]]; then
        echo "---- container log (last 40 lines)" >&2
        "$docker" logs --tail 40 "$name" >&2 2>&1 || true
    fi
    exit 1
}

cleanup() {
    local rc=$?
    set +e
    "$docker" rm -f "$name" >/dev/null 2>&1
    if [[ ${CHECK_DOCKER_KEEP:-0} != 1 ]]; then
        "$docker" rmi -f "$tag" "$build_tag" >/dev/null 2>&1
        ((made_base)) && "$docker" rmi -f "$base" >/dev/null 2>&1
    fi
    if [[ -n $started_dockerd ]]; then
        kill "$started_dockerd" 2>/dev/null
        for _ in $(seq 1 40); do
            kill -0 "$started_dockerd" 2>/dev/null || break
            sleep 0.5
        done
        kill -9 "$started_dockerd" 2>/dev/null
        say "stopped the dockerd it started (pid $started_dockerd)"
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the engine
scripts/install-deps.sh docker >/dev/null
if ! timeout 20 "$docker" info >/dev/null 2>&1; then
    if ((EUID != 0)); then
        fail "no Docker engine answers and starting one needs root"
    fi
    say "no Docker engine answers; starting dockerd"
    # shellcheck disable=SC2086 # DOCKERD_FLAGS is a list of flags
    setsid dockerd ${DOCKERD_FLAGS:-} >"$work/dockerd.log" 2>&1 &
    started_dockerd=$!
    for _ in $(seq 1 60); do
        timeout 5 "$docker" info >/dev/null 2>&1 && break
        kill -0 "$started_dockerd" 2>/dev/null || { tail -n 20 "$work/dockerd.log" >&2; fail "dockerd exited"; }
        sleep 1
    done
    timeout 5 "$docker" info >/dev/null 2>&1 || { tail -n 20 "$work/dockerd.log" >&2; fail "dockerd did not answer within 60 s"; }
fi
say "engine: $("$docker" version -f '{{.Server.Version}}' 2>/dev/null), storage $("$docker" info -f '{{.Driver}}' 2>/dev/null)"

# ---- the base and the image
if ! "$docker" image inspect "$base" >/dev/null 2>&1; then
    made_base=1
fi
timeout 600 scripts/docker-base.sh "$base" || fail "could not make $base"
limit=${BUILD_TIMEOUT_S:-1500}
b0=$SECONDS
# The build stage gets a tag of its own so that it can be removed with the image.
timeout "$limit" "$docker" build -q --force-rm --target build -t "$build_tag" . >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; fail "docker build (build stage)"; }
timeout "$limit" "$docker" build -q --force-rm -t "$tag" . >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; fail "docker build"; }
size=$("$docker" image inspect -f '{{.Size}}' "$tag")
say "built $tag in $((SECONDS - b0)) s ($((size / 1000000)) MB)"

# ---- run it as the README does, on a free loopback port
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# (the page it navigates to is served on the container's loopback, which the egress policy
# refuses unless EGRESS_PRIVATE_ALLOWED names it)
"$docker" run -d --name "$name" -p "127.0.0.1:$port:8080" -e AUTH_TOKEN="$token" \
    -e EGRESS_PRIVATE_ALLOWED=127.0.0.1 \
    --security-opt seccomp=deploy/docker/seccomp.json "$tag" >/dev/null || fail "docker run"
container_up=1
base_url="http://127.0.0.1:$port"

# api METHOD PATH [JSON]: the body on stdout; fails unless the status is 2xx.
api() {
    local out code
    out=$(curl -sS -m 60 -o "$work/body" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        ${3:+--data-binary "$3"} "$base_url$2") || fail "$1 $2: curl failed"
    code=$out
    [[ $code == 2* ]] || fail "$1 $2: HTTP $code: $(head -c 500 "$work/body")"
    cat "$work/body"
}
# field JSON EXPR: evaluate a Python expression over the parsed JSON `j`.
field() { python3 -c 'import json, sys; j = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

for _ in $(seq 1 60); do
    curl -fsS -m 2 "$base_url/health" >"$work/health" 2>/dev/null && break
    sleep 0.5
done
[[ -s $work/health ]] || fail "GET /health did not answer within 30 s"
[[ $(field "$(cat "$work/health")" 'j["status"]') == ok ]] || fail "/health: $(cat "$work/health")"
uid=$("$docker" exec "$name" id -u)
[[ $uid != 0 ]] || fail "the server runs as root in the container"
"$docker" exec "$name" curl -fsS "http://127.0.0.1:8080/health" >/dev/null ||
    fail "the image's HEALTHCHECK command fails"
say "/health ok (server uid $uid in the container)"

health=$(api GET /health)
say "sandbox layers: $(field "$health" 'json.dumps(j["exec"]["sandbox"], separators=(",", ":"))')"
# Every layer, none accepted as missing: a weaker sandbox in the container is a failure here.
[[ $(field "$health" 'j["exec"]["sandbox"].get("complete", False)') == True ]] ||
    fail "the sandbox in the container is incomplete"
# Docker covers parts of the container's /proc, so runs get an empty one (and start cold)
[[ $(field "$health" 'j["exec"]["sandbox"]["proc"]') == empty ]] ||
    fail "a run's /proc in the container: $(field "$health" 'j["exec"]["sandbox"]["proc"]')"
run=$(api POST /execute '{"code":"import numpy, os\nprint(int(numpy.arange(10).sum()), os.getcwd())","timeoutMs":20000}')
[[ $(field "$run" 'j["exitCode"]') == 0 ]] || fail "/execute: $run"
[[ $(field "$run" 'j["stdout"]') == "45 /work" ]] || fail "/execute stdout: $run"
say "/execute ok ($(field "$run" 'j["durationMs"]') ms): $(field "$run" 'repr(j["stdout"])')"

# A page served inside the container, on its own loopback.
"$docker" exec "$name" sh -c 'mkdir -p /tmp/page && printf "%s" "<html><head><title>sandboxd check</title></head><body><h1 id=h>rendered</h1><script>document.getElementById(\"h\").textContent += \" by script\"</script></body></html>" >/tmp/page/index.html'
"$docker" exec -d "$name" python3 -m http.server 8765 --bind 127.0.0.1 --directory /tmp/page
sess=$(api POST /browser/sessions '{"device":"desktop"}')
sid=$(field "$sess" 'j["sessionId"]')
for _ in $(seq 1 20); do # the page server may still be starting
    "$docker" exec "$name" curl -fsS -m 2 -o /dev/null http://127.0.0.1:8765/ 2>/dev/null && break
    sleep 0.25
done
nav=$(api POST "/browser/sessions/$sid/navigate" '{"url":"http://127.0.0.1:8765/","waitUntil":"load"}')
[[ $(field "$nav" 'j["status"]') == 200 && $(field "$nav" 'j["title"]') == "sandboxd check" ]] ||
    fail "navigate: $nav"
html=$(api GET "/browser/sessions/$sid/content")
grep -q 'rendered by script' <<<"$html" || fail "content: $(head -c 300 <<<"$html")"
ev=$(api POST "/browser/sessions/$sid/action" '{"action":"evaluate","expression":"document.querySelector(\"h1\").textContent.length * 2"}')
[[ $(field "$ev" 'j["result"]') == 36 ]] || fail "evaluate: $ev"
api DELETE "/browser/sessions/$sid" >/dev/null
say "browser session ok: navigate $(field "$nav" 'j["status"]') \"$(field "$nav" 'j["title"]')\", content and evaluate checked"

# docker stop: SIGTERM through tini; the server must finish by itself (exit 0), well before
# Docker's SIGKILL (30 s here, SHUTDOWN_GRACE_MS is 5 s).
s0=$SECONDS
"$docker" stop -t 30 "$name" >/dev/null || fail "docker stop"
code=$("$docker" inspect -f '{{.State.ExitCode}}' "$name")
[[ $code == 0 ]] || fail "after docker stop the server's exit code is $code (137: it had to be killed)"
say "docker stop: the server exited 0 in $((SECONDS - s0)) s"
"$docker" rm -f "$name" >/dev/null
container_up=

# The faster variant the README offers: with systempaths=unconfined runs get a /proc of their
# own and come from the pre-forked zygote.
"$docker" run -d --name "$name" -p "127.0.0.1:$port:8080" -e AUTH_TOKEN="$token" \
    --security-opt seccomp=deploy/docker/seccomp.json \
    --security-opt systempaths=unconfined "$tag" >/dev/null || fail "docker run (systempaths)"
container_up=1
for _ in $(seq 1 60); do
    health=$(curl -fsS -m 2 -H "Authorization: Bearer $token" "$base_url/health" 2>/dev/null) &&
        break
    sleep 0.5
done
[[ $(field "$health" 'j["exec"]["sandbox"]["proc"]') == own ]] ||
    fail "systempaths=unconfined: a run's /proc is $(field "$health" 'j["exec"]["sandbox"]["proc"]')"
run=$(api POST /execute '{"code":"import os\nprint(\"self\" in os.listdir(\"/proc\"), os.getpid())","timeoutMs":20000}')
[[ $(field "$run" 'j["stdout"]') == "True 2" ]] || fail "/execute with systempaths: $run"
say "systempaths=unconfined: a /proc of its own, /execute ok ($(field "$run" 'j["durationMs"]') ms)"

say "passed in $((SECONDS - t0)) s"
