#!/bin/sh
# build-vm.sh OUTDIR: a tiny VM for the end-to-end agent test, built from Debian's
# packages: OUTDIR/vmlinuz (the Debian kernel, unpacked, not installed) and
# OUTDIR/initrd.gz (busybox-static, the host's qemu-ga with its libraries, the virtio
# modules). The guest deliberately has a minimal busybox: no sha256sum, no install, no
# udev, no /dev/stdin, so phx-hook's busybox fallbacks are what runs.
# Idempotent: does nothing when both files exist and were built by this version.
set -eu
VERSION=3 # bump when the image changes
OUT=$(realpath -m "$1")
# Tests build this in parallel: one at a time, and the others find it built.
mkdir -p "$(dirname "$OUT")"
exec 9>"$OUT.lock"
flock 9
[ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.gz" ] && [ "$(cat "$OUT/version" 2>/dev/null)" = "$VERSION" ] && exit 0
mkdir -p "$OUT"
W=$(mktemp -d "$OUT/build.XXXXXX")
trap 'rm -rf "$W"' EXIT
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$KPKG" ] || { echo "build-vm: cannot find the kernel package (apt-get update?)" >&2; exit 1; }
(cd "$W" && apt-get download -q "$KPKG" >/dev/null)
dpkg-deb -x "$W"/"$KPKG"_*.deb "$W/kpkg"
KVER=$(ls "$W/kpkg/lib/modules")
MK="$W/kpkg/lib/modules/$KVER/kernel"
R="$W/root"
mkdir -p "$R/bin" "$R/proc" "$R/sys" "$R/dev" "$R/run" "$R/tmp" "$R/etc" "$R/root" "$R/mod" "$R/usr/sbin" "$R/lib64" "$R/lib/x86_64-linux-gnu"
cp /bin/busybox "$R/bin/busybox"
for a in sh mount mkdir ls cat insmod sleep ln echo mdev chmod chown id stat hostname mv rm wc touch grep seq basename reboot; do
  ln -sf busybox "$R/bin/$a"
done
cp /usr/sbin/qemu-ga "$R/usr/sbin/"
for lib in $(ldd /usr/sbin/qemu-ga | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do cp -L "$lib" "$R$lib"; done
for m in drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko drivers/virtio/virtio_pci_legacy_dev.ko \
         drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci.ko drivers/char/virtio_console.ko \
         drivers/block/virtio_blk.ko fs/minix/minix.ko drivers/firmware/qemu_fw_cfg.ko; do
  cp "$MK/$m" "$R/mod/"
done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\napp:x:1000:\n' > "$R/etc/group"
cat > "$R/init" <<'INIT'
#!/bin/sh
export PATH=/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmpfs /run
# Two passes: module dependencies differ between kernel builds.
for pass in 1 2; do
  for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console virtio_blk minix qemu_fw_cfg; do
    grep -q "^$m " /proc/modules || insmod /mod/$m.ko 2>/dev/null
  done
done
# No udev: make the /dev/virtio-ports/<name> link ourselves.
for i in $(seq 1 200); do
  for p in /sys/class/virtio-ports/*; do
    [ -e "$p/name" ] || continue
    n=$(cat "$p/name"); mkdir -p /dev/virtio-ports; ln -sf "../$(basename "$p")" "/dev/virtio-ports/$n"
  done
  [ -e /dev/virtio-ports/org.qemu.guest_agent.0 ] && break
  sleep 0.05
done
# A disk, when the VM has one: a minix filesystem on /dev/vda at /data (the guest's
# "disk", which the RAM-only test searches from the host).
for i in $(seq 1 50); do [ -b /dev/vda ] && break; sleep 0.05; done
if [ -b /dev/vda ]; then mkdir -p /data && mount -t minix /dev/vda /data; fi
hostname phxvm
echo "GUEST: starting qemu-ga" > /dev/console
/usr/sbin/qemu-ga -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 -t /run -b guest-fsfreeze-freeze,guest-fsfreeze-thaw &
while true; do sleep 3600; done
INIT
chmod +x "$R/init"
(cd "$R" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$W/initrd.gz")
cp "$W/kpkg/boot/vmlinuz-$KVER" "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
mv "$W/initrd.gz" "$OUT/initrd.gz"
echo "$VERSION" > "$OUT/version"
echo "build-vm: $OUT/vmlinuz ($KVER) and $OUT/initrd.gz" >&2
