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

# `*.localhost` names resolve to this machine for every program, offline: the sandbox domain
# `make up` serves over TLS (wrenn.localhost, `<port>-<id>.wrenn.localhost`) needs no DNS.
# glibc does this with the myhostname NSS module in the hosts line.
ensure_localhost_names() {
  if getent hosts probe.wrenn.localhost >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" -ne 0 ] || [ ! -w /etc/nsswitch.conf ]; then
    log_info "*.localhost does not resolve here; add 'myhostname' to the hosts line of /etc/nsswitch.conf"
    return 0
  fi
  if ! grep -Eq '^hosts:.*\bmyhostname\b' /etc/nsswitch.conf; then
    log_step "*.localhost names: adding myhostname to the hosts line of /etc/nsswitch.conf"
    sed -i -E 's/^(hosts:[[:space:]]+files)/\1 myhostname/' /etc/nsswitch.conf
  fi
  getent hosts probe.wrenn.localhost >/dev/null 2>&1 || log_info "*.localhost still does not resolve (check /etc/nsswitch.conf)"
}

main() {
  log_step "checking Debian packages"
  ensure_apt_packages "${WRENN_APT_PACKAGES[@]}"
  ensure_localhost_names
  install_node_modules
}

main "$@"
