# The guest agent's batch writer: many small files in one `guest-exec` (after lib.sh).
# Nothing but this program is in argv. Stdin: a line with the number of files, then per
# file eight lines (directory, file name, mode, owner, group, temporary name, size,
# sha256) followed by exactly `size` bytes of content. Prints per file
# `ok N sha256 DIGEST`, `ok N size -` or `err N why`, and `fatal why` when it cannot go
# on (phx-hook checks every reported digest or size against what it sent).
# shellcheck shell=sh

set -u
if [ ! -d /proc/self/fd ]; then
  echo "fatal the guest has no /proc, which phx-hook needs to write files safely"
  exit 0
fi
phx_begin
# phx_count is set by lib.sh's phx_begin.
# shellcheck disable=SC2154
while [ "$phx_i" -lt "$phx_count" ]; do
  phx_i=$((phx_i + 1))
  if ! { IFS= read -r dir && IFS= read -r name && IFS= read -r mode && IFS= read -r owner &&
    IFS= read -r group && IFS= read -r tmp && IFS= read -r size && IFS= read -r sum; }; then
    echo "fatal the header of file $phx_i is truncated"
    exit 0
  fi
  case $size in
    '' | *[!0-9]*)
      echo "fatal the header of file $phx_i is malformed"
      exit 0
      ;;
  esac
  why='' how='' got=''
  if ! phx_cd "$dir" || ! phx_open "$tmp"; then
    dd bs=1 count="$size" of=/dev/null 2>/dev/null
    echo "err $phx_i $why"
    continue
  fi
  if ! phx_own "$owner" "$group" "$mode"; then
    dd bs=1 count="$size" of=/dev/null 2>/dev/null
    phx_discard "$tmp"
    echo "err $phx_i $why"
    continue
  fi
  if ! phx_write "$size"; then
    why="cannot write $PWD/$tmp"
  elif phx_verify "$sum" "$size" && phx_commit "$tmp" "$name"; then
    exec 3>&-
    echo "ok $phx_i $how $got"
    continue
  fi
  phx_discard "$tmp"
  echo "err $phx_i $why"
done
