# The pct transport's first step, in the container through `pct exec` (after lib.sh):
# create each destination's parent directories and make sure `pct push` can write there
# safely. `pct push` resolves its path again, so every directory on the way must be one
# only root can write (phx_cd strict). Stdin: per file, two lines (directory, file
# name). Prints `ok` or `err why` per file.
# shellcheck shell=sh

set -u
while IFS= read -r dir && IFS= read -r name; do
  why=
  if ! phx_cd "$dir" strict; then
    echo "err $why"
  elif [ -d "$name" ] && [ ! -L "$name" ]; then
    echo "err $PWD/$name is a directory"
  else
    echo ok
  fi
done
