#!/usr/bin/env bash
# Boots a built guest image once under QEMU (microvm, TCG unless --kvm), waits for envd, asks
# its /health over user-mode networking and prints the boot timeline. The VM, its overlay and
# its logs are removed afterwards (--keep keeps the logs); no QEMU process outlives the script.
#
# Usage: guest/boot-test.sh [--name base | --dir <image dir>] [--timeout 120] [--keep] [--kvm]
set -euo pipefail
GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$GUEST_DIR/../scripts/lib.sh"

IMAGE_DIR=
TIMEOUT_S=120
KEEP=0
ACCEL=tcg
WORK=
QEMU_PID=

stop_vm() {
  if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
    kill "$QEMU_PID" 2>/dev/null || true
    wait "$QEMU_PID" 2>/dev/null || true
  fi
  QEMU_PID=
}

cleanup() {
  stop_vm
  if [ -n "$WORK" ]; then
    if [ "$KEEP" = 1 ]; then log_info "logs kept in $WORK"; else rm -rf "$WORK"; fi
  fi
}
trap cleanup EXIT

start_vm() {
  local port=$1 append
  append="console=ttyS0 tsc_early_khz=$(host_tsc_khz) root=/dev/vda rw"
  append+=" ip=169.254.0.21::169.254.0.22:30:sandbox:eth0:off wrenn.debug=1"
  append+=" $(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).kernelArgs' "$IMAGE_DIR/manifest.json")"
  qemu-img create -q -f qcow2 -F raw -b "$IMAGE_DIR/rootfs.ext4" "$WORK/disk.qcow2"
  # QEMU gets no inherited stdout: a pipe held open by it would stall callers' pipelines.
  qemu-system-x86_64 -M microvm -accel "$ACCEL" -cpu max -m 512 -smp 1 \
    -nodefaults -no-user-config -nographic -no-reboot \
    -kernel "$IMAGE_DIR/vmlinuz" -initrd "$IMAGE_DIR/initrd.img" -append "$append" \
    -drive id=d0,file="$WORK/disk.qcow2",format=qcow2,if=none -device virtio-blk-device,drive=d0 \
    -netdev user,id=n0,net=169.254.0.0/24,host=169.254.0.22,hostfwd=tcp:127.0.0.1:"$port"-169.254.0.21:49983 \
    -device virtio-net-device,netdev=n0,mac=02:fc:00:00:00:02 \
    -serial file:"$WORK/console.log" </dev/null >"$WORK/qemu.log" 2>&1 &
  QEMU_PID=$!
}

# Waits for envd's ready line on the console; fails if QEMU dies or time runs out.
wait_for_envd() {
  local deadline=$(($(date +%s) + TIMEOUT_S))
  until grep -q "envd listening on 49983" "$WORK/console.log" 2>/dev/null; do
    kill -0 "$QEMU_PID" 2>/dev/null || {
      tail -20 "$WORK/console.log" "$WORK/qemu.log" >&2
      die "QEMU exited before envd started"
    }
    [ "$(date +%s)" -lt "$deadline" ] || {
      tail -20 "$WORK/console.log" >&2
      die "envd did not start within $TIMEOUT_S s"
    }
    sleep 0.05
  done
}

main() {
  local name=base
  while [ $# -gt 0 ]; do
    case "$1" in
      --name) name=$2; shift 2 ;;
      --dir) IMAGE_DIR=$2; shift 2 ;;
      --timeout) TIMEOUT_S=$2; shift 2 ;;
      --keep) KEEP=1; shift ;;
      --kvm) ACCEL=kvm; shift ;;
      *) die "unknown argument $1" ;;
    esac
  done
  [ -n "$IMAGE_DIR" ] || IMAGE_DIR=$(readlink -f "$(wrenn_dir)/images/$name/current")
  [ -f "$IMAGE_DIR/manifest.json" ] || die "no built image at $IMAGE_DIR (run guest/build.sh)"
  WORK=$(mktemp -d /tmp/wrenn-boot-test.XXXXXX)
  local port=$((20000 + RANDOM % 20000)) t0 ready health
  log_step "booting $IMAGE_DIR ($ACCEL)"
  t0=$(now)
  start_vm "$port"
  wait_for_envd
  ready=$(elapsed_since "$t0")
  health=$(curl -s -o /dev/null -m 10 -w '%{http_code}' "http://127.0.0.1:$port/health" || true)
  log_info "envd ready line after $ready s (wall clock, QEMU start included); GET /health -> $health"
  log_info "guest timeline (seconds since kernel start):"
  grep -E '^(initramfs|wrenn-init): [0-9.]+s|Run /init|envd listening on' "$WORK/console.log" |
    sed 's/^\[ *\([0-9.]*\)\] /kernel: \1s /' | sed 's/^/      /' >&2
  stop_vm
  [ "$health" = 204 ] || [ "$health" = 200 ] || die "envd /health answered '$health'"
  log_step "boot test passed"
}

main "$@"
