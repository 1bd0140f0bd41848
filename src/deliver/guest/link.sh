# RAM-only files (`storage: ram`), last step (after lib.sh): make each destination a
# symbolic link to the file in RAM, replacing whatever was there atomically (a new link
# under a fresh name, renamed over it; never followed), then check the link. Stdin: a
# line with the number of links, then per link four lines (directory, name, temporary
# name, target). Prints `ok N` or `err N why` per link.
# shellcheck shell=sh

set -u
phx_begin
# phx_count is set by lib.sh's phx_begin.
# shellcheck disable=SC2154
while [ "$phx_i" -lt "$phx_count" ]; do
  phx_i=$((phx_i + 1))
  if ! { IFS= read -r dir && IFS= read -r name && IFS= read -r tmp && IFS= read -r target; }; then
    echo "fatal the header of link $phx_i is truncated"
    exit 0
  fi
  why=
  if ! phx_cd "$dir"; then
    echo "err $phx_i $why"
    continue
  fi
  if [ -d "$name" ] && [ ! -L "$name" ]; then
    echo "err $phx_i $PWD/$name is a directory"
    continue
  fi
  # -n: a link another user planted at the (argv-visible) temporary name is not followed
  # into the directory it points to; ln fails instead.
  if ! ln -s -n -- "$target" "$tmp" 2>/dev/null; then
    echo "err $phx_i cannot create a link in $PWD"
    continue
  fi
  # `mv -T` replaces a link at NAME rather than following it; busybox refuses a link to
  # a directory, which is removed first.
  if ! mv -f -T -- "$tmp" "$name" 2>/dev/null &&
    ! { [ -L "$name" ] && rm -f -- "$name" && mv -f -T -- "$tmp" "$name" 2>/dev/null; }; then
    rm -f -- "$tmp"
    echo "err $phx_i cannot replace $PWD/$name"
    continue
  fi
  if [ -L "$name" ] && [ "$(readlink -- "$name")" = "$target" ]; then
    echo "ok $phx_i"
  else
    echo "err $phx_i $PWD/$name was replaced during delivery"
  fi
done
