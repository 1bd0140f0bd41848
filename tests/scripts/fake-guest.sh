#!/bin/sh
# fake-guest.sh ROOTDIR [extra qemu-ga args...]
# The real Debian qemu-ga, confined to ROOTDIR: a private mount+pid namespace and a
# chroot, so "the guest's filesystem" is a directory the tests can inspect. The host's
# /usr is bind-mounted read-only (the guest has coreutils); /etc, /tmp, /run ... are
# plain directories under ROOTDIR. The agent socket is ROOTDIR/run/qga.sock.
# The agent's syslog lines go to ROOT/run/syslog.sock (a datagram socket, if present).
# Teardown: SIGKILL this process (unshare --kill-child takes qemu-ga with it).
set -eu
mkdir -p "$1"; ROOT=$(realpath "$1"); shift
mkdir -p "$ROOT/usr" "$ROOT/proc" "$ROOT/dev" "$ROOT/tmp" "$ROOT/etc" "$ROOT/run" "$ROOT/root" "$ROOT/var"
chmod 1777 "$ROOT/tmp"; chmod 0700 "$ROOT/root"
for d in bin lib lib64 sbin; do [ -L "$ROOT/$d" ] || ln -s "usr/$d" "$ROOT/$d"; done
[ -e "$ROOT/var/run" ] || ln -s ../run "$ROOT/var/run"
[ -e "$ROOT/etc/passwd" ] || printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\napp:x:1000:1000::/home/app:/bin/sh\n' > "$ROOT/etc/passwd"
[ -e "$ROOT/etc/group" ]  || printf 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\n' > "$ROOT/etc/group"
cp -n /etc/ld.so.cache /etc/nsswitch.conf "$ROOT/etc/" 2>/dev/null || true
rm -f "$ROOT/run/qga.sock"
# Commands that would act on the real host are always blocked. With
# PHX_ALLOW_FREEZE_LIST=1 a test may freeze one filesystem of its own by name
# (guest-fsfreeze-freeze-list with mountpoints, and thaw); freezing everything stays blocked.
BLOCK=guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid,guest-set-time,guest-fsfreeze-freeze,guest-set-vcpus,guest-set-memory-blocks,guest-fstrim
if [ "${PHX_ALLOW_FREEZE_LIST:-}" != 1 ]; then BLOCK=$BLOCK,guest-fsfreeze-freeze-list,guest-fsfreeze-thaw; fi
export ROOT BLOCK
# The inner program is expanded by the inner shell, on purpose.
# shellcheck disable=SC2016
# With PHX_RAM_DIR=1 the guest's /run/phx-hook is a tmpfs of its own (where RAM-only
# files go; the guest's /run is otherwise a plain directory on the host's disk).
exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin ROOT="$ROOT" BLOCK="$BLOCK" PHX_EXTRA_BLOCK="${PHX_EXTRA_BLOCK:-}" PHX_RAM_DIR="${PHX_RAM_DIR:-}" \
  unshare --mount --pid --fork --kill-child --propagation private -- sh -ec '
    mount --bind /usr "$ROOT/usr"
    mount -o remount,bind,ro "$ROOT/usr"
    mount -t proc proc "$ROOT/proc"
    mount -t tmpfs -o mode=0755,nosuid tmpfs "$ROOT/dev"
    for n in null zero full random urandom tty; do touch "$ROOT/dev/$n"; mount --bind /dev/$n "$ROOT/dev/$n"; done
    ln -s /proc/self/fd "$ROOT/dev/fd"
    if [ "$PHX_RAM_DIR" = 1 ]; then
      mkdir -p "$ROOT/run/phx-hook"
      mount -t tmpfs -o mode=0711 tmpfs "$ROOT/run/phx-hook"
    fi
    # The agent logs each guest-exec argv with syslog(3): /dev/log leads to a socket the
    # test harness may listen on at ROOT/run/syslog.sock.
    ln -s /run/syslog.sock "$ROOT/dev/log"
    cd "$ROOT"
    extra_block=${PHX_EXTRA_BLOCK:-}
    exec chroot "$ROOT" /usr/sbin/qemu-ga -m unix-listen -p /run/qga.sock -t /run -b "$BLOCK$extra_block" "$@"
  ' fake-guest "$@"
