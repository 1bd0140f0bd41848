# The guest agent's probe for the reconciler (standalone: no lib.sh): what the guest holds now,
# without reading any file. Stdin: per place two lines, the file that holds a delivery's
# bytes, and the destination that must be a symbolic link to it (a RAM-only file) or an
# empty line. Prints the guest kernel's boot id (it changes at every boot, so a reboot
# from inside the guest is seen), then per place `ok INODE SIZE MTIME CTIME MODE UID GID`
# (`stat` of the name itself, not of a link's target), or `missing` (also when the
# destination is not the link it must be), or `nostat` when the guest has no `stat`.
# shellcheck shell=sh

set -u
boot=-
if [ -r /proc/sys/kernel/random/boot_id ]; then
  IFS= read -r boot </proc/sys/kernel/random/boot_id || boot=-
fi
echo "boot $boot"
if ! command -v stat >/dev/null 2>&1; then
  while IFS= read -r file && IFS= read -r link; do echo nostat; done
  exit 0
fi
# Which files are regular files (builtins only; `readlink` only for RAM-only files), then
# one `stat` for all of them.
n=0
set --
while IFS= read -r file && IFS= read -r link; do
  n=$((n + 1))
  ok=0
  if [ -f "$file" ] && [ ! -L "$file" ]; then
    ok=1
    if [ -n "$link" ] && { [ ! -L "$link" ] || [ "$(readlink -- "$link")" != "$file" ]; }; then
      ok=0
    fi
  fi
  if [ "$ok" = 1 ]; then
    set -- "$@" "$file"
  fi
  eval "file_$n=$ok"
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
