#!/usr/bin/env bash
# README, first command: set up and run the archiver's main job against the embedded local
# default (local S3 store + GES emulator; no cloud account needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npx tsx scripts/demo.ts
