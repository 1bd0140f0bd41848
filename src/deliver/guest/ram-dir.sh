# RAM-only files (`storage: ram`), first step (after lib.sh): make sure the directory
# they go to exists, only root can write it, and it is on a RAM-backed filesystem, by
# the filesystem's own type (statfs: tmpfs 0x01021994, ramfs 0x858458f6), never by its
# name: a link or a bind mount that leads to a disk is refused. Stdin: the directory.
# Prints `ok TYPE` or `err why`.
# shellcheck shell=sh

set -u
why=
IFS= read -r dir || {
  echo "err no directory on stdin"
  exit 0
}
if ! phx_cd "$dir"; then
  echo "err $why"
  exit 0
fi
if ! phx_root_only .; then
  echo "err $PWD can be written by users other than root"
  exit 0
fi
if ! type=$(stat -f -c %t . 2>/dev/null) || [ -z "$type" ]; then
  echo "err cannot tell which filesystem $PWD is on (the guest's stat has no -f)"
  exit 0
fi
case $type in
  1021994 | 858458f6)
    # Others may enter it (to read the files their manifest gave them), not list it.
    chmod 711 . 2>/dev/null
    echo "ok $type"
    ;;
  *) echo "err $PWD is not on a RAM-backed filesystem (filesystem type 0x$type); mount a tmpfs on ${PWD%/*} in the guest" ;;
esac
