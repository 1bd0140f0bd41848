# phx-hook's guest-side library: the steps every transport that writes through a shell
# in the guest (the guest agent's `guest-exec`, `pct exec`) takes, written once. It runs
# as root in a guest whose other users may be hostile: they can watch a directory they
# can write (inotify), and swap any name in it for a symbolic link, a FIFO or a file of
# their own between two of our commands. So:
#
# - directories are entered one component at a time (phx_cd); a symbolic link is
#   followed only where only root can have put it, and every other step is checked
#   after the fact against the physical working directory ($PWD after `cd -P`);
# - a file is created exclusively under a fresh, unpredictable name that never appears
#   in argv (phx_open), and from then on reached only through its descriptor,
#   /proc/self/fd/3: owner and mode are set, content written and read back through it,
#   never through a name another user could have replaced;
# - the only name resolved again is the final rename, relative to the pinned working
#   directory, and its result is checked against the descriptor (phx_commit).
#
# Every function sets $why (one line, no secret) when it fails. POSIX sh: dash, bash and
# busybox ash; tools: ls, mkdir, chown, chmod, mv, rm, rmdir, dd, cat, wc, readlink (and ln
# and stat -f for RAM-only files), and
# sha256sum when the guest has it.
# shellcheck shell=sh

umask 077

# phx_root_only DIR: only root can write in DIR (owner uid 0, no group or other write
# bit), so no other user can add, remove or rename its entries.
phx_root_only() {
  # shellcheck disable=SC2046 # word splitting of `ls -ldn` is the point
  set -- $(ls -ldn -- "$1" 2>/dev/null)
  [ "${3:-}" = 0 ] || return 1
  case ${1:-} in
    d????w* | d???????w*) return 1 ;;
    d*) return 0 ;;
  esac
  return 1
}

# phx_cd DIR [strict]: make the absolute directory DIR the working directory, creating
# missing components (root, 0755). A symbolic link is followed only when the directory
# holding it is one only root can write, and then its target is walked the same way,
# component by component. With `strict` (the pct transport, whose `pct push` resolves
# the path again later), every directory on the way must be one only root can write.
phx_cd() {
  phx_rest=${1#/} phx_strict=${2:-} phx_links=0
  cd / || { why="cannot enter /"; return 1; }
  while :; do
    if [ -n "$phx_strict" ] && ! phx_root_only .; then
      why="$PWD can be written by users other than root, so \`pct push\` cannot write below it safely; deliver elsewhere or use \`lxc_transport: native\`"
      return 1
    fi
    [ -n "$phx_rest" ] || return 0
    phx_comp=${phx_rest%%/*}
    case $phx_rest in
      */*) phx_rest=${phx_rest#*/} ;;
      *) phx_rest= ;;
    esac
    phx_here=${PWD%/}
    case $phx_comp in
      '' | .) continue ;;
      ..)
        phx_up=${phx_here%/*}
        if ! cd -P .. 2>/dev/null || [ "$PWD" != "${phx_up:-/}" ]; then
          why="cannot go up from $phx_here"
          return 1
        fi
        continue
        ;;
    esac
    if [ -L "$phx_comp" ]; then
      phx_links=$((phx_links + 1))
      if [ "$phx_links" -gt 40 ]; then
        why="too many symbolic links below $phx_here"
        return 1
      fi
      if ! phx_root_only .; then
        why="$phx_here/$phx_comp is a symbolic link in a directory that users other than root can write"
        return 1
      fi
      phx_to=$(readlink -- "$phx_comp") || {
        why="cannot read the link $phx_here/$phx_comp"
        return 1
      }
      case $phx_to in
        /*) cd / || return 1 ;;
      esac
      phx_rest=${phx_to#/}${phx_rest:+/$phx_rest}
      continue
    fi
    if [ ! -e "$phx_comp" ]; then
      mkdir -m 755 -- "$phx_comp" 2>/dev/null
    fi
    if [ ! -d "$phx_comp" ]; then
      if [ -e "$phx_comp" ]; then
        why="$phx_here/$phx_comp exists and is not a directory"
      else
        why="cannot create directory $phx_here/$phx_comp"
      fi
      return 1
    fi
    cd -P -- "$phx_comp" 2>/dev/null || {
      why="cannot enter $phx_here/$phx_comp"
      return 1
    }
    if [ "$PWD" != "$phx_here/$phx_comp" ]; then
      why="$phx_here/$phx_comp was replaced by a symbolic link during delivery"
      return 1
    fi
  done
}

# phx_open NAME: create NAME in the working directory as descriptor 3: exclusively
# (`set -C`), private (umask 077), and checked to be the new, empty regular file of ours
# it must be (a shell opens an existing FIFO under `set -C`).
phx_open() {
  set -C
  if ! { command exec 3>"$1"; } 2>/dev/null; then
    set +C
    why="cannot create a file in $PWD"
    return 1
  fi
  set +C
  if [ ! -f /proc/self/fd/3 ] || [ -s /proc/self/fd/3 ] || [ ! -O /proc/self/fd/3 ]; then
    exec 3>&-
    why="$PWD/$1 is not a new file of ours (another process created it)"
    return 1
  fi
}

# phx_own OWNER GROUP MODE: set the final owner and mode on descriptor 3, before any
# content (chown and chmod follow the /proc/self/fd/3 link to the open file itself).
phx_own() {
  case "$1:$2" in
    root:root | 0:0 | root:0 | 0:root) ;;
    *)
      chown -- "$1:$2" /proc/self/fd/3 2>/dev/null || {
        why="cannot set owner $1:$2 (do the user and group exist in the guest?)"
        return 1
      }
      ;;
  esac
  if [ "$3" != 0600 ]; then
    chmod -- "$3" /proc/self/fd/3 2>/dev/null || {
      why="cannot set mode $3"
      return 1
    }
  fi
}

# phx_write SIZE: copy exactly SIZE bytes of stdin to descriptor 3. Whatever happens to
# the write, all SIZE bytes are consumed, so the next file's header is read from the
# right place (`dd bs=1` reads a pipe exactly; the second `cat` drains after a failure).
phx_write() {
  dd bs=1 count="$1" 2>/dev/null | {
    cat >&3 && exit 0
    cat >/dev/null
    exit 1
  }
}

# phx_verify SHA256 SIZE: the file behind descriptor 3 holds what was sent: its SHA-256
# (which pins the size too), or its size when the guest has no sha256sum. Sets $how
# (sha256 or size) and $got (the digest, or -), which the caller reports.
# shellcheck disable=SC2034
phx_verify() {
  if [ -z "${phx_has_sha:-}" ]; then
    phx_has_sha=no phx_has_head=no
    if command -v sha256sum >/dev/null 2>&1; then phx_has_sha=yes; fi
    if command -v head >/dev/null 2>&1; then phx_has_head=yes; fi
  fi
  if [ "$phx_has_sha" = yes ]; then
    got=$(phx_upto "$(($2 + 1))" | sha256sum) || {
      why="cannot read back the file"
      return 1
    }
    got=${got%% *} how=sha256
    if [ "$got" != "$1" ]; then
      why="verification failed: the content in the guest differs (sha256)"
      return 1
    fi
    return 0
  fi
  phx_n=$(phx_upto "$(($2 + 1))" | wc -c) || {
    why="cannot read back the file"
    return 1
  }
  phx_n=$((phx_n + 0))
  if [ "$phx_n" != "$2" ]; then
    why="verification failed: $phx_n bytes in the guest instead of $2"
    return 1
  fi
  how=size got=-
}

# phx_upto N: at most N bytes of the file behind descriptor 3 (all of it without head):
# its owner may keep appending to it while it is read back.
phx_upto() {
  if [ "$phx_has_head" = yes ]; then
    head -c "$1" </proc/self/fd/3
  else
    cat </proc/self/fd/3
  fi
}

# phx_commit TMP NAME: rename TMP over NAME in the working directory (never into NAME
# when it is a directory: `mv -T`), then check that NAME is the file behind descriptor 3.
phx_commit() {
  if [ -d "$2" ] && [ ! -L "$2" ]; then
    why="$PWD/$2 is a directory"
    return 1
  fi
  # A link at NAME is replaced, never followed (as rename(2) does). busybox's `mv -T`
  # refuses a link to a directory, so that link is removed first.
  if ! mv -f -T -- "$1" "$2" 2>/dev/null; then
    if ! { [ -L "$2" ] && rm -f -- "$2" && mv -f -T -- "$1" "$2" 2>/dev/null; }; then
      why="cannot rename the temporary file to $PWD/$2"
      return 1
    fi
  fi
  # `-ef` (same device and inode) is not POSIX, but dash, bash and busybox all have it.
  # shellcheck disable=SC3013
  if [ ! "$2" -ef /proc/self/fd/3 ]; then
    # `why` is the including program's to report.
    # shellcheck disable=SC2034
    why="$PWD/$2 was replaced during delivery (users other than root can write in $PWD)"
    return 1
  fi
}

# phx_discard TMP: close descriptor 3 and remove TMP if it is still ours.
phx_discard() {
  if [ -e /proc/self/fd/3 ]; then
    # shellcheck disable=SC3013
    if [ "$1" -ef /proc/self/fd/3 ]; then rm -f -- "$1"; fi
    exec 3>&-
  fi
}

# phx_begin: the number of items, from stdin's first line, into phx_count; phx_i counts
# them.
# shellcheck disable=SC2034
phx_begin() {
  IFS= read -r phx_count || {
    echo "fatal no header on stdin"
    exit 0
  }
  phx_i=0
}
