#!/usr/bin/env bash
# Installs OpenStack Swift (with s3api) and memcached from Debian's packages, and the peers
# `npm run bench` measures the archiver against: curl (plain download), rclone (plain upload,
# `rclone copyurl`) and GNU time (peak RSS); and zsh, so the tests check the zsh completion
# script. Idempotent: a fast no-op when already installed.
# Must run as root. Services are never started by apt: the local stack starts its own
# servers on ephemeral ports (scripts/local-stack/swift.ts).
set -euo pipefail

PACKAGES=(swift swift-proxy swift-object swift-container swift-account python3-swift memcached curl rclone time zsh)
BINARIES=(/usr/bin/swift-proxy-server /usr/bin/swift-object-server /usr/bin/swift-container-server
  /usr/bin/swift-account-server /usr/bin/swift-ring-builder /usr/bin/memcached /usr/bin/curl
  /usr/bin/rclone /usr/bin/time /usr/bin/zsh)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
for bin in "${BINARIES[@]}"; do
  [[ -x "$bin" ]] || { missing+=("(binary $bin)"); }
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "local-stack: Swift, memcached, the benchmark's peers (curl, rclone, GNU time) and zsh already installed"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "local-stack: missing ${missing[*]}; run this script as root" >&2
  exit 1
fi

echo "local-stack: installing ${PACKAGES[*]}"
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  # Exit 101 = "action forbidden": apt must not start swift or memcached as system services.
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [[ $created_policy -eq 1 ]]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
# apt-get update only when the package lists lack Swift (e.g. a fresh machine).
if ! apt-cache show swift-proxy >/dev/null 2>&1; then
  apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
echo "local-stack: installed"
