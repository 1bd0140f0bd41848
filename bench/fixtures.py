#!/usr/bin/env python3
"""Benchmark fixtures: host keys made by gpg (cv25519 and RSA-3072), vaults of 100, 1,000
and 10,000 keys encrypted to each by gpg, manifests of 10, 20 and 100 files (YAML for
phx-hook, JSON for the baseline hook), guest configs and phx-hook configs.
Usage: fixtures.py DIR"""
import json, os, random, subprocess, sys

d = os.path.abspath(sys.argv[1])
os.makedirs(d, mode=0o700, exist_ok=True)
os.chmod(d, 0o700)
home = os.path.join(d, "gnupg")
os.makedirs(home, mode=0o700, exist_ok=True)
gpg = ["gpg", "--homedir", home, "--batch", "--quiet", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""]
rng = random.Random(7)
keys = {}
for alg, spec in [("cv25519", "future-default"), ("rsa3072", "default")]:
    uid = f"bench-{alg} <{alg}@bench.lan>"
    if subprocess.run(gpg + ["--list-secret-keys", uid], capture_output=True).returncode != 0:
        subprocess.run(gpg + ["--quick-gen-key", uid, spec, "default", "never"], check=True)
    out = subprocess.run(gpg + ["--with-colons", "--list-keys", uid], capture_output=True, text=True, check=True).stdout
    fpr = [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")][0]
    keys[alg] = fpr
    kf = os.path.join(d, f"host-{alg}.key")
    with open(kf, "wb") as f:
        f.write(subprocess.run(gpg + ["--export-secret-keys", fpr], capture_output=True, check=True).stdout)
    os.chmod(kf, 0o600)

names = {}
for n in (100, 1000, 10000):
    doc = {"_phx": {"version": 1}}
    names[n] = []
    for i in range(n):
        g, k = f"g{i // 100:03d}", f"k{i % 100:02d}"
        doc.setdefault(g, {})[k] = "".join(rng.choice("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(32))
        names[n].append(f"{g}/{k}")
    plain = json.dumps(doc).encode()
    for alg, fpr in keys.items():
        out = os.path.join(d, f"vault-{n}-{alg}.gpg")
        if not os.path.exists(out):
            subprocess.run(gpg + ["--trust-model", "always", "-r", fpr, "-o", out, "-e"], input=plain, check=True)

def manifest(vmid, nfiles, guest, n):
    pool = names[min(n, 1000)]
    ks = pool[:: max(1, len(pool) // nfiles)][:nfiles]
    y = [f"guest: {guest}", "files:"] + [f"  - {{dest: /etc/bench/f{i:03d}.secret, key: {k}}}" for i, k in enumerate(ks)]
    return "\n".join(y) + "\n", {"keys": ks}

for n in (100, 1000, 10000):
    for alg in keys:
        node = os.path.join(d, f"node-{n}-{alg}")
        for sub in ("manifests", "baseline", "pve/qemu-server", "pve/lxc", "run", "qga", "lock"):
            os.makedirs(os.path.join(node, sub), exist_ok=True)
        os.chmod(node, 0o755)
        for vmid, nf, guest in [(201, 10, "qemu"), (202, 100, "qemu"), (203, 20, "qemu"), (301, 20, "lxc"), (302, 20, "lxc")]:
            y, j = manifest(vmid, nf, guest, n)
            open(os.path.join(node, f"manifests/{vmid}.yaml"), "w").write(y)
            json.dump(j, open(os.path.join(node, f"baseline/{vmid}.json"), "w"))
            sub = "qemu-server" if guest == "qemu" else "lxc"
            open(os.path.join(node, f"pve/{sub}/{vmid}.conf"), "w").write("agent: 1\n" if guest == "qemu" else "arch: amd64\n")
        # The boot storm: 100 guests with 10-file manifests.
        for vmid in range(400, 500):
            y, j = manifest(vmid, 10, "qemu", n)
            open(os.path.join(node, f"manifests/{vmid}.yaml"), "w").write(y)
            open(os.path.join(node, f"pve/qemu-server/{vmid}.conf"), "w").write("agent: 1\n")
        cfg = f"""vault: {d}/vault-{n}-{alg}.gpg
key: {d}/host-{alg}.key
manifests: {node}/manifests
audit_log: {node}/audit.jsonl
rollback_state: {node}/vault-version
state_dir: {node}/run
syslog: {node}/syslog.sock
pve:
  config_dir: {node}/pve
  qga_socket_dir: {node}/qga
  lock_dir_lxc: {node}/lock
agent:
  wait: 2s
  timeout: 5s
"""
        open(os.path.join(node, "phx-hook.yaml"), "w").write(cfg)
json.dump({"keys": keys, "gnupghome": home}, open(os.path.join(d, "fixtures.json"), "w"))
print("fixtures in", d)
