#!/usr/bin/env bash
# make demo: phx-hook's main job end to end on this machine, with a throwaway host key
# and vault made by the real gpg, the example manifests, and the checks a Proxmox
# administrator runs. Nothing outside a temporary directory is touched.
set -euo pipefail
BIN=$(realpath "${1:-target/release/phx-hook}")
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DEMO=$(mktemp -d /tmp/phx-hook-demo.XXXXXX)
chmod 700 "$DEMO"
trap 'gpgconf --homedir "$DEMO/gnupg" --kill gpg-agent 2>/dev/null || true; rm -rf "$DEMO"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. A host key for the hypervisor (ed25519/cv25519, made by gpg, exported root-only)"
export GNUPGHOME="$DEMO/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
    --quick-gen-key 'phoenix host <root@phoenix.lan>' future-default default never
FPR=$(gpg --batch --with-colons --list-keys root@phoenix.lan | awk -F: '/^fpr/{print $10; exit}')
gpg --batch --pinentry-mode loopback --passphrase '' --export-secret-keys "$FPR" > "$DEMO/host.key"
chmod 600 "$DEMO/host.key"
echo "host key $FPR -> $DEMO/host.key (mode $(stat -c %a "$DEMO/host.key"))"

step "2. A vault encrypted to it (the demo's values stand in for real secrets)"
sed -e 's/change-me-samba/demo-samba-pw/' "$REPO/manifests/example-vault.json" > "$DEMO/plain.json"
gpg --batch --quiet --trust-model always --recipient "$FPR" --armor \
    --output "$DEMO/secrets.json.gpg" --encrypt "$DEMO/plain.json"
shred -u "$DEMO/plain.json" 2>/dev/null || rm -f "$DEMO/plain.json"
head -n 3 "$DEMO/secrets.json.gpg"; echo "..."

step "3. Config and the example manifests (manifests/*.yaml in this repository)"
mkdir -p "$DEMO/manifests/templates" "$DEMO/pve/lxc" "$DEMO/pve/qemu-server"
cp "$REPO"/manifests/*.yaml "$DEMO/manifests/"
cp "$REPO"/manifests/templates/* "$DEMO/manifests/templates/"
cat > "$DEMO/phx-hook.yaml" <<YAML
vault: $DEMO/secrets.json.gpg
key: $DEMO/host.key
manifests: $DEMO/manifests
audit_log: $DEMO/audit.jsonl
pve:
  config_dir: $DEMO/pve
YAML
cat "$DEMO/phx-hook.yaml"
export PHX_HOOK_CONFIG="$DEMO/phx-hook.yaml"

step "4. phx-hook check: config, vault and every manifest, every key resolved"
run "$BIN" check

step "5. phx-hook inject --dry-run: what each guest would receive (never a value)"
run "$BIN" inject 101 --dry-run
run "$BIN" inject 102 --dry-run
run "$BIN" inject 201 --dry-run

step "6. Deliver to VM 201 through the real qemu-ga (confined to $DEMO/vm201, playing the VM)"
mkdir -p "$DEMO/qga"
"$REPO/tests/scripts/fake-guest.sh" "$DEMO/vm201" >/dev/null 2>&1 &
AGENT=$!
trap 'kill -9 $AGENT 2>/dev/null || true; gpgconf --homedir "$DEMO/gnupg" --kill gpg-agent 2>/dev/null || true; rm -rf "$DEMO"' EXIT
ln -s "$DEMO/vm201/run/qga.sock" "$DEMO/qga/201.qga"
printf '  qga_socket_dir: %s\n' "$DEMO/qga" >> "$DEMO/phx-hook.yaml"
# The stand-in guest runs no systemd: its after-command is a plain marker file instead.
sed -i 's#\[systemctl, try-restart, monitoring-agent.service\]#[touch, /run/monitoring-agent.reloaded]#' "$DEMO/manifests/201.yaml"
run "$BIN" inject 201 --wait 10
echo "what the VM now holds:"
(cd "$DEMO/vm201" && stat -c '  %A %U:%G %s bytes  /%n' etc/monitoring/agent.conf etc/krb5.keytab run/monitoring-agent.reloaded)
echo "audit log ($DEMO/audit.jsonl), one JSON line per event, chained by hash:"
cut -c1-160 "$DEMO/audit.jsonl" | sed 's/^/  /'

step "7. A mistake is caught before any guest starts: a manifest naming a missing key"
sed -i 's#samba/password#samba/passwrod#' "$DEMO/manifests/101.yaml"
run "$BIN" check 101 || echo "(exit $?: the start of guest 101 would be refused)"

step "8. A tampered vault is refused (integrity check), no plaintext used"
python3 - "$DEMO/secrets.json.gpg" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().split("\n")
i = len(lines) // 2
lines[i] = ("B" if lines[i][0] != "B" else "C") + lines[i][1:]
open(p, "w").write("\n".join(lines))
PY
run "$BIN" check 102 || echo "(exit $?)"

if grep -rq "demo-samba-pw" "$DEMO" --exclude-dir=gnupg --exclude-dir=vm201 2>/dev/null; then
  echo "LEAK: a secret value reached a host file outside the guest" >&2; exit 1
fi
step "Done: no secret value was printed or written in plaintext."
