#!/bin/bash
# Builds the KVM image: a qcow2 whose one ext4 partition holds the e2e
# nodes' Debian 12 root filesystem (images/node/rootfs.sh) plus what a
# virtual machine needs to boot by itself (a kernel, GRUB, udev, networking
# by DHCP) and the fjord binary at /usr/local/bin/fjord, where `fjord
# bootstrap cloud-init`'s runcmd expects it.
#
#   images/vm/build.sh FJORD_BINARY OUTPUT.qcow2
#
# Two caches, both outside the repository under $FJORD_E2E_CACHE (default
# /var/cache/fjord-e2e): the node root filesystem (rootfs.sh's, ~8 min of
# debootstrap) and, on top of a copy of it, the VM tree with the extra
# packages installed, named after a hash of the node tree's name and
# VM_PACKAGES. The node tree itself is never changed here, so the e2e nodes
# keep booting exactly what they booted before. Everything after the
# package installs (configuration, fjord, the disk) is redone on every run:
# it takes a minute and needs no new download.
#
# It needs root (loop devices, mount, chroot) and Debian's qemu-utils,
# fdisk (sfdisk), e2fsprogs and util-linux (`make deps-vm-image`).
set -euo pipefail
fjord=${1:?usage: build.sh FJORD_BINARY OUTPUT.qcow2}
out=${2:?usage: build.sh FJORD_BINARY OUTPUT.qcow2}
here=$(cd "$(dirname "$0")" && pwd)
cache=${FJORD_E2E_CACHE:-/var/cache/fjord-e2e}
# The disk's virtual size: the qcow2 stores only what is written, and
# cloud-init's growpart and resizefs grow the partition and the filesystem
# to a bigger disk (qemu-img resize) at boot.
size=${VM_DISK_SIZE:-8G}
# What a machine needs that an nspawn container gets from its host: the
# kernel (its initramfs-tools builds the initramfs), a bootloader, udev
# (device nodes, /dev/disk/by-uuid, network interface names, module
# autoloading), fsck for the root filesystem, growpart for a resized disk,
# and systemd-resolved: systemd-networkd hands the DNS servers DHCP gave it
# only to resolved, and fjord's CoreDNS refuses to start without a
# nameserver to forward to (an nspawn node gets the host's resolv.conf).
VM_PACKAGES="linux-image-amd64 grub-pc udev e2fsprogs cloud-guest-utils fdisk systemd-resolved"

log() { echo "vm-image: $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "build.sh needs root (loop devices, mount, chroot)" >&2; exit 1; }
for tool in qemu-img sfdisk partx losetup mkfs.ext4 blkid chroot; do
	command -v "$tool" >/dev/null || { echo "$tool is not installed (make deps-vm-image)" >&2; exit 1; }
done
[ -x "$fjord" ] || { echo "$fjord is not an executable (make build)" >&2; exit 1; }

# Everything mounted or attached is undone on any exit, failed or not,
# innermost first.
mounts=() loop="" tmp=""
cleanup() {
	local i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" || true; done
	mounts=()
	if [ -n "$loop" ]; then partx -d "$loop" 2>/dev/null || true; losetup -d "$loop" || true; fi
	[ -n "${uuid_link:-}" ] && rm -f "$uuid_link"
	[ -n "${made_disk_dir:-}" ] && rmdir /dev/disk/by-uuid /dev/disk 2>/dev/null
	[ -n "$tmp" ] && rm -rf "$tmp"
	return 0
}
trap cleanup EXIT
# The host's /dev, /proc and /sys in a chroot: apt's maintainer scripts,
# update-initramfs and grub-install look at devices and mounts.
bind_api() {
	local root=$1 d
	for d in dev proc sys; do
		mount --bind "/$d" "$root/$d"
		mounts+=("$root/$d")
	done
}
unbind_api() {
	local i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		case "${mounts[i]}" in "$1"/dev | "$1"/proc | "$1"/sys) umount "${mounts[i]}"; unset 'mounts[i]' ;; esac
	done
	mounts=("${mounts[@]}")
}

# 1. The node root filesystem, shared with the e2e nodes (cached by rootfs.sh).
base=$("$here/../node/rootfs.sh")
base=${base%/}

# 2. The VM tree: a copy of the node tree with VM_PACKAGES installed by
# apt in a chroot, cached under its own hash (the node tree's name carries
# the hash of its package list, so a new node tree makes a new VM tree).
hash=$(echo "$(basename "$base") $VM_PACKAGES" | sha256sum | cut -c1-12)
vmtree=$cache/vm-$hash
if [ ! -e "$vmtree/.complete" ]; then
	log "building the VM tree in $vmtree (node tree + $VM_PACKAGES; once, a few minutes)"
	tmp=$(mktemp -d "$cache/vmbuild-XXXXXX")
	cp -a "$base" "$tmp/root"
	root=$tmp/root
	rm -f "$root/.complete"
	# apt resolves the mirror's name through the host's resolver.
	rm -f "$root/etc/resolv.conf"
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	bind_api "$root"
	# grub-pc's postinst asks which disks to install GRUB on; there is
	# no disk yet (step 4 installs it), so the answer is "none, on purpose".
	chroot "$root" debconf-set-selections <<-'SEL'
		grub-pc grub-pc/install_devices multiselect
		grub-pc grub-pc/install_devices_empty boolean true
	SEL
	chroot "$root" apt-get update -qq
	# shellcheck disable=SC2086 # the package list is words
	chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $VM_PACKAGES >&2
	chroot "$root" apt-get clean
	rm -rf "$root/var/lib/apt/lists/"*
	unbind_api "$root"
	rm -f "$root/etc/resolv.conf"
	touch "$root/.complete"
	rm -rf "$vmtree"
	mv "$root" "$vmtree"
	rm -rf "$tmp"
	tmp=""
fi

# 3. The disk: a raw file with an MBR (BIOS boot, so plain qemu without
# UEFI firmware boots it) and one bootable Linux partition from 1 MiB;
# GRUB's core image goes in the gap before it.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fjord-vm-XXXXXX")
raw=$tmp/disk.raw
mnt=$tmp/mnt
mkdir "$mnt"
qemu-img create -q -f raw "$raw" "$size"
sfdisk -q "$raw" <<-'PT'
	label: dos
	start=1MiB, type=83, bootable
PT
loop=$(losetup --show -f "$raw")
# partx adds the partition's device node itself (BLKPG): some kernels do
# not scan loop devices' partition tables (no CONFIG_MSDOS_PARTITION here).
partx -a "$loop"
part=${loop}p1
mkfs.ext4 -q -L fjord-root "$part"
uuid=$(blkid -s UUID -o value "$part")
mount "$part" "$mnt"
mounts+=("$mnt")
log "copying the VM tree onto the disk (root UUID $uuid)"
cp -a "$vmtree/." "$mnt/"
rm -f "$mnt/.complete"

# 4. Configuration that makes the tree a VM rather than an e2e node.
# What only the nspawn nodes use: the harness's address unit, the cgroup
# remount nspawn needs, and their cloud-init settings.
systemctl --root="$mnt" disable host0.service cgroup-rw.service >/dev/null 2>&1 || true
rm -f "$mnt/etc/systemd/system/host0.service" "$mnt/etc/systemd/system/cgroup-rw.service" \
	"$mnt/etc/cloud/cloud.cfg.d/90-fjord-e2e.cfg"
echo "UUID=$uuid / ext4 errors=remount-ro 0 1" > "$mnt/etc/fstab"
echo fjord > "$mnt/etc/hostname"
# A machine-id of its own is made at each VM's first boot.
: > "$mnt/etc/machine-id"
cat > "$mnt/etc/cloud/cloud.cfg.d/90-fjord-vm.cfg" <<'CFG'
# The NoCloud seed only (a `cidata` disk, or ds=nocloud on the kernel
# command line): no metadata service is asked (data residency).
datasource_list: [NoCloud]
# The network is the image's (systemd-networkd, DHCP on every wired link).
network: {config: disabled}
# Only what a Fjord seed uses (bootcmd, write_files, runcmd), plus growing
# the root filesystem to the disk: each module costs seconds of Python.
cloud_init_modules: [seed_random, growpart, resizefs, bootcmd, write_files]
cloud_config_modules: [runcmd]
cloud_final_modules: [scripts_user, final_message]
CFG
# DHCP on the first wired link: what KVM hosts and qemu's user network offer.
cat > "$mnt/etc/systemd/network/20-wired.network" <<'NET'
[Match]
Name=en* eth*

[Network]
DHCP=yes
NET
# fjord.service waits for network-online.target: networkd-wait-online is
# what makes that target mean "an address is configured".
systemctl --root="$mnt" enable systemd-networkd.service systemd-networkd-wait-online.service systemd-resolved.service >/dev/null
# Names resolve through resolved's stub; the kubelet gives pods the
# upstream servers behind it (/run/systemd/resolve/resolv.conf) instead.
ln -sf ../run/systemd/resolve/stub-resolv.conf "$mnt/etc/resolv.conf"
# fjord's state and STATUS on the serial console, each time it changes:
# nobody logs in to these VMs, and a hypervisor's console log is where an
# operator (and `make test-vm-image`) looks.
install -D -m 0755 "$here/fjord-console-status" "$mnt/usr/local/lib/fjord/fjord-console-status"
install -m 0644 "$here/fjord-console-status.service" "$mnt/etc/systemd/system/fjord-console-status.service"
install -D -m 0644 "$here/console-status.conf" "$mnt/etc/systemd/system/fjord.service.d/console-status.conf"
# GRUB and the kernel on the serial console as well as the screen, without
# "quiet": the boot is readable from a console log. systemd-firstboot
# would ask on the console for what it finds unset at the first boot, and
# nobody is there to answer (systemd.firstboot=off; cloud-init sets up).
sed -i -e 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=1/' \
	-e 's/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT=""/' \
	-e 's/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8 systemd.firstboot=off"/' \
	"$mnt/etc/default/grub"
cat >> "$mnt/etc/default/grub" <<'GRUB'
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB
install -m 0755 "$fjord" "$mnt/usr/local/bin/fjord"

# 5. GRUB, installed by the image's own grub-pc on the disk (core image in
# the MBR gap) and configured by update-grub, which writes root=UUID=…
# only when /dev/disk/by-uuid/<uuid> exists: that link is udev's, and the
# build host may not run udev, so it is made for the run.
bind_api "$mnt"
if [ ! -e "/dev/disk/by-uuid/$uuid" ]; then
	[ -d /dev/disk ] || made_disk_dir=1
	mkdir -p /dev/disk/by-uuid
	uuid_link=/dev/disk/by-uuid/$uuid
	ln -s "$part" "$uuid_link"
fi
chroot "$mnt" grub-install --target=i386-pc "$loop" >&2
chroot "$mnt" update-grub >&2
grep -q "root=UUID=$uuid" "$mnt/boot/grub/grub.cfg" || { echo "grub.cfg does not boot root=UUID=$uuid" >&2; exit 1; }
unbind_api "$mnt"
umount "$mnt"
mounts=()
partx -d "$loop"
losetup -d "$loop"
loop=""

# 6. The qcow2, compressed: it holds only the written blocks.
mkdir -p "$(dirname "$out")"
qemu-img convert -O qcow2 -c "$raw" "$out.tmp"
mv "$out.tmp" "$out"
log "$out: $(qemu-img info --output=json "$out" | sed -n 's/.*"actual-size": \([0-9]*\).*/\1/p' | awk '{printf "%.0f MiB", $1/1048576}') on disk, $size virtual"
