#!/usr/bin/env bash
# Extracts the uncompressed ELF vmlinux from a bzImage (Firecracker boots only ELF kernels).
# Usage: extract-vmlinux.sh <bzImage> <out>
set -euo pipefail

try_decompress() {
  local image=$1 magic=$2 tool=$3 out=$4 offset
  for offset in $(LC_ALL=C grep -obUaP "$magic" "$image" | cut -d: -f1); do
    if tail -c "+$((offset + 1))" "$image" | $tool >"$out" 2>/dev/null || [ -s "$out" ]; then
      if [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' ')" = "7f454c46" ]; then return 0; fi
    fi
  done
  return 1
}

main() {
  local image=$1 out=$2
  # Debian's cloud kernels use LZ4 (legacy frame); the others cover other distributions' builds.
  try_decompress "$image" '\x02\x21\x4c\x18' "lz4 -dc" "$out" && return 0
  try_decompress "$image" '\x28\xb5\x2f\xfd' "zstd -dc" "$out" && return 0
  try_decompress "$image" '\xfd\x37\x7a\x58\x5a\x00' "xz -dc" "$out" && return 0
  try_decompress "$image" '\x1f\x8b\x08' "gzip -dc" "$out" && return 0
  echo "extract-vmlinux: no ELF payload found in $image" >&2
  rm -f "$out"
  return 1
}

main "$@"
