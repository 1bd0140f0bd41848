#!/usr/bin/env python3
"""Generate a tree of scripts and configs of about SIZE_MB megabytes for `phx-hook scan`
benchmarks: shell scripts, env files, YAML, JSON and INI, mostly ordinary lines with a
secret-looking name or value now and then (deterministic: seeded)."""
import os, random, sys

out, size_mb = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 100
rng = random.Random(42)
words = ["server", "listen", "timeout", "retries", "backup", "storage", "cluster", "node", "guest", "volume",
         "network", "bridge", "vlan", "mtu", "log_level", "path", "user", "group", "mode", "enabled"]
def line(kind, i):
    r = rng.random()
    w = rng.choice(words)
    if r < 0.01:
        return {"sh": f'DB_PASSWORD="S3cret-{i:06d}-Value"', "env": f"API_TOKEN=tok-{i:08x}abcdef", "yml": f"password: Yml-{i:06d}-Pw",
                "json": f'  "client_secret": "cs-{i:010d}",', "ini": f"secret_key = ini-{i:08x}"}[kind]
    if r < 0.05:
        return {"sh": f'TOKEN_URL="https://auth.lan/{i}"', "env": f"PASSWORD_FILE=/run/secrets/{w}", "yml": "password: \"{{ vault_pw }}\"",
                "json": f'  "token_ttl": {i % 3600},', "ini": f"password_policy = strong"}[kind]
    return {"sh": f'{w}_{i % 97}="value-{i}-{w}"  # {w} setting', "env": f"{w.upper()}_{i % 89}={w}-{i}",
            "yml": f"{w}_{i % 83}: {w}-{i}", "json": f'  "{w}_{i % 79}": "{w}-{i}",', "ini": f"{w}_{i % 71} = {i}"}[kind]
total, n, target = 0, 0, int(size_mb * 1024 * 1024)
while total < target:
    kind = rng.choice(["sh", "env", "yml", "json", "ini"])
    d = os.path.join(out, f"dir{n // 100:03d}")
    os.makedirs(d, exist_ok=True)
    lines = [line(kind, n * 1000 + k) for k in range(rng.randint(200, 2000))]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(d, f"file{n:05d}.{kind}"), "w") as f:
        f.write(text)
    total += len(text)
    n += 1
print(f"{n} files, {total} bytes in {out}")
