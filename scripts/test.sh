#!/usr/bin/env bash
# README, second command: set up and run the whole test suite against real local servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npm test -- "$@"
