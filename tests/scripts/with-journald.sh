#!/bin/sh
# with-journald.sh OUT SCRIPT: run `sh -c SCRIPT` next to a real systemd-journald, in a
# mount namespace of its own (tmpfs on /run/systemd, /run/log and /var/log/journal, so the
# host's journal, if any, is neither seen nor touched), then write everything journald
# stored to OUT as journalctl's JSON lines. Exits with SCRIPT's status.
set -eu
OUT=$1
SCRIPT=$2
# The inner program is expanded by the inner shell, on purpose.
# shellcheck disable=SC2016
exec unshare --mount --propagation private -- sh -ec '
  out=$1 script=$2
  for d in /run/systemd /run/log /var/log/journal; do
    mkdir -p "$d"
    mount -t tmpfs -o mode=0755 tmpfs "$d"
  done
  mkdir -p /run/systemd/journal
  /lib/systemd/systemd-journald </dev/null >/dev/null 2>&1 &
  jd=$!
  i=0
  until [ -S /run/systemd/journal/socket ]; do
    i=$((i + 1))
    [ "$i" -le 100 ] || { echo "journald did not come up" >&2; exit 1; }
    sleep 0.05
  done
  rc=0
  sh -c "$script" || rc=$?
  journalctl --sync 2>/dev/null || sleep 0.5
  journalctl -D /run/log/journal -o json --no-pager >"$out" 2>/dev/null || true
  kill "$jd" 2>/dev/null || true
  exit "$rc"
' with-journald "$OUT" "$SCRIPT"
