#!/usr/bin/env bash
# Installs Debian's chromium for the dashboard's browser tests (tests/browser), when missing.
# playwright-core drives it; WRENN_CHROMIUM names another binary, which is then used as is.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

if [ -n "${WRENN_CHROMIUM:-}" ]; then
  [ -x "$WRENN_CHROMIUM" ] || die "WRENN_CHROMIUM=$WRENN_CHROMIUM is not an executable"
  exit 0
fi
ensure_apt_packages chromium
[ -x /usr/bin/chromium ] || die "the chromium package did not install /usr/bin/chromium"
log_info "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo 'installed')"
