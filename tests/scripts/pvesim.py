"""Shared parts of the tests' Proxmox VE stand-ins (`qm`, `pct`): the simulated
/etc/pve tree ($PHX_TEST_PVE), config locks, and hookscript execution exactly as
PVE::GuestHelpers::exec_hookscript + PVE::Tools::run_command do it (PROXMOX.md §1):

- check_hookscript: the volume must be `<store>:snippets/<name>` of a storage in
  storage.cfg, the file must exist (-f) and be executable (-x);
- argv is exactly [path, vmid, phase]; no shell;
- stdin is an empty pipe already at EOF;
- stdout and stderr are captured through pipes and re-printed verbatim (the task log);
  the call returns only when BOTH pipes reach EOF and the process is reaped, so a
  background child that keeps them open keeps the start task waiting;
- the environment is inherited, plus LC_ALL=C; for VM starts PVE_MIGRATED_FROM is
  present and empty unless migrating;
- no timeout;
- a non-zero exit aborts a pre-start (stop_on_error) and is only a warning otherwise.
"""
import fcntl
import os
import subprocess
import sys
import time

PVE = os.environ.get("PHX_TEST_PVE", "/etc/pve")


def die(msg):
    sys.stderr.write(msg + "\n")
    sys.exit(255)


def config_path(kind, vmid):
    return os.path.join(PVE, "qemu-server" if kind == "qemu" else "lxc", f"{vmid}.conf")


def read_conf(path):
    with open(path) as f:
        return f.read()


def conf_value(text, key):
    for line in text.splitlines():
        if line.startswith("["):
            break
        k, sep, v = line.partition(":")
        if sep and k.strip() == key:
            return v.strip()
    return None


def set_conf_value(path, key, value):
    """Set or delete (value None) a key in the main section, atomically."""
    text = read_conf(path)
    lines = text.splitlines()
    end = next((i for i, l in enumerate(lines) if l.startswith("[")), len(lines))
    main = [l for l in lines[:end] if l.partition(":")[0].strip() != key]
    if value is not None:
        main.append(f"{key}: {value}")
    out = "\n".join(main + lines[end:]) + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(out)
    os.rename(tmp, path)


def storages():
    out, cur = {}, None
    with open(os.path.join(PVE, "storage.cfg")) as f:
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
    return out


def check_hookscript(volid):
    store, _, rest = volid.partition(":")
    if not rest.startswith("snippets/") or "/" in rest[len("snippets/"):]:
        die(f"unable to parse directory volume name '{rest}'")
    st = storages().get(store)
    if st is None or "path" not in st:
        die(f"storage '{store}' does not exist")
    path = os.path.join(st["path"], rest)
    if not os.path.isfile(path):
        die(f"script '{volid}' does not exist")
    if not os.access(path, os.X_OK):
        die(f"script '{volid}' is not executable")
    return path


class ConfigLock:
    """flock with Proxmox's 10 s timeout: "can't lock file '...' - got timeout"."""

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


def exec_hookscript(conf_text, vmid, phase, stop_on_error, extra_env=None):
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
    t0 = time.time()
    p = subprocess.Popen([path, str(vmid), phase], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    # run_command: the input pipe is closed at once (empty stdin), then both output pipes
    # are read to EOF, then the process is reaped.
    out, err = p.communicate(b"")
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


def set_hookscript(kind, vmid, lock_path, args):
    conf = config_path(kind, vmid)
    if not os.path.exists(conf):
        die(f"Configuration file '{conf}' does not exist")
    lock = ConfigLock(lock_path)
    if args[:1] == ["--hookscript"] and len(args) == 2:
        check_hookscript(args[1])
        set_conf_value(conf, "hookscript", args[1])
    elif args == ["--delete", "hookscript"]:
        set_conf_value(conf, "hookscript", None)
    else:
        die(f"stand-in: unsupported set arguments {args}")
    lock.release()
