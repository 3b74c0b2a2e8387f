# Shared shell helpers for Wrenn's scripts. Source it; do not run it.
# shellcheck shell=bash

log_step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
log_info() { printf '    %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The packages Wrenn needs from Debian, host side.
WRENN_APT_PACKAGES=(
  qemu-system-x86 qemu-utils debootstrap busybox-static socat iptables kmod
  e2fsprogs cpio zstd xz-utils lz4 iproute2 procps psmisc ca-certificates bc
)

missing_apt_packages() {
  local pkg missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  printf '%s\n' "${missing[@]}"
}

ensure_apt_packages() {
  local missing
  mapfile -t missing < <(missing_apt_packages "$@" | sed '/^$/d')
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  log_step "installing Debian packages: ${missing[*]}"
  [ "$(id -u)" -eq 0 ] || die "installing packages needs root"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

wrenn_dir() { printf '%s\n' "${WRENN_DIR:-$HOME/.wrenn}"; }
