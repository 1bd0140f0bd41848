# The guest agent's writer for one large file, in pieces of at most 1 MiB, one
# `guest-exec` each (after lib.sh). The pieces are kept in a private staging directory
# (root, 0700, a fresh unpredictable name) beside the destination, whose identity is
# checked on every call: its physical path, owner and mode, and a random token inside
# that only phx-hook and root can know. The last call assembles them into a new file
# created, owned and verified through its descriptor, as the batch writer does.
#
# A file that fits in one piece takes one call, `whole`, and no staging directory.
#
# Stdin: lines `op` (whole, first, append, last or abort), directory, file name,
# staging name, token, piece number; for `whole` and `last` also mode, owner, group,
# temporary name, size, sha256; then the piece itself to the end of stdin. Exit 0 and
# `phx-ok HOW SIZE SUM` (whole, last) or nothing (first, append); otherwise a reason on
# stderr and a non-zero exit.
# shellcheck shell=sh

set -u
die() {
  echo "$1" >&2
  exit 1
}
[ -d /proc/self/fd ] || die "the guest has no /proc, which phx-hook needs to write files safely"
{ IFS= read -r op && IFS= read -r dir && IFS= read -r name && IFS= read -r stage &&
  IFS= read -r token && IFS= read -r piece; } || die "no header on stdin"
case $piece in '' | *[!0-9]*) die "malformed header" ;; esac

# phx_stage: enter the staging directory and make sure it is ours.
phx_stage() {
  phx_base=${PWD%/}
  if ! cd -P -- "$stage" 2>/dev/null || [ "$PWD" != "$phx_base/$stage" ]; then
    die "the staging directory $phx_base/$stage is gone or was replaced"
  fi
  # shellcheck disable=SC2046
  set -- $(ls -ldn . 2>/dev/null)
  case "${1:-}:${3:-}" in
    drwx------*:0) ;;
    *) die "the staging directory $phx_base/$stage is not root's private directory" ;;
  esac
  phx_id=
  IFS= read -r phx_id <.id 2>/dev/null
  [ "$phx_id" = "$token" ] || die "the staging directory $phx_base/$stage is not this delivery's"
}

# phx_piece N: store the rest of stdin as piece N.
phx_piece() {
  set -C
  { command exec 4>"$1"; } 2>/dev/null || die "cannot store a piece in $PWD"
  set +C
  cat >&4 || die "cannot store a piece in $PWD"
  exec 4>&-
}

# phx_finish: check the file behind descriptor 3 and rename it into place.
phx_finish() {
  if phx_verify "$sum" "$size" && phx_commit "$tmp" "$name"; then
    exec 3>&-
    # how, got and why are set by lib.sh's phx_verify and phx_commit.
    # shellcheck disable=SC2154
    echo "phx-ok $how $size $got"
    exit 0
  fi
  phx_discard "$tmp"
  # shellcheck disable=SC2154
  die "$why"
}

phx_cd "$dir" || die "$why"
case $op in
  whole | last)
    { IFS= read -r mode && IFS= read -r owner && IFS= read -r group && IFS= read -r tmp &&
      IFS= read -r size && IFS= read -r sum; } || die "no header on stdin"
    ;;
esac
case $op in
  whole)
    phx_open "$tmp" || die "$why"
    if ! phx_own "$owner" "$group" "$mode"; then
      phx_discard "$tmp"
      die "$why"
    fi
    if ! cat >&3; then
      phx_discard "$tmp"
      die "cannot write $PWD/$tmp"
    fi
    phx_finish
    ;;
  first)
    mkdir -m 700 -- "$stage" 2>/dev/null || die "cannot create a staging directory in $PWD"
    cd -P -- "$stage" 2>/dev/null || die "cannot enter the staging directory"
    set -C
    { command exec 4>.id; } 2>/dev/null || die "cannot write in the staging directory"
    set +C
    printf '%s\n' "$token" >&4
    exec 4>&-
    cd -P .. || die "cannot leave the staging directory"
    phx_stage
    phx_piece "$piece"
    ;;
  append)
    phx_stage
    phx_piece "$piece"
    ;;
  last)
    phx_stage
    phx_piece "$piece"
    cd -P .. || die "cannot leave the staging directory"
    phx_open "$tmp" || die "$why"
    if ! phx_own "$owner" "$group" "$mode"; then
      phx_discard "$tmp"
      die "$why"
    fi
    phx_stage
    phx_k=0
    while [ "$phx_k" -le "$piece" ]; do
      if ! cat -- "$phx_k" >&3; then
        cd -P .. && phx_discard "$tmp"
        die "cannot assemble the file"
      fi
      phx_k=$((phx_k + 1))
    done
    rm -f -- .id [0-9]*
    cd -P .. || die "cannot leave the staging directory"
    rmdir -- "$stage" 2>/dev/null
    phx_finish
    ;;
  abort)
    if [ -d "$stage" ] && [ ! -L "$stage" ]; then
      (phx_stage && rm -f -- .id [0-9]*) >/dev/null 2>&1
      rmdir -- "$stage" 2>/dev/null
    fi
    ;;
  *) die "unknown operation" ;;
esac
