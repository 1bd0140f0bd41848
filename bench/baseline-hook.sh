#!/bin/bash
# The baseline phx-hook must beat: the hookscript an administrator would write from the
# plan phx-hook replaces. One gpg decrypt (the host key in a GnuPG home, agent warm), one
# jq call that checks every key the guest's JSON manifest names exists; exit 1 if one is
# missing. As lean as such a script can be: no subshells, one pipeline.
#   BASELINE_VAULT, BASELINE_MANIFESTS and GNUPGHOME come from the environment.
set -euo pipefail
[ "$2" = pre-start ] || exit 0
m="$BASELINE_MANIFESTS/$1.json"
[ -f "$m" ] || exit 0
gpg --batch --quiet --decrypt "$BASELINE_VAULT" |
  jq -e --slurpfile m "$m" '. as $v | all($m[0].keys[]; . as $k | ($v | getpath($k | split("/"))) | type == "string")' >/dev/null ||
  { echo "guest $1: a key in $m is missing from the vault" >&2; exit 1; }
