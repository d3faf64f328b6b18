#!/usr/bin/env bash
# A Docker engine with Compose v2 on a Debian machine that has none running (CI), then the images CI uses
# in place of Docker Hub's (compose/ci/). Idempotent and cached: a second run takes seconds.
#   - docker.io from Debian (dockerd, containerd, runc), started in the background, log in the cache
#   - Compose v2 built from the Go module proxy (Debian only packages the old 1.x)
#   - a Debian base image from debootstrap (no registry image can be pulled)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/labkit/docker
COMPOSE_VERSION=v2.40.3
mkdir -p "$CACHE"
say() { echo "[docker-engine] $*"; }

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
      echo "no Docker engine: install Docker (as root on Debian this script installs docker.io)" >&2; exit 2
    fi
    say "installing docker.io and debootstrap with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
  fi
  say "starting dockerd (log: $CACHE/dockerd.log)"
  (setsid dockerd >"$CACHE/dockerd.log" 2>&1 &)
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -n 20 "$CACHE/dockerd.log" >&2; exit 1; }
fi

if ! docker compose version >/dev/null 2>&1; then
  bin="$CACHE/docker-compose-$COMPOSE_VERSION"
  if [ ! -x "$bin" ]; then
    say "building Compose $COMPOSE_VERSION from the Go module proxy (about 3 minutes)"
    dir=$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    src=$(mktemp -d)
    cp -r "$dir/." "$src" && chmod -R u+w "$src"
    (cd "$src" && go build -trimpath -ldflags "-X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" -o "$bin" ./cmd)
    rm -rf "$src"
  fi
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$bin" "$HOME/.docker/cli-plugins/docker-compose"
fi
say "$(docker compose version)"

if ! docker image inspect labkit-ci/debian:bookworm >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  say "making the Debian base image with debootstrap (about a minute)"
  root=$(mktemp -d)
  debootstrap --variant=minbase --include=ca-certificates bookworm "$root" http://deb.debian.org/debian \
    >"$CACHE/debootstrap.log" 2>&1
  # The images trust what this machine trusts: a network that inspects HTTPS adds its own CA here, and
  # builds that fetch from PyPI or Maven Central would fail without it. pip reads only its own bundle
  # unless told, hence PIP_CERT.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null
  fi
  tar -C "$root" -c . | docker import \
    -c "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt" \
    - labkit-ci/debian:bookworm >/dev/null
  rm -rf "$root"
fi

# Images standing in for Docker Hub's, only where the CI override uses them
[ "${COMPOSE_OVERRIDE-ci/docker-compose.ci.yml}" = ci/docker-compose.ci.yml ] || exit 0
./.venv/bin/python -m labkit.stack.provision.docker_ci
