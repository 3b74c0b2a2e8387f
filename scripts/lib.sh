# Shared shell helpers for Wrenn's scripts. Source it; do not run it.
# shellcheck shell=bash

log_step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
log_info() { printf '    %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The packages Wrenn needs from Debian, host side.
WRENN_APT_PACKAGES=(
  qemu-system-x86 qemu-utils debootstrap busybox-static socat iptables kmod
  e2fsprogs cpio zstd xz-utils lz4 iproute2 procps psmisc ca-certificates bc openssl
  libnss-myhostname
  nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils
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

# Milliseconds since the epoch, and seconds (one decimal) elapsed since such a stamp.
now() { date +%s%3N; }
elapsed_since() {
  local ms=$(($(date +%s%3N) - $1))
  printf '%d.%d\n' $((ms / 1000)) $((ms % 1000 / 100))
}

# Allocated size of a file or tree, human readable (sparse files count what they use).
human_size() { du -sh "$1" | cut -f1; }

# The host's TSC frequency in kHz, for the guest's tsc_early_khz= (TCG guests otherwise
# sometimes hang calibrating it). From the kernel's boot message, else /proc/cpuinfo.
host_tsc_khz() {
  local mhz
  mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9.]*\) MHz.*/\1/p' | head -1 || true)
  [ -n "$mhz" ] || mhz=$(awk -F': *' '/^cpu MHz/ { print $2; exit }' /proc/cpuinfo)
  awk -v m="$mhz" 'BEGIN { printf "%d\n", m * 1000 + 0.5 }'
}
