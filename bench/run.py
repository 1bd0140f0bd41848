#!/usr/bin/env python3
"""`make bench`: phx-hook's whole-process benchmarks against the gpg+jq baseline hook,
on fixtures made here (bench/fixtures.py), with real components (the confined qemu-ga,
a real LXC container), and a callgrind profile. Writes BENCHMARKS.md.
Usage: run.py BIN WORKDIR OUT.md [CRITERION_SUMMARY]"""
import json, os, platform, resource, shutil, signal, statistics, subprocess, sys, tempfile, time, datetime

if sys.argv[1] == "--criterion-only":
    # Append criterion's in-process figures (measured after the whole-process runs, so
    # that its build does not replace the binary under test).
    crit, out = sys.argv[2], sys.argv[3]
    text = open(out).read().split("\n## In-process")[0].rstrip() + "\n\n"
    text += "## In-process (criterion, `cargo bench --bench inprocess`)\n\n```\n" + open(crit).read().strip() + "\n```\n"
    open(out, "w").write(text)
    sys.exit(0)
BIN, WORK, OUT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3]
CRIT = None
PROF = BIN + "-symbols" if os.path.exists(BIN + "-symbols") else BIN
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S = os.path.join(REPO, "tests/scripts")
FX = os.path.join(WORK, "fx")
rows, notes = [], []

def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)

def node(n, alg):
    return os.path.join(FX, f"node-{n}-{alg}")

def env_for(n, alg, extra=None):
    e = dict(os.environ)
    e.pop("RUST_LOG", None)
    e.update({"PHX_HOOK_CONFIG": os.path.join(node(n, alg), "phx-hook.yaml"), "GNUPGHOME": os.path.join(FX, "gnupg"),
              "BASELINE_VAULT": os.path.join(FX, f"vault-{n}-{alg}.gpg"), "BASELINE_MANIFESTS": os.path.join(node(n, alg), "baseline")})
    e.update(extra or {})
    return e

def timed(cmd, env, stdin=subprocess.DEVNULL):
    """Wall time until the process exited AND both its pipes closed, and its peak RSS."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{cmd} failed ({p.returncode}): {err.decode()[-500:]}")
    return dt, out

def rss_kib(cmd, env):
    """Peak RSS of one run (wait4's rusage)."""
    pid = os.fork()
    if pid == 0:
        os.environ.clear(); os.environ.update(env)
        fd = os.open(os.devnull, os.O_RDWR)
        for i in (0, 1, 2):
            os.dup2(fd, i)
        os.execv(cmd[0], cmd)
    _, status, ru = os.wait4(pid, 0)
    return ru.ru_maxrss

def stats(xs):
    xs = sorted(xs)
    return {"median": statistics.median(xs), "min": xs[0], "max": xs[-1], "n": len(xs)}

def ms(x):
    return f"{x * 1000:.2f} ms"

def ab(name, a, b, env, rounds=10, runs=5):
    """A/B interleaved in short batches (hyperfine A then B, 5 runs each, 10 times), so
    both see the same machine state; hyperfine -N times each process with no shell."""
    ta, tb = [], []
    for _ in range(rounds):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            path = f.name
        subprocess.run(["hyperfine", "-N", "--warmup", "1", "--runs", str(runs), "--export-json", path, "--style", "none",
                        " ".join(a), " ".join(b)], env=env, check=True, capture_output=True)
        res = json.load(open(path))["results"]
        os.unlink(path)
        ta += res[0]["times"]; tb += res[1]["times"]
    return stats(ta), stats(tb)

def hyperfine(cmds, env, runs=30, warmup=3, ignore=False):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    args = ["hyperfine", "-N", "--warmup", str(warmup), "--runs", str(runs), "--export-json", path, "--style", "none"]
    if ignore:
        args.append("-i")
    subprocess.run(args + cmds, env=env, check=True, capture_output=True)
    res = json.load(open(path))["results"]
    os.unlink(path)
    return [{"median": r["median"], "min": r["min"], "max": r["max"], "n": len(r["times"])} for r in res]

def row(what, cmd, st, ratio=None, target=None, met=None):
    rows.append((what, cmd, st, ratio, target, met))
    flag = "" if met is None else (" MET" if met else " NOT MET")
    print(f"{what}: median {ms(st['median'])} (min {ms(st['min'])}, max {ms(st['max'])}, n={st['n']})"
          + (f", ratio {ratio}" if ratio else "") + flag, flush=True)

# ---------------------------------------------------------------------------
sh([sys.executable, os.path.join(REPO, "bench/fixtures.py"), FX])
hook = [BIN, "201", "pre-start"]
base = [os.path.join(REPO, "bench/baseline-hook.sh"), "201", "pre-start"]

# 1. pre-start vs the gpg+jq baseline, interleaved.
results = {}
for alg in ("cv25519", "rsa3072"):
    for vmid, nf in (("201", 10), ("202", 100)):
        e = env_for(1000, alg)
        timed([BIN, vmid, "pre-start"], e)  # prime the page cache
        sa, sb = ab("pre-start", [BIN, vmid, "pre-start"], [os.path.join(REPO, "bench/baseline-hook.sh"), vmid, "pre-start"], e)
        ratio = sb["median"] / sa["median"]
        key = (alg, nf)
        results[key] = (sa, sb, ratio)
        is_target = alg == "cv25519" and nf == 10
        row(f"pre-start, 1,000-key vault, {alg}, {nf}-file manifest: phx-hook", f"phx-hook {vmid} pre-start", sa,
            f"{ratio:.1f}x faster than the baseline", ">= 10x" if is_target else None, (ratio >= 10) if is_target else None)
        row(f"pre-start, 1,000-key vault, {alg}, {nf}-file manifest: baseline (gpg + jq)", f"bench/baseline-hook.sh {vmid} pre-start", sb, "1.0x")

# 2. Scaling with the vault's size (cv25519, 10 files).
scale = {}
for n in (100, 1000, 10000):
    scale[n] = hyperfine([" ".join(hook)], env_for(n, "cv25519"))[0]
r10 = scale[10000]["median"] / scale[1000]["median"]
for n in (100, 1000, 10000):
    is_t = n == 10000
    row(f"pre-start, {n:,}-key vault, cv25519, 10 files", "phx-hook 201 pre-start (hyperfine)", scale[n],
        f"{scale[n]['median'] / scale[1000]['median']:.2f}x the 1,000-key time", "<= 4x the 1,000-key time" if is_t else None, (r10 <= 4) if is_t else None)
rsa = hyperfine([" ".join(hook)], env_for(10000, "rsa3072"))[0]
row("pre-start, 10,000-key vault, rsa3072, 10 files", "phx-hook 201 pre-start (hyperfine)", rsa)

# 3. Peak RSS with the 10,000-key vault.
peak = max(rss_kib(hook, env_for(10000, "cv25519")) for _ in range(10))
rows.append((f"peak RSS of pre-start, 10,000-key vault", "wait4 ru_maxrss, max of 10 runs", {"kib": peak}, None, "<= 20 MiB", peak <= 20 * 1024))
print(f"peak RSS: {peak} KiB", flush=True)

# 4. post-start returns (both pipes closed) while the agent is down.
e = env_for(1000, "cv25519")
post = []
for _ in range(30):
    post.append(timed([BIN, "201", "post-start"], e)[0])
    time.sleep(0.02)
row("post-start returns (stdout and stderr closed), agent not up", "phx-hook 201 post-start", stats(post), None, "<= 20 ms", stats(post)["median"] <= 0.020)
subprocess.run(["pkill", "-f", f"{BIN} __worker"], capture_output=True)

# 5. Delivery of 20 files into the real confined qemu-ga.
nd = node(1000, "cv25519")
guest = os.path.join(WORK, "vm203")
shutil.rmtree(guest, ignore_errors=True)
agent = subprocess.Popen([os.path.join(S, "fake-guest.sh"), guest], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(200):
        if os.path.exists(os.path.join(guest, "run/qga.sock")):
            break
        time.sleep(0.01)
    sock = os.path.join(nd, "qga/203.qga")
    if os.path.lexists(sock):
        os.unlink(sock)
    os.symlink(os.path.join(guest, "run/qga.sock"), sock)
    qt, calls = [], None
    for i in range(15):
        dt, out = timed([BIN, "inject", "203", "--json"], e)
        qt.append(dt)
        calls = json.loads(out)["transport_calls"]
    st = stats(qt)
    row("inject 20 files into the real qemu-ga (whole process: decrypt + 20 deliveries)", "phx-hook inject 203", st,
        f"{calls} agent requests = {calls / 20:.1f} per file", "<= 100 ms", st["median"] <= 0.100)
    notes.append(f"Guest-agent delivery makes {calls} requests for 20 files: per file one connection with "
                 f"guest-sync-delimited, guest-exec and guest-exec-status polls until the script exits.")
finally:
    agent.kill(); agent.wait()

# 6. Containers: native and pct transports into a real LXC container.
lxc = os.path.join(WORK, "lxc")
shutil.rmtree(lxc, ignore_errors=True)
os.makedirs(lxc)
os.chmod(WORK, 0o755); os.chmod(lxc, 0o755)
open(os.path.join(lxc, "ct.conf"), "w").write("lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n")
sh(["lxc-create", "-P", lxc, "-n", "301", "-f", os.path.join(lxc, "ct.conf"), "-t", "busybox"])
sh(["lxc-start", "-P", lxc, "-n", "301"]); sh(["lxc-wait", "-P", lxc, "-n", "301", "-s", "RUNNING", "-t", "10"])
try:
    cfgp = os.path.join(nd, "phx-hook.yaml")
    orig = open(cfgp).read()
    for transport in ("native", "pct"):
        open(cfgp, "w").write(orig.replace("pve:\n", f"pve:\n  lxc_transport: {transport}\n  pct: {S}/pct\n  lxc_info: {S}/lxc-info\n  lxc_attach: {S}/lxc-attach\n"))
        ce = env_for(1000, "cv25519", {"PHX_TEST_LXCPATH": lxc, "PHX_TEST_LOCKDIR": os.path.join(nd, "lock")})
        ct, calls = [], None
        for i in range(10 if transport == "pct" else 20):
            dt, out = timed([BIN, "inject", "301", "--json"], ce)
            ct.append(dt)
            calls = json.loads(out)["transport_calls"]
        st = stats(ct)
        if transport == "native":
            row("inject 20 files into a real LXC container, native transport (whole process)", "phx-hook inject 301", st,
                f"{calls} processes started for 20 files (lxc-info + 1 forked writer)", "<= 50 ms, no process per file",
                st["median"] <= 0.050 and calls <= 2)
        else:
            row("inject 20 files into a real LXC container, pct transport (pct stand-in: python + lxc-attach)", "phx-hook inject 301", st,
                f"{calls} pct invocations for 20 files (1 exec + 20 push + 1 exec)", "pct calls = files + 2", calls == 22)
    open(cfgp, "w").write(orig)
finally:
    subprocess.run(["lxc-stop", "-P", lxc, "-n", "301", "-k"], capture_output=True)
    subprocess.run(["lxc-destroy", "-P", lxc, "-n", "301"], capture_output=True)

# 7. The boot storm: 100 pre-start hooks at once.
e = env_for(1000, "cv25519")
storm = []
for _ in range(7):
    t0 = time.perf_counter()
    ps = [subprocess.Popen([BIN, str(v), "pre-start"], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for v in range(400, 500)]
    codes = [p.wait() for p in ps]
    storm.append(time.perf_counter() - t0)
    assert all(c == 0 for c in codes), codes
st = stats(storm)
row("100 pre-start hooks started at once (boot storm), wall time", "100 x phx-hook N pre-start", st, None, "<= 2 s", st["median"] <= 2.0)

# 8. scan throughput over a generated 100 MB tree (page cache warm).
tree = os.path.join(WORK, "tree100")
if not os.path.exists(tree):
    sh([sys.executable, os.path.join(REPO, "bench/gen-tree.py"), tree, "100"])
size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(tree) for f in fs)
sc = hyperfine([f"{BIN} scan --fail-on critical {tree}"], dict(os.environ), runs=5, warmup=1)[0]
mbs = size / 1e6 / sc["median"]
row(f"scan a generated {size / 1e6:.0f} MB tree of scripts and configs", f"phx-hook scan {tree}", sc, f"{mbs:.0f} MB/s", ">= 50 MB/s", mbs >= 50)

# 8b. scan --history over this repository's own history (a fresh clone). Issue 16: one
# finding per secret must not make --history slower than the per-blob listing was
# (measured at 0.50 s on this history before grouping; see BENCHMARKS.md).
hist = os.path.join(WORK, "history-repo")
if os.path.exists(hist):
    shutil.rmtree(hist)
sh(["git", "clone", "-q", REPO, hist])
ncommits = len(subprocess.run(["git", "-C", hist, "rev-list", "--all"], capture_output=True, text=True).stdout.split())
hs = hyperfine([f"{BIN} scan --history {hist}"], dict(os.environ), runs=10, warmup=1, ignore=True)[0]
row(f"scan --history of this repository ({ncommits} commits), grouped by secret", f"phx-hook scan --history {hist}", hs, None, "<= 0.50 s (before grouping)", hs["median"] <= 0.50)

# 9. Where the time goes: callgrind (instruction counts are stable on a noisy machine).
profiles = []
for n in (1000, 10000):
    cg = os.path.join(WORK, f"callgrind-{n}.out")
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}", PROF, "201", "pre-start"], env=env_for(n, "cv25519"), capture_output=True)
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", cg], capture_output=True, text=True).stdout.splitlines()
    total = next((l for l in ann if "PROGRAM TOTALS" in l), "").split()[0] if ann else "?"
    picks = []
    for _ in (0,):
        for name in ("PROGRAM TOTALS", "_dl_relocate_static_pie", "phx_hook::config::Config::discover", "phx_hook::manifest::load",
                     "phx_hook::pve::find_guest", "phx_hook::vault::Vault::open_filtered", "phx_hook::vault::pgp::HostKeys::parse",
                     "phx_hook::vault::pgp::decrypt", "x25519", "Message::decompress", "zlib_rs::inflate::inflate ", "sha1_checked",
                     "sha1::compress", "sha2::sha256::compress256", "phx_hook::vault::Vault::index", "phx_hook::audit::Audit::record"):
            hit = next((x.strip() for x in ann if name.strip() in x), None)
            if hit and hit not in picks:
                picks.append(hit)
        break
    profiles.append((n, total, picks))

# 10. reconcile: a pass over 100 running guests in sync (50 real LXC containers, native
# transport; 50 confined qemu-ga), and the time from `vault set` to the new value inside
# a running guest through `reconcile --watch` (the shipped watch unit's command).
rn = os.path.join(WORK, "recon")
shutil.rmtree(rn, ignore_errors=True)
for sub in ("manifests", "pve/qemu-server", "pve/lxc", "run", "qga", "lock", "guests", "lxc"):
    os.makedirs(os.path.join(rn, sub))
os.chmod(rn, 0o755); os.chmod(os.path.join(rn, "lxc"), 0o755)
shutil.copy(os.path.join(FX, "vault-1000-cv25519.gpg"), os.path.join(rn, "secrets.json.gpg"))
fpr = json.load(open(os.path.join(FX, "fixtures.json")))["keys"]["cv25519"]
open(os.path.join(rn, "recipients.asc"), "w").write(sh(["gpg", "--homedir", os.path.join(FX, "gnupg"), "--armor", "--export", fpr]).stdout)
lxcp = os.path.join(rn, "lxc")
open(os.path.join(rn, "phx-hook.yaml"), "w").write(f"""vault: {rn}/secrets.json.gpg
key: {FX}/host-cv25519.key
manifests: {rn}/manifests
audit_log: {rn}/audit.jsonl
rollback_state: {rn}/vault-version
state_dir: {rn}/run
syslog: {rn}/syslog.sock
pve:
  config_dir: {rn}/pve
  qga_socket_dir: {rn}/qga
  lock_dir_lxc: {rn}/lock
  lxc_path: {lxcp}
  lxc_info: {S}/lxc-info
  lxc_attach: {S}/lxc-attach
  lxc_transport: native
agent:
  wait: 5s
  timeout: 5s
""")
re_env = dict(os.environ, PHX_HOOK_CONFIG=os.path.join(rn, "phx-hook.yaml"), PHX_TEST_LXCPATH=lxcp)
re_env.pop("RUST_LOG", None)
VMS, CTS = range(600, 650), range(700, 750)
manifest3 = "files:\n  - {dest: /run/secrets/a, key: g000/k00}\n  - {dest: /run/secrets/b, key: g000/k01}\n  - {dest: /etc/app/c, key: g001/k02}\n"
agents, cts_up = [], []
open(os.path.join(lxcp, "ct.conf"), "w").write("lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n")
try:
    for v in VMS:
        g = os.path.join(rn, "guests", str(v))
        agents.append(subprocess.Popen([os.path.join(S, "fake-guest.sh"), g], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        open(os.path.join(rn, f"pve/qemu-server/{v}.conf"), "w").write("agent: 1\nhookscript: local:snippets/phx-hook\n")
        open(os.path.join(rn, f"manifests/{v}.yaml"), "w").write("guest: qemu\n" + manifest3)
        open(os.path.join(rn, f"qga/{v}.pid"), "w").write(f"{agents[-1].pid}\n")
        os.symlink(os.path.join(g, "run/qga.sock"), os.path.join(rn, f"qga/{v}.qga"))
    for v in CTS:
        sh(["lxc-create", "-P", lxcp, "-n", str(v), "-f", os.path.join(lxcp, "ct.conf"), "-t", "busybox"])
        sh(["lxc-start", "-P", lxcp, "-n", str(v)])
        cts_up.append(v)
        open(os.path.join(rn, f"pve/lxc/{v}.conf"), "w").write("arch: amd64\nhookscript: local:snippets/phx-hook\n")
        open(os.path.join(rn, f"manifests/{v}.yaml"), "w").write("guest: lxc\n" + manifest3)
    for v in CTS:
        sh(["lxc-wait", "-P", lxcp, "-n", str(v), "-s", "RUNNING", "-t", "30"])
    for v in VMS:
        for _ in range(500):
            if os.path.exists(os.path.join(rn, "guests", str(v), "run/qga.sock")):
                break
            time.sleep(0.01)
    # The first pass delivers everything (reason: missed); then every guest is in sync.
    first = subprocess.run([BIN, "reconcile", "--json", "--concurrency", "8"], env=re_env, capture_output=True, text=True)
    res = json.loads(first.stdout)
    assert first.returncode == 0 and sum(1 for g in res if g["state"] == "repaired") == 100, (first.returncode, first.stderr[-800:], [g for g in res if g["state"] != "repaired"][:3])
    walls, cpus, vm_calls, ct_calls = [], [], [], []
    for _ in range(15):
        t0 = time.perf_counter()
        p = subprocess.Popen([BIN, "reconcile", "--json"], env=re_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        walls.append(time.perf_counter() - t0)
        cpus.append(ru.ru_utime + ru.ru_stime)
        res = json.loads(out)
        assert all(g["state"] == "in_sync" for g in res), [g for g in res if g["state"] != "in_sync"][:3]
        vm_calls += [g["calls"] for g in res if g["vmid"] in VMS]
        ct_calls += [g["calls"] for g in res if g["vmid"] in CTS]
    st = stats(walls)
    row("reconcile pass over 100 running guests in sync (50 LXC native, 50 confined qemu-ga), wall", "phx-hook reconcile", st,
        None, "<= 1 s", st["median"] <= 1.0)
    cst = stats(cpus)
    row("the same pass, CPU time (user + system of phx-hook)", "phx-hook reconcile", cst, None, "<= 200 ms", cst["median"] <= 0.200)
    calls_row = {"median": statistics.median(vm_calls), "min": min(vm_calls), "max": max(vm_calls)}
    rows.append(("agent requests per in-sync VM in that pass (each on its own connection)", "phx-hook reconcile --json: calls",
                 {"count": True, **calls_row}, f"containers: {max(ct_calls)} processes", "<= 3", max(vm_calls) <= 3))
    # vault set -> the new value in a running guest, through `reconcile --watch`.
    watch = subprocess.Popen([BIN, "reconcile", "--watch", "--interval", "60s"], env=re_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)  # its first pass
        lat = []
        target = os.path.join(rn, "guests", "600", "run/secrets/a")
        for i in range(5):
            value = f"ROTATED-{i}-{time.time_ns()}".encode()
            t0 = time.perf_counter()
            subprocess.run([BIN, "vault", "set", "g000/k00", "--host"], env=dict(re_env, GNUPGHOME=os.path.join(FX, "gnupg")),
                           input=value, check=True, capture_output=True)
            while time.perf_counter() - t0 < 30:
                try:
                    if open(target, "rb").read() == value:
                        break
                except OSError:
                    pass
                time.sleep(0.01)
            lat.append(time.perf_counter() - t0)
            time.sleep(2)  # let the pass finish (all 100 guests use the key)
        st = stats(lat)
        row("`vault set` to the new value inside a running guest (reconcile --watch; 100 guests use the key)",
            "phx-hook vault set g000/k00 --host", st, None, "<= 5 s", st["median"] <= 5.0)
    finally:
        watch.kill(); watch.wait()
finally:
    for a in agents:
        a.kill(); a.wait()
    for v in cts_up:
        subprocess.run(["lxc-stop", "-P", lxcp, "-n", str(v), "-k"], capture_output=True)
        subprocess.run(["lxc-destroy", "-P", lxcp, "-n", str(v)], capture_output=True)

# ---------------------------------------------------------------------------
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
with open(OUT, "w") as f:
    f.write("# phx-hook benchmarks\n\n")
    f.write(f"Written by `make bench` on {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')}.\n\n")
    f.write(f"- Machine: {os.cpu_count()} CPUs ({cpu}), {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, "
            f"Linux {platform.release()}, {platform.freedesktop_os_release().get('PRETTY_NAME', '')}\n")
    f.write(f"- Binary: `{BIN}` ({subprocess.run([BIN, '--version'], capture_output=True, text=True).stdout.strip()}, release build)\n")
    f.write(f"- Tools: {sh(['gpg', '--version']).stdout.splitlines()[0]}, {sh(['jq', '--version']).stdout.strip()}, "
            f"{sh(['hyperfine', '--version']).stdout.strip()}\n")
    f.write("- Fixtures (`bench/fixtures.py`): host keys and vaults made by gpg; vaults of 100, 1,000 and 10,000 keys "
            "(32-character values, 100 per object); manifests of 10, 20 and 100 files.\n")
    f.write("- The baseline (`bench/baseline-hook.sh`): the hook an administrator would write: `gpg --batch --decrypt` (host key "
            "in a GnuPG home, gpg-agent warm) piped into one `jq` call that checks every key of a JSON manifest, exit 1 if "
            "one is missing.\n")
    f.write("- Method: phx-hook vs baseline pairs are A/B interleaved by `bench/run.py`: 10 alternating batches of "
            "`hyperfine -N --runs 5` (A then B), 50 runs each; single-binary figures use `hyperfine -N --warmup 3 --runs 30`; "
            "figures that must include pipe closing (post-start) or a real guest are timed by run.py itself from spawn until "
            "the process exited and both pipes closed (that adds Python's spawn cost, ~1 ms); medians with min-max. The machine is a noisy shared VM: medians and "
            "ratios from the same run are what to compare.\n\n")
    f.write("## Targets\n\n| what | command | median | min - max | ratio | target | met |\n|---|---|---|---|---|---|---|\n")
    for what, cmd, st, ratio, target, met in rows:
        if "count" in st:
            f.write(f"| {what} | `{cmd}` | {st['median']:g} | {st['min']} - {st['max']} | {ratio or ''} | {target} | {'yes' if met else 'NO'} |\n")
            continue
        if "kib" in st:
            f.write(f"| {what} | {cmd} | {st['kib'] / 1024:.1f} MiB | | | {target} | {'yes' if met else 'NO'} |\n")
            continue
        f.write(f"| {what} | `{cmd}` | {ms(st['median'])} | {ms(st['min'])} - {ms(st['max'])} | {ratio or ''} | {target or ''} | "
                f"{'' if met is None else ('yes' if met else 'NO')} |\n")
    f.write("\n## Notes\n\n")
    for n_ in notes:
        f.write(f"- {n_}\n")
    f.write("- The pre-start ratio to the baseline moves between about 9x and 12x from run to run on this VM: phx-hook's "
            "whole run is under 2 ms, of which about half is the cost of starting any process of its size here (`/bin/true` "
            "alone takes about 0.5 ms; a static-pie binary of 9.6 MB of text also relocates ~270 KB of data and takes "
            "~170 page faults before `main`). The work itself (read the host key, X25519, AES and the SHA-1 MDC over the "
            "vault, inflate it, index the 10 needed keys, parse the config and manifest, append two audit lines) is under "
            "1 ms; see the profile below. A non-PIE static build would skip the relocations but gives up ASLR for a root "
            "process that handles secrets, so it is not used.\n")
    f.write("- RSA-3072 host keys cost about 3.5 ms more per decrypt (the private-key operation; in-process figure below): "
            "prefer a Curve25519 host key (`phx-hook vault init` makes one).\n")
    f.write("- The reconcile figures: 50 busybox LXC containers (native transport) and 50 confined qemu-ga, 3 files each, all in sync after a first pass. An in-sync container costs no process (its init's start time and `openat2` + `fstat` from the host); an in-sync VM costs two agent requests (`guest-exec` of the probe, one `guest-exec-status` 10 ms later), each on a connection of its own, three when the probe is slow. The `vault set` latency includes the watcher's 300 ms gathering of an event burst, the re-encryption, and one pass that repairs the file in all 100 guests (the value is used by every manifest here); the guest timed is the first VM.\n")
    f.write("- The pct figures use the tests' `pct` stand-in (Python + lxc-attach), so their times say little about "
            "real `pct`; the invocation count is the point: one `pct exec` to prepare, one `pct push` per file, one "
            "`pct exec` to verify and rename.\n")
    f.write("\n## Where the time goes (callgrind, `phx-hook 201 pre-start`, cv25519, 10 files)\n\n")
    f.write("Instruction counts (Ir), inclusive. Under valgrind SHA-1/SHA-256 run their portable code; natively "
            "they use the CPU's SHA extensions, so hashing weighs less in real runs than here.\n\n")
    for n, total, picks in profiles:
        f.write(f"### {n:,}-key vault: {total} instructions in total\n\n```\n" + "\n".join(picks) + "\n```\n\n")
    if CRIT and os.path.exists(CRIT):
        f.write("## In-process (criterion, `cargo bench`)\n\n```\n" + open(CRIT).read().strip() + "\n```\n")
print("wrote", OUT)
