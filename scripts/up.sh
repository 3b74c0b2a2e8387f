#!/usr/bin/env bash
# Brings Wrenn up on this machine (after `make image` installed what is missing and built
# the guest image): a host agent and the control plane, registered to each other; prints the
# API URL and a key (scripts/up.ts). Ctrl-C stops both and every sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

main() {
  mkdir -p "$(wrenn_dir)"
  # One node process (no tsx wrapper in between), so a Ctrl-C reaches scripts/up.ts alone.
  exec node --import tsx scripts/up.ts
}

main "$@"
