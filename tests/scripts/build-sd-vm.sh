#!/bin/sh
# build-sd-vm.sh OUTDIR SD_ROOTFS VM_IMAGES: an initramfs that boots systemd itself, for
# the test that shows systemd importing the credentials phx-hook hands to QEMU through
# fw_cfg. SD_ROOTFS is build-sd-rootfs.sh's Debian 12 rootfs (systemd 252); VM_IMAGES is
# build-vm.sh's output (the Debian kernel, and qemu_fw_cfg.ko in its initrd). The image
# is that rootfs (documentation left out) plus a second cpio archive with a tiny /phx-init
# (busybox: load qemu_fw_cfg, then exec systemd) and a unit, `phx-cred.service`, that
# loads credential `db-password` (LoadCredential=) and writes its MD5, never the value,
# and the names systemd imported to the serial console.
# Idempotent: does nothing when OUTDIR was built by this version from the same inputs.
set -eu
VERSION=1 # bump when the image changes
OUT=$(realpath -m "$1")
SD=$(realpath "$2")
VM=$(realpath "$3")
# Tests build this in parallel: one at a time, and the others find it built.
mkdir -p "$(dirname "$OUT")"
exec 9>"$OUT.lock"
flock 9
# Built by this version from these inputs (their own versions).
STAMP="$VERSION $(cat "$SD/../version" 2>/dev/null) $(cat "$VM/version" 2>/dev/null)"
[ -s "$OUT/initrd-sd.gz" ] && [ "$(cat "$OUT/version" 2>/dev/null)" = "$STAMP" ] && exit 0
mkdir -p "$OUT"
W=$(mktemp -d "$OUT/build.XXXXXX")
trap 'rm -rf "$W"' EXIT
O="$W/overlay"
mkdir -p "$O/phx" "$O/etc/systemd/system/multi-user.target.wants"
cp /bin/busybox "$O/phx/busybox"
(cd "$W" && zcat "$VM/initrd.gz" | busybox cpio -i -d 'mod/qemu_fw_cfg.ko' 2>/dev/null)
cp "$W/mod/qemu_fw_cfg.ko" "$O/phx/qemu_fw_cfg.ko"
cat > "$O/phx-init" <<'INIT'
#!/phx/busybox sh
B=/phx/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
$B insmod /phx/qemu_fw_cfg.ko
echo "PHX-INIT: starting systemd" > /dev/console
exec /lib/systemd/systemd
INIT
chmod 755 "$O/phx-init"
cat > "$O/etc/systemd/system/phx-cred.service" <<'UNIT'
[Unit]
Description=Read a credential phx-hook passed through QEMU's fw_cfg

[Service]
Type=oneshot
LoadCredential=db-password
ExecStart=/bin/sh -c 'echo "PHX-CRED db-password $(md5sum < "$CREDENTIALS_DIRECTORY/db-password" | cut -c1-32) imported: $(ls /run/credentials/@system | tr "\\n" " ")" > /dev/ttyS0'

[Install]
WantedBy=multi-user.target
UNIT
ln -s ../phx-cred.service "$O/etc/systemd/system/multi-user.target.wants/phx-cred.service"
# The rootfs (no documentation, locales or caches), then the overlay: the kernel unpacks
# concatenated archives in order.
(cd "$SD" && find . -path ./usr/share/doc -prune -o -path ./usr/share/man -prune \
   -o -path ./usr/share/locale -prune -o -path ./var/cache -prune -o -path ./usr/share/info -prune \
   -o -print | busybox cpio -o -H newc 2>/dev/null) > "$W/root.cpio"
(cd "$O" && find . | busybox cpio -o -H newc 2>/dev/null) >> "$W/root.cpio"
gzip -1 < "$W/root.cpio" > "$W/initrd-sd.gz"
mv "$W/initrd-sd.gz" "$OUT/initrd-sd.gz"
echo "$STAMP" > "$OUT/version"
