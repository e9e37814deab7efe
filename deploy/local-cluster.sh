#!/usr/bin/env bash
# local-cluster.sh runs a vog cluster of containers on this machine, each
# service in its own container: a Temporal server (vog server, with its Web
# UI), an S3-compatible store (versitygw), gradient workers and a reduce
# worker. Jobs are submitted from the host with vog submit.
#
#   deploy/local-cluster.sh build    build the images (vog:cpu, vog-s3)
#   deploy/local-cluster.sh up       build what is missing, start, print the addresses
#   deploy/local-cluster.sh status   the containers and their state
#   deploy/local-cluster.sh down     stop and remove the containers and their volumes
#
# Settings (environment):
#   VOG_CLUSTER=vog          name prefix of the containers and volumes
#   VOG_TEMPORAL_PORT=7233   Temporal frontend; VOG_UI_PORT=8233 its Web UI
#   VOG_S3_PORT=7070         the S3 endpoint; bucket "vog", keys vog / vogsecret
#   VOG_GRADIENT_WORKERS=2   gradient worker containers
#   VOG_WORKER_ARGS=...      more vog worker flags (e.g. --threads 1)
#   CONTAINER_ENGINE=podman  or docker
#
# Every container uses the host's network (the one that works under podman
# on every machine tried, docs/deploy.md): services listen on 127.0.0.1 and
# workers reach them there, as the host does.
set -euo pipefail
cd "$(dirname "$0")/.."

engine=${CONTAINER_ENGINE:-podman}
name=${VOG_CLUSTER:-vog}
tport=${VOG_TEMPORAL_PORT:-7233}
uiport=${VOG_UI_PORT:-8233}
s3port=${VOG_S3_PORT:-7070}
ngrad=${VOG_GRADIENT_WORKERS:-2}
read -r -a wargs <<<"${VOG_WORKER_ARGS:-}"
s3key=vog s3secret=vogsecret

# Podman under cgroup v1 (a Firecracker VM, older distributions): crun
# cannot set the default ulimits or join hybrid cgroups there; runc with
# cgroupfs can (../shared notes, measured).
if [ "$engine" = podman ] && [ "$(podman info --format '{{.Host.CgroupsVersion}}' 2>/dev/null)" = v1 ]; then
  conf=$(mktemp)
  trap 'rm -f "$conf"' EXIT
  printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n' >"$conf"
  export CONTAINERS_CONF=$conf
fi
ctr() { "$engine" "$@"; }

# base makes Debian's base images from Debian's packages where no registry
# gives them (mmdebstrap), under the names the Dockerfiles use.
base() {
  ctr image exists docker.io/library/debian:bookworm 2>/dev/null && return
  if ! ctr pull -q docker.io/library/debian:bookworm >/dev/null 2>&1; then
    command -v mmdebstrap >/dev/null || {
      echo "local-cluster: cannot pull debian:bookworm and mmdebstrap is not installed (apt-get install mmdebstrap)" >&2
      exit 1
    }
    echo "local-cluster: no registry; making debian:bookworm with mmdebstrap" >&2
    tar=$(mktemp --suffix .tar)
    mmdebstrap --quiet --variant=minbase --format=tar bookworm "$tar"
    ctr import -q "$tar" docker.io/library/debian:bookworm >/dev/null
    rm -f "$tar"
  fi
  ctr tag docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim
}

# build builds the images. Where HTTPS goes through a proxy of the site's
# own, the machine's CA bundle is given to the Go build; where this machine
# has Go caches, they are lent to it (podman build -v), so that it compiles
# only what changed.
build() {
  base
  local args=(--network host --build-arg "GOPROXY=${GOPROXY:-$(go env GOPROXY 2>/dev/null || echo https://proxy.golang.org,direct)}")
  if [ "$engine" = podman ]; then
    args+=(--pull=never)
    [ -f /etc/ssl/certs/ca-certificates.crt ] &&
      args+=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg SSL_CERT_FILE=/run/host-ca.crt)
    if command -v go >/dev/null && [ "$(id -u)" = 0 ]; then
      args+=(-v "$(go env GOMODCACHE):/root/go/pkg/mod" -v "$(go env GOCACHE):/root/.cache/go-build")
    fi
  fi
  local start=$SECONDS
  ctr build "${args[@]}" -f deploy/docker/Dockerfile.s3 -t vog-s3 . >&2
  ctr build "${args[@]}" -f deploy/docker/Dockerfile.cpu -t vog:cpu . >&2
  echo "local-cluster: images built in $((SECONDS - start)) s" >&2
}

# wait_port waits up to a minute for a service to listen.
wait_port() {
  for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.1
  done
  echo "local-cluster: nothing listens on 127.0.0.1:$1 after a minute; logs: $engine logs $2" >&2
  exit 1
}

run() { # run NAME IMAGE ARGS...: a detached container on the host network
  local n=$1
  shift
  ctr run -d --name "$n" --hostname "$n" --network host --restart no "$@" >/dev/null
}

up() {
  ctr image exists vog:cpu && ctr image exists vog-s3 || build
  local workerenv=(-e "TEMPORAL_ADDRESS=127.0.0.1:$tport" -e "AWS_ACCESS_KEY_ID=$s3key"
    -e "AWS_SECRET_ACCESS_KEY=$s3secret" -e AWS_REGION=us-east-1)
  run "$name-temporal" -v "$name-temporal:/var/lib/vog" vog:cpu \
    server --bind 127.0.0.1 --port "$tport" --ui-port "$uiport" --state-dir /var/lib/vog/temporal
  # versitygw serves the folders of /data as buckets: "vog" is one.
  run "$name-s3" -v "$name-s3:/data" -e "ROOT_ACCESS_KEY=$s3key" -e "ROOT_SECRET_KEY=$s3secret" \
    --entrypoint sh vog-s3 -c "mkdir -p /data/vog && exec versitygw --port 127.0.0.1:$s3port posix /data"
  wait_port "$tport" "$name-temporal"
  wait_port "$s3port" "$name-s3"
  for i in $(seq "$ngrad"); do
    run "$name-gradient-$i" "${workerenv[@]}" vog:cpu worker --queue gradient "${wargs[@]}"
  done
  run "$name-reduce" "${workerenv[@]}" vog:cpu worker --queue reduce "${wargs[@]}"
  local s3="endpoint=http://127.0.0.1:$s3port&region=us-east-1&use_path_style=true"
  cat <<EOF
local-cluster: up: $name-temporal, $name-s3, $ngrad gradient workers, $name-reduce
  Temporal:  127.0.0.1:$tport (Web UI http://127.0.0.1:$uiport)
  S3:        s3://vog/PATH?$s3
             (keys AWS_ACCESS_KEY_ID=$s3key AWS_SECRET_ACCESS_KEY=$s3secret)
  submit:    vog submit --temporal 127.0.0.1:$tport --dataset 's3://vog/data?$s3' ...
  stop:      deploy/local-cluster.sh down
EOF
}

down() {
  local ids
  ids=$(ctr ps -a --filter "name=^$name-" --format '{{.Names}}')
  [ -z "$ids" ] || ctr rm -f $ids >/dev/null
  ctr volume rm -f "$name-temporal" "$name-s3" >/dev/null 2>&1 || true
  echo "local-cluster: $name down" >&2
}

case "${1:-}" in
build) build ;;
up) up ;;
down) down ;;
status) ctr ps -a --filter "name=^$name-" ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
