#!/usr/bin/env bash
# Make sure a Docker Engine answers on /var/run/docker.sock and that Debian's
# docker-registry binary is installed; install and start them when missing
# (root on Debian). Tests never assume them: they call this first.
set -euo pipefail
need_install=()
command -v dockerd >/dev/null 2>&1 || need_install+=(docker.io)
command -v docker-registry >/dev/null 2>&1 || need_install+=(docker-registry)
if [ ${#need_install[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ensure-docker: need ${need_install[*]} (run as root, or install them)" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need_install[@]}" >/dev/null
fi
if ! docker version >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "ensure-docker: no Docker Engine answers and we are not root to start one" >&2; exit 1
  fi
  # no bridge and no iptables: this sandbox has neither, and builds FROM scratch need no network
  nohup dockerd --iptables=false --bridge=none >/tmp/reconciler-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
  docker version >/dev/null 2>&1 || { echo "ensure-docker: dockerd did not start; see /tmp/reconciler-dockerd.log" >&2; exit 1; }
fi
