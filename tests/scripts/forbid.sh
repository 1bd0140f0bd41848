#!/usr/bin/env bash
# Module-boundary rules (STYLE.md §5.2) and markers that must not land on main.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail=0
check() { # description, grep pattern, files that may match (regex on path)
  local what=$1 pat=$2 allowed=$3
  local hits
  hits=$(grep -rnE "$pat" src --include='*.rs' | grep -vE "^($allowed):" || true)
  if [ -n "$hits" ]; then
    echo "forbid: $what:"; echo "$hits"; fail=1
  fi
}
check "clap outside src/cli" '\bclap::|use clap' 'src/cli/[a-z_]+\.rs'
check "rPGP outside src/vault/pgp.rs" '\bpgp::(composed|types|crypto|packet|errors|armor|ser)\b' 'src/vault/pgp\.rs'
check "YAML crate outside input/config/manifest" 'serde_saphyr' 'src/(input|config|manifest)\.rs'
check "unsafe outside src/sys.rs" '\bunsafe\b' 'src/sys\.rs'
check "leftover markers" '\b(todo!|unimplemented!|dbg!)' '^$'
exit $fail
