#!/usr/bin/env bash
# Installs the Debian packages crtools needs to build and test, if any is missing.
# Sourced by demo.sh and test.sh; safe to run again.
cr_deps() {
  local pkgs=(cmake g++ make pkg-config libzstd-dev zstd libssl-dev nlohmann-json3-dev libcli11-dev
              libgtest-dev libbenchmark-dev clang libclang-rt-dev python3 bash procps
              sqlite3 nftables redis-server postgresql)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Servers the tests start themselves (redis-server, postgresql) must not be started as
    # services by their packages: policy-rc.d forbids it for the install, if none is set.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
    fi
    local rc=0
    apt-get update -qq >&2 || rc=$?
    ((rc)) || apt-get install -y -qq "${missing[@]}" >&2 || rc=$?
    if ((own_policy)); then rm -f "$policy"; fi
    return $rc
  fi
}
