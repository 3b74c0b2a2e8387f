#!/usr/bin/env bash
# Brings Wrenn up on this machine. Grows with the platform: today it serves envd
# on the host for development until the host agent and control plane land.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

main() {
  log_step "starting envd (development mode, no VM) on port ${WRENN_ENVD_PORT:-49983}"
  exec npx tsx packages/envd/src/main.ts --no-vm --port "${WRENN_ENVD_PORT:-49983}"
}

main "$@"
