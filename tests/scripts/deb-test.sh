#!/bin/sh
# deb-test.sh PACKAGE.deb: what an administrator does with the package, on this machine
# (as root): install it with dpkg, run `phx-hook doctor`, render the man page, load the
# bash completion, remove it, purge it; a vault and a host key made in between are still
# there afterwards. Refuses to run where phx-hook is already installed or configured.
set -eu
DEB=$(realpath "$1")
fail() { echo "deb-test: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
if dpkg-query -W phx-hook >/dev/null 2>&1; then fail "phx-hook is already installed; not touching it"; fi
[ ! -e /etc/phx-hook ] || fail "/etc/phx-hook exists; not touching it"

W=$(mktemp -d)
# The node-local state phx-hook writes (audit log, accepted vault version): removed at the
# end only if this test made it.
made=""
for d in /var/log/phx-hook /var/lib/phx-hook; do [ -e "$d" ] || made="$made $d"; done
cleanup() {
  dpkg -P phx-hook >/dev/null 2>&1 || true
  gpgconf --kill gpg-agent 2>/dev/null || true
  # shellcheck disable=SC2086 # a list of paths without spaces
  rm -rf /etc/phx-hook "$W" $made
}
trap cleanup EXIT

dpkg -i "$DEB"
[ -x /usr/sbin/phx-hook ] || fail "no /usr/sbin/phx-hook"
/usr/sbin/phx-hook --version | grep -q '^phx-hook ' || fail "--version"
grep -q 'exec /usr/sbin/phx-hook' /usr/share/phx-hook/snippet/phx-hook || fail "the snippet does not run /usr/sbin/phx-hook"
grep -q 'ExecStart=/usr/sbin/phx-hook reconcile' /lib/systemd/system/phx-hook-reconcile.service || fail "units"
[ -e /usr/share/doc/phx-hook/examples/phx-hook.yaml ] || fail "example config"
[ -e /usr/share/doc/phx-hook/changelog.Debian.gz ] || fail "changelog"
[ -e /usr/share/doc/phx-hook/copyright ] || fail "copyright"

# A throwaway vault and host key where a single node keeps them (/etc/phx-hook).
GNUPGHOME=$W/gnupg
export GNUPGHOME
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'deb-test <deb@test.invalid>' future-default default never
gpg --batch --armor --export deb@test.invalid >"$W/alice.asc"
phx-hook vault init --recipient "$W/alice.asc" >/dev/null
printf 'from-the-deb-test' | phx-hook vault set deb/test --host >/dev/null
{ [ -s /etc/phx-hook/secrets.json.gpg ] && [ -s /etc/phx-hook/host.key ]; } || fail "vault init wrote no vault or key"
sum_before=$(cat /etc/phx-hook/secrets.json.gpg /etc/phx-hook/host.key | sha256sum)

# doctor runs and reports (this machine is no Proxmox node, so some checks fail: exit 1).
set +e
phx-hook doctor >"$W/doctor.txt" 2>&1
rc=$?
set -e
[ "$rc" -le 1 ] || fail "doctor exited $rc: $(cat "$W/doctor.txt")"
grep -q 'binary: /usr/sbin/phx-hook' "$W/doctor.txt" || fail "doctor: $(cat "$W/doctor.txt")"

# The man page renders, and documents the commands.
MANPAGER=cat MANWIDTH=100 man -l /usr/share/man/man1/phx-hook.1.gz >"$W/man.txt" 2>/dev/null
grep -q 'reconcile' "$W/man.txt" || fail "the man page lacks reconcile"
man -w phx-hook >/dev/null 2>&1 || fail "man -w phx-hook"

# The bash completion loads and completes subcommands.
bash -c '. /usr/share/bash-completion/completions/phx-hook
  complete -p phx-hook >/dev/null || exit 1
  COMP_WORDS=(phx-hook rec); COMP_CWORD=1; COMP_LINE="phx-hook rec"; COMP_POINT=${#COMP_LINE}
  _phx__hook phx-hook rec phx-hook
  printf "%s\n" "${COMPREPLY[@]}"' >"$W/complete.txt" || fail "bash completion"
grep -qx 'reconcile' "$W/complete.txt" || fail "completion of 'rec': $(cat "$W/complete.txt")"

# Remove, then purge: the binary goes, the vault and key stay, purge says so.
dpkg -r phx-hook
[ ! -e /usr/sbin/phx-hook ] || fail "the binary survived dpkg -r"
dpkg -P phx-hook >"$W/purge.txt" 2>&1
grep -q '/etc/phx-hook' "$W/purge.txt" || fail "purge did not say what it leaves: $(cat "$W/purge.txt")"
sum_after=$(cat /etc/phx-hook/secrets.json.gpg /etc/phx-hook/host.key | sha256sum)
[ "$sum_before" = "$sum_after" ] || fail "the vault or key changed"
echo "deb-test: ok (installed, doctor, man, completion, removed, purged; vault and key kept)"
