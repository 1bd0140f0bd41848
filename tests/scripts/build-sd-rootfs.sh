#!/bin/sh
# build-sd-rootfs.sh OUTDIR: a Debian bookworm rootfs with systemd as init, for the
# tests that need a real init in a container (services that read a secret at boot, an
# init that mounts its own tmpfs on /run): OUTDIR/rootfs. debootstrap --variant=minbase
# with systemd (about 40 s and 240 MB; docs/TESTLAB.md Part C). The probe unit
# `phx-probe.service` runs as early as systemd allows (no default dependencies, pulled
# in by sysinit.target) and appends to /var/log/phx-probe.log whether
# /etc/app/token could be read and, if so, the MD5 of what it read (never the value).
# Idempotent: does nothing when OUTDIR was built by this version.
set -eu
VERSION=1 # bump when the rootfs changes
OUT=$(realpath -m "$1")
# Tests build this in parallel: one at a time, and the others find it built.
mkdir -p "$(dirname "$OUT")"
exec 9>"$OUT.lock"
flock 9
[ -x "$OUT/rootfs/lib/systemd/systemd" ] && [ "$(cat "$OUT/version" 2>/dev/null)" = "$VERSION" ] && exit 0
rm -rf "$OUT"
mkdir -p "$OUT"
MIRROR=${PHX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
debootstrap --variant=minbase --include=systemd,systemd-sysv bookworm "$OUT/rootfs.new" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 || {
  tail -20 "$OUT/debootstrap.log" >&2
  exit 1
}
R="$OUT/rootfs.new"
cat > "$R/etc/systemd/system/phx-probe.service" <<'UNIT'
[Unit]
Description=A service that reads its secret at once
DefaultDependencies=no

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'if [ -r /etc/app/token ]; then echo "found $(md5sum < /etc/app/token | cut -c1-32)"; else echo missing; fi >> /var/log/phx-probe.log'

[Install]
WantedBy=sysinit.target
UNIT
ln -s /etc/systemd/system/phx-probe.service "$R/etc/systemd/system/sysinit.target.wants/phx-probe.service"
echo 'app:x:1000:1000::/:/bin/sh' >> "$R/etc/passwd"
echo 'app:x:1000:' >> "$R/etc/group"
# No getty on a console the container does not have.
ln -sf /dev/null "$R/etc/systemd/system/console-getty.service"
rm -rf "$R/var/cache/apt/archives/"*.deb
mv "$R" "$OUT/rootfs"
echo "$VERSION" > "$OUT/version"
