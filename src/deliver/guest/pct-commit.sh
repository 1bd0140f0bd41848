# The pct transport's last step, in the container through `pct exec` (after lib.sh):
# for each file `pct push` wrote to a temporary name, check it (a regular file, the
# right size and digest: `pct push` can exit 0 when the copy failed) and rename it over
# the destination. The directories were checked to be writable by root alone, so names
# are stable here. Stdin: per file five lines (directory, file name, temporary name,
# sha256, size). Prints `ok sha256`, `ok size` or `err why` per file.
# shellcheck shell=sh

set -u
while IFS= read -r dir && IFS= read -r name && IFS= read -r tmp && IFS= read -r sum &&
  IFS= read -r size; do
  why=
  if ! phx_cd "$dir" strict; then
    echo "err $why"
    continue
  fi
  if [ ! -f "$tmp" ] || [ -L "$tmp" ]; then
    echo "err the pushed file is missing (pct push failed)"
    continue
  fi
  # Descriptor 3 on the pushed file, for the checks phx_verify and phx_commit make.
  if ! { command exec 3<"$tmp"; } 2>/dev/null; then
    echo "err cannot read the pushed file"
    continue
  fi
  if phx_verify "$sum" "$size" && phx_commit "$tmp" "$name"; then
    # how (and why, below) are set by lib.sh's phx_verify and phx_commit.
    # shellcheck disable=SC2154
    echo "ok $how"
  else
    rm -f -- "$tmp"
    echo "err $why"
  fi
  exec 3<&-
done
