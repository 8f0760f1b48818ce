#!/bin/bash
# Builds (once) the Debian 12 root filesystem the e2e nodes boot with
# systemd-nspawn, and prints its directory. It is cached outside the
# repository under $FJORD_E2E_CACHE (default /var/cache/fjord-e2e), named
# after a hash of the package list: change it and a new tree is built; an
# unchanged one is reused by every clean clone on the machine. The few
# files configured after debootstrap are (re)written on every run: cheap,
# and an edit here needs no new debootstrap.
#
# The tree has what fjord's node needs (runc, CNI plugins, iptables, kmod),
# systemd as PID 1, cloud-init limited to the NoCloud seed, systemd-networkd
# enabled, and a unit that makes the v1 cgroup controllers writable (nspawn
# mounts them read-only; runc needs them). fjord itself is not in it: the
# harness bind-mounts the binary under test at /usr/local/bin/fjord.
set -euo pipefail
PACKAGES=systemd,systemd-sysv,dbus,cloud-init,iproute2,python3-cffi-backend,runc,containernetworking-plugins,iptables,kmod,procps,ca-certificates
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${FJORD_E2E_CACHE:-/var/cache/fjord-e2e}
hash=$(echo "$SUITE $PACKAGES" | sha256sum | cut -c1-12)
dir=$cache/rootfs-$hash
if [ ! -e "$dir/.complete" ]; then
	command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/build-XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "building the node root filesystem in $dir (debootstrap $SUITE from $MIRROR; once, ~8 min)" >&2
	debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp/root" "$MIRROR" >&2
	rm -rf "$tmp/root/var/cache/apt/archives/"*.deb
	touch "$tmp/root/.complete"
	rm -rf "$dir"
	mv "$tmp/root" "$dir"
fi
root=$dir
# Only the seed: no metadata service is asked (data residency); the
# network is the harness's, not a DHCP fallback cloud-init would write.
cat > "$root/etc/cloud/cloud.cfg.d/90-fjord-e2e.cfg" <<'CFG'
datasource_list: [NoCloud]
network: {config: disabled}
# Only what a Fjord seed uses (bootcmd, write_files, runcmd): each module
# costs seconds of Python on these 2 cores, and there are no users,
# ssh keys or packages to set up on a node.
cloud_init_modules: [seed_random, bootcmd, write_files]
cloud_config_modules: [runcmd]
cloud_final_modules: [scripts_user, final_message]
CFG
# The node's address comes from /etc/fjord-e2e/host0.env, which the harness
# binds in (ADDRESS=10.213.0.N/24 GATEWAY=10.213.0.1). Not systemd-networkd:
# with /sys writable (the kubelet sets sysctls) networkd waits for a udev
# that a container does not run.
rm -f "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service" \
	"$root/etc/systemd/system/network-online.target.wants/systemd-networkd-wait-online.service"
cat > "$root/etc/systemd/system/host0.service" <<'UNIT'
[Unit]
Description=The e2e node's address on the host's bridge
DefaultDependencies=no
Before=network-pre.target network.target network-online.target cloud-init-local.service cloud-init.service
ConditionPathExists=/etc/fjord-e2e/host0.env

[Service]
Type=oneshot
RemainAfterExit=yes
EnvironmentFile=/etc/fjord-e2e/host0.env
# IPv4 only: no link-local IPv6 chatter (router and neighbour
# solicitations) in the data residency check's capture.
ExecStart=/bin/sh -c 'echo 1 > /proc/sys/net/ipv6/conf/host0/disable_ipv6'
ExecStart=/sbin/ip link set host0 up
ExecStart=/sbin/ip addr replace ${ADDRESS} dev host0
ExecStart=/sbin/ip route replace default via ${GATEWAY}

[Install]
WantedBy=sysinit.target
UNIT
rm -f "$root/etc/systemd/system/network-online.target.wants/host0.service"
mkdir -p "$root/etc/systemd/system/sysinit.target.wants"
ln -sf /etc/systemd/system/host0.service "$root/etc/systemd/system/sysinit.target.wants/host0.service"
cat > "$root/etc/systemd/system/cgroup-rw.service" <<'UNIT'
[Unit]
Description=Make the v1 cgroup controllers writable for runc (nspawn mounts them read-only)
DefaultDependencies=no
Before=cloud-init.service sysinit.target
ConditionPathExists=/sys/fs/cgroup/memory

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for c in /sys/fs/cgroup/*/; do case "$c" in */unified/|*/systemd/) ;; *) mount -o remount,bind,rw "$c" || true;; esac; done'

[Install]
WantedBy=sysinit.target
UNIT
mkdir -p "$root/etc/systemd/system/sysinit.target.wants"
ln -sf /etc/systemd/system/cgroup-rw.service "$root/etc/systemd/system/sysinit.target.wants/cgroup-rw.service"
# No console login prompts, no clock sync over the network.
rm -f "$root/etc/systemd/system/getty.target.wants/"* "$root/etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service"
echo fjord-node > "$root/etc/hostname"
: > "$root/etc/machine-id"
echo "$dir"
