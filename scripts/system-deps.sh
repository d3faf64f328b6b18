#!/usr/bin/env bash
# Install the few system packages local mode needs when they are missing. Needs root and apt;
# elsewhere it only says what to install. Java 17, Maven, Go and Rust are checked by `labkit doctor`.
set -euo pipefail
need=()
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v kcat >/dev/null || need+=(kcat)
# javac compiles the lab's Java functions; Debian's JRE package does not have it
command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)
# the workshop's per-attendee Flink clusters (root only): a firewall rule per attendee, and their Python
if [ "$(id -u)" = 0 ]; then
  command -v iptables >/dev/null || need+=(iptables)
  command -v setpriv >/dev/null || need+=(util-linux)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[labkit] installing ${need[*]} with apt-get"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "[labkit] please install: ${need[*]} (e.g. sudo apt-get install ${need[*]}, or conda install -c conda-forge ${need[*]})" >&2
fi
