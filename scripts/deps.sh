#!/usr/bin/env bash
# Installs the Debian packages crtools needs to build and test, if any is missing.
# Sourced by demo.sh and test.sh; safe to run again.
cr_deps() {
  local pkgs=(cmake g++ make pkg-config libzstd-dev zstd libssl-dev nlohmann-json3-dev libcli11-dev
              libgtest-dev libbenchmark-dev clang libclang-rt-dev python3 bash procps
              sqlite3 nftables redis-server postgresql nginx-light tmux
              groff-base dpkg-dev  # the manuals' check (groff); cpack -G DEB (dpkg-shlibdeps)
              libprotobuf-dev protobuf-compiler  # crcriu (CRIU's RPC protocol)
              runc busybox-static podman)  # crcriu's tests: runc's and podman's containers
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # The servers are installed for the tests, which start their own: their packages must not
    # start (or, under systemd, enable) the machine's service. A policy-rc.d that forbids every
    # start, for this install only, unless the machine has one of its own.
    local policy=/usr/sbin/policy-rc.d own_policy=0 rc=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\n# crtools scripts/deps.sh: no service starts during its install\nexit 101\n' >"$policy"
      chmod 755 "$policy"
      own_policy=1
    fi
    apt-get update -qq >&2 || rc=$?
    ((rc)) || apt-get install -y -qq "${missing[@]}" >&2 || rc=$?
    if ((own_policy)); then rm -f "$policy"; fi
    if ((rc == 0)) && [[ -d /run/systemd/system ]]; then
      local p
      for p in "${missing[@]}"; do
        case $p in
          redis-server) systemctl disable -q redis-server >&2 || true ;;
          nginx-light) systemctl disable -q nginx >&2 || true ;;
          postgresql) systemctl disable -q postgresql >&2 || true ;;
        esac
      done
    fi
    return $rc
  fi
}
