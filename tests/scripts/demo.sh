#!/usr/bin/env bash
# make demo: phx-hook's main job end to end on this machine. A throwaway host key and
# vault made by the real gpg; a simulated Proxmox node in a temporary directory (guest
# configs, storage.cfg, snippets, and qm/pct stand-ins that run hookscripts the way
# Proxmox does); a real LXC container (unprivileged, idmapped, as Proxmox makes them)
# and a real QEMU guest agent confined to a directory playing a VM. phx-hook is
# registered as their hookscript, both guests are started, and their secrets arrive
# with no human step. Nothing outside the temporary directory is touched.
set -euo pipefail
BIN=$(realpath "${1:-target/release/phx-hook}")
REPO=$(cd "$(dirname "$0")/../.." && pwd)
S="$REPO/tests/scripts"
DEMO=$(mktemp -d /tmp/phx-hook-demo.XXXXXX)
chmod 755 "$DEMO"   # the unprivileged container's root must traverse it
# Host RAM for what pre-start stages for the container's mount hook (pve.credentials_dir).
CREDS=$(mktemp -d /dev/shm/phx-hook-demo.XXXXXX)
chmod 711 "$CREDS"
AGENT_PID=
cleanup() {
  if [ -n "$AGENT_PID" ]; then kill -9 "$AGENT_PID" 2>/dev/null || true; fi
  lxc-stop -P "$DEMO/lxc" -n 101 -k >/dev/null 2>&1 || true
  lxc-destroy -P "$DEMO/lxc" -n 101 >/dev/null 2>&1 || true
  gpgconf --homedir "$DEMO/gnupg" --kill gpg-agent 2>/dev/null || true
  rm -rf "$DEMO" "$CREDS"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. A host key for the hypervisor and a vault encrypted to it (real gpg)"
export GNUPGHOME="$DEMO/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
    --quick-gen-key 'phoenix host <root@phoenix.lan>' future-default default never
FPR=$(gpg --batch --with-colons --list-keys root@phoenix.lan | awk -F: '/^fpr/{print $10; exit}')
mkdir -m 700 "$DEMO/etc"
gpg --batch --pinentry-mode loopback --passphrase '' --export-secret-keys "$FPR" > "$DEMO/etc/host.key"
chmod 600 "$DEMO/etc/host.key"
sed -e 's/change-me-samba/demo-samba-pw/' "$REPO/manifests/example-vault.json" |
  gpg --batch --quiet --trust-model always --recipient "$FPR" --armor --output "$DEMO/etc/secrets.json.gpg" --encrypt
echo "host key $FPR (mode $(stat -c %a "$DEMO/etc/host.key")); vault $DEMO/etc/secrets.json.gpg:"
head -n 2 "$DEMO/etc/secrets.json.gpg"; echo "..."

step "2. A simulated Proxmox node: /etc/pve tree, storage.cfg, a container and a VM"
P="$DEMO/pve"
mkdir -p "$P/lxc" "$P/qemu-server" "$DEMO/storage/snippets" "$DEMO/qga" "$DEMO/lxc" "$DEMO/lock/lxc" "$DEMO/lock/qemu-server"
# `local` is /var/lib/vz on every Proxmox node; the demo's snippets live on `demo`.
printf 'dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\ndir: demo\n\tpath %s/storage\n\tcontent snippets\n' "$DEMO" > "$P/storage.cfg"
printf 'arch: amd64\nhostname: files\nunprivileged: 1\n' > "$P/lxc/101.conf"
printf 'agent: 1\nmemory: 2048\nname: monitor\n' > "$P/qemu-server/201.conf"
cat > "$DEMO/lxc/ct.conf" <<CONF
lxc.net.0.type = empty
lxc.apparmor.profile = unconfined
lxc.idmap = u 0 100000 65536
lxc.idmap = g 0 100000 65536
# /run is a tmpfs, as on every systemd guest: where RAM-only files (storage: ram) live.
lxc.mount.entry = tmpfs run tmpfs rw,nosuid,nodev,mode=755,create=dir 0 0
CONF
lxc-create -P "$DEMO/lxc" -n 101 -f "$DEMO/lxc/ct.conf" -t busybox >/dev/null 2>&1
echo 'app:x:1000:1000::/:/bin/sh' >> "$DEMO/lxc/101/rootfs/etc/passwd"
echo 'app:x:1000:' >> "$DEMO/lxc/101/rootfs/etc/group"
# "Launching QEMU" brings up the real guest agent, confined to $DEMO/vm201, a second later.
mkdir -p "$DEMO/vm201"
ln -s "$DEMO/vm201/run/qga.sock" "$DEMO/qga/201.qga"
cat > "$P/qemu-server/201.start" <<START
#!/bin/sh
( sleep 1; PHX_RAM_DIR=1 exec "$S/fake-guest.sh" "$DEMO/vm201" ) </dev/null >/dev/null 2>&1 &
echo \$! > "$DEMO/vm201.pid"
START
chmod +x "$P/qemu-server/201.start"
echo "CT 101: LXC container (idmapped), VM 201: QEMU guest agent on $DEMO/qga/201.qga"

step "3. phx-hook's config and the example manifests (101: Samba file server, 201: a VM with a template)"
mkdir -p "$DEMO/etc/manifests/templates"
cp "$REPO"/manifests/101.yaml "$REPO"/manifests/201.yaml "$DEMO/etc/manifests/"
cp "$REPO"/manifests/templates/* "$DEMO/etc/manifests/templates/"
# The stand-in guests run no systemd: their after-commands touch a marker instead.
sed -i 's#\[systemctl, .*\]#[touch, /tmp/reloaded-by-phx-hook]#' "$DEMO"/etc/manifests/*.yaml
cat > "$DEMO/etc/phx-hook.yaml" <<YAML
vault: $DEMO/etc/secrets.json.gpg
key: $DEMO/etc/host.key
manifests: $DEMO/etc/manifests
audit_log: $DEMO/log/audit.jsonl
state_dir: $DEMO/run
rollback_state: $DEMO/lib/vault-version
pve:
  config_dir: $P
  qga_socket_dir: $DEMO/qga
  lock_dir_lxc: $DEMO/lock/lxc
  qm: $S/qm
  pct: $S/pct
  lxc_info: $S/lxc-info
  lxc_attach: $S/lxc-attach
  credentials_dir: $CREDS
agent:
  wait: 60s
YAML
export PHX_HOOK_CONFIG="$DEMO/etc/phx-hook.yaml" PHX_TEST_PVE="$P" PHX_TEST_LXCPATH="$DEMO/lxc" \
       PHX_TEST_LOCKDIR="$DEMO/lock/lxc" PHX_TEST_QMLOCKDIR="$DEMO/lock/qemu-server"
cat "$DEMO/etc/manifests/101.yaml"
run "$BIN" check

step "4. Register phx-hook as both guests' hookscript; the container also gets early delivery"
run "$BIN" register 101 201
run "$BIN" register 101 --early
grep -H 'hookscript\|lxc.hook.mount' "$P/lxc/101.conf" "$P/qemu-server/201.conf"

step "5. Start both guests as Proxmox would (the hook's output is what the task log shows)"
echo "(CT 101: pre-start stages its files in host RAM; LXC's mount hook writes them before the container's init starts)"
run "$S/pct" start 101
run "$S/qm" start 201
AGENT_PID=$(cat "$DEMO/vm201.pid" 2>/dev/null || true)
printf 'waiting for the background worker of VM 201'
for _ in $(seq 1 120); do
  if [ -e "$DEMO/vm201/tmp/reloaded-by-phx-hook" ]; then break; fi
  printf '.'; sleep 0.25
done
echo
if [ -n "$(ls -A "$CREDS")" ]; then echo "staged files left in host RAM!"; exit 1; fi
echo "nothing left in host RAM ($CREDS is empty)"
AGENT_PID=$(cat "$DEMO/vm201.pid" 2>/dev/null || true)

step "6. What the guests now hold (storage: ram: on their disks only links into /run/phx-hook, a tmpfs)"
echo "CT 101 (idmapped: container root is host uid 100000), on its disk:"
stat -c '  %A %n' "$DEMO/lxc/101/rootfs/etc/samba/phoenix.secret" | sed "s#$DEMO/lxc/101/rootfs##"
echo "  -> $(readlink "$DEMO/lxc/101/rootfs/etc/samba/phoenix.secret"), in the container's RAM:"
lxc-attach -P "$DEMO/lxc" -n 101 --clear-env -- sh -c 'stat -L -c "  %A %u:%g %s bytes" /etc/samba/phoenix.secret'
echo "VM 201, on its disk:"
(cd "$DEMO/vm201" && for f in etc/monitoring/agent.conf etc/krb5.keytab; do echo "  /$f -> $(readlink "$f")"; done)
if grep -rqs demo-samba-pw "$DEMO/lxc/101/rootfs" "$DEMO/vm201"; then
  echo "  a secret value is on a guest's disk!"; exit 1
fi
echo "  no secret value anywhere on either guest's disk"

step "7. status, the audit trail, and its hash chain"
run "$BIN" status
run "$BIN" audit
run "$BIN" audit --verify

step "8. A mistake stops the start with one clear line: a manifest naming a missing key"
sed -i 's#samba/password#samba/passwrod#' "$DEMO/etc/manifests/101.yaml"
lxc-stop -P "$DEMO/lxc" -n 101 -k
run "$S/pct" start 101 || echo "(exit $?: Proxmox aborts the start; the container stays stopped)"
sed -i 's#samba/passwrod#samba/password#' "$DEMO/etc/manifests/101.yaml"

step "9. A tampered vault is refused (integrity check), no plaintext used"
python3 - "$DEMO/etc/secrets.json.gpg" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().split("\n")
i = len(lines) // 2
lines[i] = ("B" if lines[i][0] != "B" else "C") + lines[i][1:]
open(p, "w").write("\n".join(lines))
PY
run "$S/qm" start 201 || echo "(exit $?: the VM is not started)"

if grep -rq "demo-samba-pw" "$DEMO" --exclude-dir=gnupg --exclude-dir=vm201 --exclude-dir=lxc 2>/dev/null; then
  echo "LEAK: a secret value reached a host file outside the guests" >&2; exit 1
fi
step "Done: secrets delivered with no human step; no value was printed, logged or written to the host."
