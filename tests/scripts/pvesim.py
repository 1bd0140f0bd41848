"""Shared parts of the tests' Proxmox VE stand-ins (`qm`, `pct`, `vzdump`): the simulated
/etc/pve tree ($PHX_TEST_PVE), config locks, tasks, and hookscript execution, each
modelled on the Proxmox function named in its docstring (docs/PROXMOX.md cites them):

- exec_hookscript: PVE::GuestHelpers::exec_hookscript + PVE::Tools::run_command. The
  volume must be `<store>:snippets/<name>` of a storage in storage.cfg (content-dirs
  honoured), the file must exist (-f) and be executable (-x); argv is exactly
  [path, vmid, phase], no shell; stdin is an empty pipe at EOF; stdout and stderr are
  captured through pipes and re-printed (the task log); the call returns only when BOTH
  pipes reach EOF, so a background child that keeps them open keeps the task waiting;
  LC_ALL=C is added; no timeout; a non-zero exit aborts pre-start and only warns
  otherwise.
- fork_worker: PVE::RESTEnvironment::fork_worker. The worker is a process titled
  `task UPID:node:pid:pstart:starttime:TYPE:vmid:root@pam:` that calls setsid(); in sync
  (CLI) mode the caller waits for it, then sends SIGTERM to the worker's whole process
  group ($kill_process_group), and SIGKILL only if the worker itself still runs 5 s later.
- ConfigLock: PVE::AbstractConfig::lock_config (flock, 10 s, "got timeout").
"""
import fcntl
import os
import re
import signal
import subprocess
import sys
import time

PVE = os.environ.get("PHX_TEST_PVE", "/etc/pve")
NODE = os.environ.get("PHX_TEST_NODE", "pve1")
QMLOCKDIR = os.environ.get("PHX_TEST_QMLOCKDIR", "/var/lock/qemu-server")
CTLOCKDIR = os.environ.get("PHX_TEST_LOCKDIR", "/run/lock/lxc")
# Where "QEMU" keeps its pid file (/var/run/qemu-server/<vmid>.pid on a real node).
QGADIR = os.environ.get("PHX_TEST_QGADIR", "")


def die(msg):
    sys.stderr.write(msg + "\n")
    sys.exit(255)


def config_path(kind, vmid, node=None):
    sub = "qemu-server" if kind == "qemu" else "lxc"
    if node:
        return os.path.join(PVE, "nodes", node, sub, f"{vmid}.conf")
    return os.path.join(PVE, sub, f"{vmid}.conf")


def read_conf(path):
    with open(path) as f:
        return f.read()


def conf_value(text, key):
    """PVE::QemuServer::parse_vm_config: main section only, the last value wins."""
    found = None
    for line in text.splitlines():
        if line.startswith("["):
            break
        k, sep, v = line.partition(":")
        if sep and k == key and v.strip():
            found = v.strip()
    return found


def set_conf_value(path, key, value):
    """Set or delete (value None) a key in the main section, atomically
    (PVE::Tools::file_set_contents: a temporary file, then rename)."""
    text = read_conf(path)
    lines = text.splitlines()
    end = next((i for i, l in enumerate(lines) if l.startswith("[")), len(lines))
    main = [l for l in lines[:end] if l.partition(":")[0] != key]
    if value is not None:
        main.append(f"{key}: {value}")
    out = "\n".join(main + lines[end:]) + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(out)
    os.rename(tmp, path)


def storages():
    """PVE::Storage::Plugin::parse_config (the parts the stand-ins need)."""
    out, cur = {}, None
    path = os.path.join(PVE, "storage.cfg")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                if not line[0].isspace():
                    kind, _, sid = line.partition(":")
                    cur = sid.strip()
                    out[cur] = {"type": kind.strip()}
                elif cur:
                    k, _, v = line.strip().partition(" ")
                    out[cur][k] = v.strip()
    loc = out.get("local")
    if not loc or loc["type"] != "dir" or loc.get("path", "/var/lib/vz") != "/var/lib/vz":
        out["local"] = {"type": "dir", "path": "/var/lib/vz", "content": "backup,images,iso,rootdir,snippets,vztmpl"}
    return out


def check_hookscript(volid):
    """PVE::GuestHelpers::check_hookscript via PVE::Storage::path (get_subdir)."""
    store, _, rest = volid.partition(":")
    if not rest.startswith("snippets/") or "/" in rest[len("snippets/"):]:
        die(f"unable to parse directory volume name '{rest}'")
    st = storages().get(store)
    if st is None or "path" not in st:
        die(f"storage '{store}' does not exist")
    dirs = dict(d.split("=", 1) for d in st.get("content-dirs", "").replace(";", ",").split(",") if "=" in d)
    path = os.path.join(st["path"], dirs.get("snippets", "snippets"), rest[len("snippets/"):])
    if not os.path.isfile(path):
        die(f"script '{volid}' does not exist")
    if not os.access(path, os.X_OK):
        die(f"script '{volid}' is not executable")
    return path


class ConfigLock:
    """PVE::AbstractConfig::lock_config: flock with a 10 s timeout."""

    def __init__(self, path, timeout=10):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.f = open(path, "a")
        deadline = time.time() + timeout
        while True:
            try:
                fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.time() > deadline:
                    die(f"can't lock file '{path}' - got timeout")
                time.sleep(0.1)

    def release(self):
        self.f.close()


def exec_hookscript(conf_text, vmid, phase, stop_on_error, extra_env=None, quiet=False):
    """PVE::GuestHelpers::exec_hookscript (run_command semantics, see the module doc).
    quiet: the output is lost. A CT's post-stop runs from pve-container's
    src/lxc-pve-poststop-hook, which LXC starts as a hook (lxc src/lxc/conf.c run_buffer
    logs a hook's output at DEBUG only; docs/PROXMOX.md 15.7)."""
    volid = conf_value(conf_text, "hookscript")
    if not volid:
        return
    try:
        path = check_hookscript(volid)
    except SystemExit:
        if stop_on_error:
            raise
        return
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    env.update(extra_env or {})
    env = {k: v for k, v in env.items() if v is not None}
    t0 = time.time()
    p = subprocess.Popen([path, str(vmid), phase], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    out, err = p.communicate(b"")
    if not quiet:
        sys.stdout.write(out.decode(errors="replace"))
        sys.stdout.write(err.decode(errors="replace"))
        sys.stdout.flush()
    log = os.environ.get("PHX_TEST_HOOK_TIMES")
    if log:
        with open(log, "a") as f:
            f.write(f"{vmid} {phase} {time.time() - t0:.6f} {p.returncode}\n")
    if p.returncode != 0:
        msg = f"hookscript error for {vmid} on {phase}: command '{path} {vmid} {phase}' failed: exit code {p.returncode}"
        if stop_on_error:
            die(msg)
        sys.stderr.write("WARN: " + msg + "\n")


def fork_worker(dtype, vmid, argv, cli=True):
    """PVE::RESTEnvironment::fork_worker: run `argv` (a stand-in command line that does
    the task's work) as a worker titled `task UPID:...:dtype:vmid:root@pam:`, in a session
    of its own, and wait for it. A CLI task (sync mode) then sends SIGTERM to the worker's
    whole process group, as $kill_process_group does (SIGKILL only if the worker itself
    still runs 5 s later, which it never does here). An API or HA task (async) does not.
    Returns the worker's exit status."""
    now = int(time.time())
    upid = f"UPID:{NODE}:{os.getpid():08X}:00000000:{now:08X}:{dtype}:{vmid}:root@pam:"
    script = os.path.realpath(sys.argv[0])
    p = subprocess.Popen([f"task {upid}", script] + argv, executable=sys.executable,
                         start_new_session=True)
    status = p.wait()
    if cli:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            sent = "sigterm-sent"
        except ProcessLookupError:
            sent = "group-empty"
    else:
        sent = "async"
    log = os.environ.get("PHX_TEST_TASK_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{dtype} {vmid} status={status} {sent}\n")
    return status


def run_stand_in(argv):
    """Run another stand-in (as vzdump runs `qm shutdown`): its own process, sync CLI."""
    tool = os.path.join(os.path.dirname(os.path.realpath(__file__)), argv[0])
    return subprocess.run([tool] + argv[1:]).returncode


def check_cfs_quorum():
    """PVE::Cluster::check_cfs_quorum (pve-cluster src/PVE/Cluster.pm), which the start
    API calls before anything else (qemu-server API2/Qemu.pm vm_start; pve-container
    API2/LXC/Status.pm vm_start, and lxc-pve-prestart-hook again): a node without quorum
    starts no guest. Proxmox tests the mode of /etc/pve/local, which pmxcfs shows without
    write bits while it has no quorum; here /etc/pve is read-only (a read-only mount)."""
    if os.statvfs(PVE).f_flag & os.ST_RDONLY:
        die("cluster not ready - no quorum?")


# --- QEMU, as far as the tests need it -------------------------------------------------

def qemu_pidfile(vmid):
    return os.path.join(QGADIR, f"{vmid}.pid") if QGADIR else None


def qemu_launch(vmid, conf, paused):
    """The QEMU process of vm_start_nolock: a long-lived stand-in process whose pid goes
    into /var/run/qemu-server/<vmid>.pid. Unless started paused (`-S`, prelaunch), the
    guest boots: the test's `<vmid>.start` launcher brings up its agent."""
    pf = qemu_pidfile(vmid)
    if pf:
        qemu_kill(vmid, conf, quiet=True)
        q = subprocess.Popen(["sleep", "100000"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        with open(pf, "w") as f:
            f.write(f"{q.pid}\n")
        with open(pf + ".state", "w") as f:
            f.write("prelaunch" if paused else "running")
    if not paused:
        qemu_boot(vmid, conf)


def qemu_boot(vmid, conf):
    """The guest boots inside QEMU, which runs in a session of its own (`-daemonize`,
    started in a systemd scope): a task's process-group SIGTERM never reaches it."""
    launcher = conf[: -len(".conf")] + ".start"
    if os.access(launcher, os.X_OK):
        subprocess.run([launcher], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, start_new_session=True)


def qemu_running(vmid):
    pf = qemu_pidfile(vmid)
    if not pf or not os.path.exists(pf):
        return False
    with open(pf) as f:
        pid = int(f.read().strip())
    return os.path.exists(f"/proc/{pid}")


def qemu_status(vmid):
    pf = qemu_pidfile(vmid)
    if not qemu_running(vmid):
        return "stopped"
    with open(pf + ".state") as f:
        return f.read().strip()


def qemu_cont(vmid, conf):
    """QMP `cont` on a paused VM: the guest boots."""
    pf = qemu_pidfile(vmid)
    if qemu_status(vmid) == "prelaunch":
        with open(pf + ".state", "w") as f:
            f.write("running")
        qemu_boot(vmid, conf)


def qemu_kill(vmid, conf, quiet=False):
    """QEMU exits: its pid file goes, the test's `<vmid>.stop` takes the agent down."""
    pf = qemu_pidfile(vmid)
    if pf and os.path.exists(pf):
        with open(pf) as f:
            pid = int(f.read().strip())
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.unlink(pf)
    if quiet:
        return
    stopper = conf[: -len(".conf")] + ".stop"
    if os.access(stopper, os.X_OK):
        subprocess.run([stopper], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def set_hookscript(kind, vmid, lock_path, args):
    """`qm set` / `pct set` (update_vm_api / update_pct_config): only the local node's
    guests; `--hookscript` checked by check_hookscript. `qm set --args` / `--delete args`:
    only root@pam may set `args` (qemu-server src/PVE/API2/Qemu.pm
    $check_vm_modify_config_perm, "catches args": "only root can set 'args' config"; the
    stand-in runs as root), and config_to_command (src/PVE/QemuServer.pm) appends it to
    QEMU's command line through PVE::Tools::split_args."""
    conf = config_path(kind, vmid)
    if not os.path.exists(conf):
        die(f"Configuration file 'nodes/{NODE}/{'qemu-server' if kind == 'qemu' else 'lxc'}/{vmid}.conf' does not exist")
    lock = ConfigLock(lock_path)
    if args[:1] == ["--hookscript"] and len(args) == 2:
        check_hookscript(args[1])
        set_conf_value(conf, "hookscript", args[1])
    elif args == ["--delete", "hookscript"]:
        set_conf_value(conf, "hookscript", None)
    elif kind == "qemu" and args[:1] == ["--args"] and len(args) == 2:
        set_conf_value(conf, "args", args[1])
    elif kind == "qemu" and args == ["--delete", "args"]:
        set_conf_value(conf, "args", None)
    else:
        die(f"stand-in: unsupported set arguments {args}")
    lock.release()


def clone(kind, src, new):
    """`qm clone` / `pct clone` (API2 clone_vm): every option is copied, `hookscript`
    included; snapshots are not."""
    text = read_conf(config_path(kind, src))
    lines = text.splitlines()
    end = next((i for i, l in enumerate(lines) if l.startswith("[")), len(lines))
    main = [l for l in lines[:end] if l.partition(":")[0] not in ("parent", "lock")]
    with open(config_path(kind, new), "w") as f:
        f.write("\n".join(main) + "\n")


def snapshot(kind, vmid, name):
    """`qm snapshot` / `pct snapshot`: the current main section kept as `[name]`."""
    path = config_path(kind, vmid)
    text = read_conf(path)
    lines = text.splitlines()
    end = next((i for i, l in enumerate(lines) if l.startswith("[")), len(lines))
    main = [l for l in lines[:end] if l.partition(":")[0] != "parent"]
    rest = lines[end:]
    out = main + [f"parent: {name}"] + rest + [f"[{name}]"] + main
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def rollback(kind, vmid, name):
    """`qm rollback` / `pct rollback` (PVE::AbstractConfig::__snapshot_apply_config): the
    main section becomes the snapshot's, `hookscript` included (or removed when the
    snapshot had none)."""
    path = config_path(kind, vmid)
    lines = read_conf(path).splitlines()
    sections, cur = {"": []}, ""
    for l in lines:
        if l.startswith("[") and l.endswith("]"):
            cur = l[1:-1]
            sections[cur] = []
        else:
            sections[cur].append(l)
    if name not in sections:
        die(f"snapshot '{name}' does not exist")
    snap = [l for l in sections[name] if l.partition(":")[0] not in ("snaptime", "lock")]
    out = snap + [f"parent: {name}"]
    for s, body in sections.items():
        if s:
            out += [f"[{s}]"] + body
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


# --- starting and stopping guests --------------------------------------------------------

def qm_lock_path(vmid):
    return os.path.join(QMLOCKDIR, f"lock-{vmid}.conf")


def qm_conf(vmid, node=None):
    conf = config_path("qemu", vmid, node)
    if not os.path.exists(conf):
        where = f"nodes/{node or NODE}/qemu-server/{vmid}.conf"
        die(f"Configuration file '{where}' does not exist")
    return conf


def vm_start(vmid, migratedfrom=None, remote=False, paused=False, skiplock=False, locked=False):
    """qemu-server PVE::QemuServer::vm_start + vm_start_nolock."""
    conf = qm_conf(vmid, None if remote else migratedfrom)
    lock = None if locked else ConfigLock(qm_lock_path(vmid))
    text = read_conf(conf)
    has_lock = conf_value(text, "lock")
    if has_lock == "backup" and qemu_running(vmid):
        # "if ($has_backup_lock && $running) { return vm_resume }": no hook phase.
        qemu_cont(vmid, conf)
        return
    if has_lock and not skiplock and not migratedfrom and not remote:
        die(f"VM is locked ({has_lock})")
    env = {"PVE_MIGRATED_FROM": None} if remote else {"PVE_MIGRATED_FROM": migratedfrom or ""}
    exec_hookscript(text, vmid, "pre-start", True, env)
    incoming = bool(migratedfrom or remote)
    qemu_launch(vmid, conf, paused or incoming)
    exec_hookscript(read_conf(conf), vmid, "post-start", False, env)
    if lock:
        lock.release()


def vm_stop(vmid, skiplock=False, nocheck=False, locked=False):
    """_do_vm_stop (pre-stop unless nocheck) + vm_stop_cleanup (post-stop)."""
    conf = qm_conf(vmid)
    lock = None if locked else ConfigLock(qm_lock_path(vmid))
    text = read_conf(conf)
    if not skiplock and conf_value(text, "lock"):
        die(f"VM is locked ({conf_value(text, 'lock')})")
    if not nocheck:
        exec_hookscript(text, vmid, "pre-stop", False)
    qemu_kill(vmid, conf)
    exec_hookscript(read_conf(conf), vmid, "post-stop", False)
    if lock:
        lock.release()


RAW_MARK = "# pvesim: the raw lxc.* keys of the Proxmox config (update_lxc_config)\n"
RAW_KEY = re.compile(r"^(lxc\.[a-z0-9_\-\.]+)(:|\s*=)\s*(.*?)\s*$")


def update_lxc_config(vmid, conf_text):
    """PVE::LXC::update_lxc_config (src/PVE/LXC.pm): at every start, before the
    hookscript's pre-start, the LXC config is written anew from the Proxmox config, and the
    raw `lxc.*` keys of its main section (PVE::LXC::Config::parse_pct_config: `key: value`
    or `key = value`, kept in order) are appended, each as `key = value`. Here the test's
    own LXC config stands for what Proxmox generates; the raw keys replace those of the
    previous start."""
    lxcpath = os.environ.get("PHX_TEST_LXCPATH", "")
    path = os.path.join(lxcpath, vmid, "config")
    if not os.path.exists(path):
        return
    base = read_conf(path).split(RAW_MARK)[0]
    raw = []
    for line in conf_text.splitlines():
        if line.startswith("["):
            break
        m = RAW_KEY.match(line)
        if m:
            raw.append(f"{m.group(1)} = {m.group(3)}\n")
    with open(path, "w") as f:
        f.write(base + (RAW_MARK + "".join(raw) if raw else ""))


def ct_start(vmid, locked=False):
    """PVE::LXC::vm_start (update_lxc_config, pre-start, systemctl start, monitor_start,
    post-start). A container that fails to start (lxc-start fails: a failing
    lxc.hook.mount, say) fails the task, and post-start does not run."""
    conf = config_path("lxc", vmid)
    if not os.path.exists(conf):
        die(f"Configuration file '{conf}' does not exist")
    lock = None if locked else ConfigLock(os.path.join(CTLOCKDIR, f"pve-config-{vmid}.lock"))
    update_lxc_config(vmid, read_conf(conf))
    exec_hookscript(read_conf(conf), vmid, "pre-start", True)
    delay = os.environ.get("PHX_TEST_CT_START_DELAY")
    if delay:
        subprocess.Popen(["sh", "-c", f"sleep {delay}; exec lxc-start -P \"$1\" -n \"$2\"", "sh", os.environ["PHX_TEST_LXCPATH"], vmid],
                         start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    else:
        log = os.environ.get("PHX_TEST_LXC_LOG")
        extra = ["--logfile", f"{log}.{vmid}", "--logpriority", "DEBUG"] if log else []
        if subprocess.run(["lxc-start", "-P", os.environ["PHX_TEST_LXCPATH"], "-n", vmid] + extra).returncode != 0:
            # LXC ends a start that failed in setup (a failing mount hook, say) through
            # lxc_end, which runs the post-stop hooks (lxc src/lxc/start.c __lxc_start,
            # lxc_abort/lxc_end): Proxmox's lxc-pve-poststop-hook runs the hookscript's
            # post-stop, whose output goes to LXC's debug log, not the task log.
            exec_hookscript(read_conf(conf), vmid, "post-stop", False, quiet=True)
            die(f"startup for container '{vmid}' failed")
        # monitor_start: a 10 s alarm until STARTING; "continuing anyway" on timeout.
        subprocess.run(["lxc-wait", "-P", os.environ["PHX_TEST_LXCPATH"], "-n", vmid, "-s", "RUNNING", "-t", "10"])
    exec_hookscript(read_conf(conf), vmid, "post-start", False)
    if lock:
        lock.release()


def ct_stop(vmid, locked=False):
    """PVE::LXC::vm_stop (pre-stop, lxc-stop) and the lxc-pve-poststop-hook (post-stop)."""
    conf = config_path("lxc", vmid)
    lock = None if locked else ConfigLock(os.path.join(CTLOCKDIR, f"pve-config-{vmid}.lock"))
    exec_hookscript(read_conf(conf), vmid, "pre-stop", False)
    subprocess.run(["lxc-stop", "-P", os.environ["PHX_TEST_LXCPATH"], "-n", vmid, "-k"], stderr=subprocess.DEVNULL)
    exec_hookscript(read_conf(conf), vmid, "post-stop", False)
    if lock:
        lock.release()


