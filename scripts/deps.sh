#!/usr/bin/env bash
# Installs the Debian packages crtools needs to build and test, if any is missing.
# Sourced by demo.sh and test.sh; safe to run again.
cr_deps() {
  local pkgs=(cmake g++ make pkg-config libzstd-dev zstd libssl-dev nlohmann-json3-dev libcli11-dev
              libgtest-dev libbenchmark-dev clang libclang-rt-dev python3 bash procps
              sqlite3 nftables redis-server)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${missing[@]}" >&2
  fi
}
