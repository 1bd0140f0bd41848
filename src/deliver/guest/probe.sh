# The guest agent's probe for the reconciler (standalone: no lib.sh): what the guest holds now,
# without reading any file. Stdin: one destination per line. Prints the guest kernel's
# boot id (it changes at every boot, so a reboot from inside the guest is seen), then per
# destination `ok INODE SIZE MTIME CTIME MODE UID GID` (`stat` of the name itself, not
# of a link's target) or `missing`, or `nostat` when the guest has no `stat`.
# shellcheck shell=sh

set -u
boot=-
if [ -r /proc/sys/kernel/random/boot_id ]; then
  IFS= read -r boot </proc/sys/kernel/random/boot_id || boot=-
fi
echo "boot $boot"
if ! command -v stat >/dev/null 2>&1; then
  while IFS= read -r dest; do echo nostat; done
  exit 0
fi
# Which destinations are regular files (builtins only), then one `stat` for all of them.
n=0
set --
while IFS= read -r dest; do
  n=$((n + 1))
  if [ -f "$dest" ] && [ ! -L "$dest" ]; then
    set -- "$@" "$dest"
    eval "file_$n=1"
  else
    eval "file_$n=0"
  fi
done
stats=
if [ $# -gt 0 ]; then
  stats=$(stat -c '%i %s %Y %Z %a %u %g' -- "$@" 2>/dev/null) || stats=
fi
# One line of `stat` per existing file, in order.
old_ifs=$IFS
IFS='
'
set -f
# shellcheck disable=SC2086 # split on newlines, on purpose
set -- $stats
set +f
IFS=$old_ifs
i=0
is=0
while [ "$i" -lt "$n" ]; do
  i=$((i + 1))
  eval "is=\$file_$i"
  if [ "$is" = 1 ] && [ $# -gt 0 ]; then
    echo "ok $1"
    shift
  else
    echo missing
  fi
done
