#!/usr/bin/env bash
# Installs what Wrenn needs on this machine: Debian packages and npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

install_node_modules() {
  if [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    log_info "npm dependencies up to date"
    return 0
  fi
  log_step "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
}

main() {
  log_step "checking Debian packages"
  ensure_apt_packages "${WRENN_APT_PACKAGES[@]}"
  install_node_modules
}

main "$@"
