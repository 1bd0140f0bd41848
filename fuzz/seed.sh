#!/bin/sh
# seed.sh: make the fuzz key (once) and the seed corpora, from real gpg output and the
# project's own examples. Run from the repository root: fuzz/seed.sh
set -eu
F=fuzz
G=$(mktemp -d)
trap 'gpgconf --homedir "$G" --kill gpg-agent 2>/dev/null; rm -rf "$G"' EXIT
gpg() { command gpg --homedir "$G" --batch --quiet --yes --pinentry-mode loopback --trust-model always "$@"; }
if [ ! -s "$F/keys/host.key" ]; then
  gpg --passphrase '' --quick-gen-key 'phx-hook fuzz <fuzz@phx-hook.test>' future-default default never
  gpg --passphrase '' --armor --export-secret-keys > "$F/keys/host.key"
else
  gpg --import "$F/keys/host.key"
fi
gpg --passphrase '' --quick-gen-key 'signer <s@phx-hook.test>' future-default default never 2>/dev/null || true
fpr=$(gpg --with-colons --list-keys fuzz@phx-hook.test | awk -F: '/^fpr/{print $10; exit}')
for t in vault_message vault_plaintext key_file manifest config proxmox_files agent_reply guest_output; do
  mkdir -p "$F/corpus/$t"
done
json='{"_phx":{"version":3},"samba":{"password":"s3cret"},"app":{"db":"x","tok":"y"}}'
c=$F/corpus/vault_message
printf '%s' "$json" | gpg -r "$fpr" -e > "$c/binary.gpg"
printf '%s' "$json" | gpg -r "$fpr" -a -e > "$c/armored.asc"
printf '%s' "$json" | gpg -r "$fpr" --compress-algo bzip2 -e > "$c/bzip2.gpg"
printf '%s' "$json" | gpg -r "$fpr" --compress-algo none -e > "$c/uncompressed.gpg"
printf '%s' "$json" | gpg -R "$fpr" -e > "$c/hidden.gpg"
printf '%s' "$json" | gpg -r "$fpr" -u s@phx-hook.test --sign -e > "$c/signed.gpg"
printf '%s' "$json" | gpg -u s@phx-hook.test --sign > "$c/signed-only.gpg"
printf '%s' "$json" > "$F/corpus/vault_plaintext/plain.json"
cp manifests/example-vault.json "$F/corpus/vault_plaintext/example.json"
printf '{"a":{"b":"1"},"a/b":"2","x":[1,{"y":null}],"_phx":"v"}' > "$F/corpus/vault_plaintext/odd.json"
cp "$F/keys/host.key" "$F/corpus/key_file/secret.asc"
gpg --armor --export > "$F/corpus/key_file/public.asc"
gpg --export > "$F/corpus/key_file/public.gpg"
for m in manifests/*.yaml manifests/templates/*; do cp "$m" "$F/corpus/manifest/"; done
printf 'vault: /v.gpg\nkey: k\nsigners: ["%s"]\nmax_plaintext: 1MiB\npve:\n  lxc_transport: native\n  lock_wait: 5m\nagent:\n  wait: 300s\n  timeout: 500ms\n' "$fpr" > "$F/corpus/config/full.yaml"
printf '# nothing\n' > "$F/corpus/config/empty.yaml"
printf 'agent: enabled=1,fstrim_cloned_disks=1\nlock: backup\nhookscript: local:snippets/phx-hook\nostype: win11\n[snap]\nlock: no\n' > "$F/corpus/proxmox_files/vm.conf"
printf 'dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup,snippets\n\tcontent-dirs snippets=snips\n\nnfs: shared\n\tpath /mnt/pve/shared\n\tcontent snippets\n\tshared 1\n' > "$F/corpus/proxmox_files/storage.cfg"
c=$F/corpus/agent_reply
printf '{"return": 12345}' > "$c/sync"
printf '{"return": {}}' > "$c/ping"
printf '{"return": {"pid": 77}}' > "$c/exec"
printf '{"return": {"exited": true, "exitcode": 0, "out-data": "b2sgMSBzaGEyNTYgYWJj"}}' > "$c/status"
printf '{"error": {"class": "CommandNotFound", "desc": "Command guest-exec has been disabled: the agent is in frozen state"}}' > "$c/frozen"
c=$F/corpus/guest_output
printf 'ok 1 sha256 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\nerr 2 cannot set owner x:y\nfatal stop\n' > "$c/batch"
printf 'phx-ok sha256 5 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n' > "$c/chunk"
printf 'ok\nerr /etc/x is a directory\nok sha256\nok size\n' > "$c/pct"
printf 'ok\nerr\tcannot create a file\n' > "$c/native"
echo "seed.sh: corpora in $F/corpus" >&2
