# Pinned inputs of the guest image. Changing any of these changes the image hash.
# shellcheck shell=bash
GUEST_KERNEL_VERSION="6.1.0-57-cloud-amd64"
GUEST_KERNEL_PACKAGE="linux-image-${GUEST_KERNEL_VERSION}-unsigned"
GUEST_SUITE="bookworm"
GUEST_NODE_VERSION="22.23.5"
GUEST_PACKAGES="socat,chrony,tini,sudo,curl,ca-certificates,iproute2,git,python3,procps,less,netbase,iputils-ping"
# Modules the initramfs loads, in modules.dep order; missing ones are skipped.
GUEST_INITRD_MODULES="virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport virtio-rng virtio_console ptp_kvm"
