//! A simulated Proxmox VE node: an `/etc/pve` tree (guest configs, storage.cfg), a
//! snippets directory, config-lock directories, and the `qm`/`pct` stand-ins from
//! tests/scripts that run hookscripts the way Proxmox does. The phx-hook config points
//! every path there; the stand-ins find it through `$PHX_HOOK_CONFIG`, as a real node
//! finds `/etc/phx-hook/phx-hook.yaml`.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use crate::util::*;

pub const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts");

pub struct SimNode {
    pub node: Node,
    syslog: Arc<Mutex<Vec<u8>>>,
    /// Extra environment for the stand-ins (container paths).
    pub env: Vec<(String, String)>,
}

impl SimNode {
    /// A node with the ed25519 host key and `vault_json` encrypted to it.
    pub fn new(vault_json: &[u8], extra_config: &str) -> SimNode {
        let k = keys();
        let node = Node::new();
        node.host_key(&k.secret("ed", true));
        node.vault(&k.encrypt(vault_json, &["ed"], false, None, &[]));
        node.write("manifests/templates/app.conf.tmpl", TEMPLATE.as_bytes());
        let d = node.dir.path().display().to_string();
        node.write(
            "pve/storage.cfg",
            // `local` is always /var/lib/vz on Proxmox (parse_config replaces any other):
            // here it allows no snippets, and `sim` holds them.
            format!("dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\ndir: sim\n\tpath {d}/storage\n\tcontent snippets\n\nlvmthin: local-lvm\n\tthinpool data\n\tcontent rootdir,images\n\ndir: backups\n\tpath {d}/backups\n\tcontent backup\n").as_bytes(),
        );
        fs::create_dir_all(node.path("storage/snippets")).unwrap();
        fs::create_dir_all(node.path("qga")).unwrap();
        // Listen where the worker logs (its stdout and stderr are /dev/null).
        let syslog = listen_datagrams(&node.path("syslog.sock"));
        node.config(&format!(
            "  qga_socket_dir: {d}/qga\n  qm: {SCRIPTS}/qm\n  pct: {SCRIPTS}/pct\n  lxc_info: {SCRIPTS}/lxc-info\n  lxc_attach: {SCRIPTS}/lxc-attach\n  lock_dir_lxc: {d}/lock/lxc\nsyslog: {d}/syslog.sock\nagent:\n  wait: 60s\n  timeout: 5s\n{extra_config}"
        ));
        SimNode {
            node,
            syslog,
            env: Vec::new(),
        }
    }

    pub fn vm(&self, vmid: u32, conf: &str) {
        self.node
            .write(&format!("pve/qemu-server/{vmid}.conf"), conf.as_bytes());
    }

    pub fn ct(&self, vmid: u32, conf: &str) {
        self.node
            .write(&format!("pve/lxc/{vmid}.conf"), conf.as_bytes());
    }

    pub fn conf(&self, kind: &str, vmid: u32) -> String {
        fs::read_to_string(self.node.path(&format!("pve/{kind}/{vmid}.conf"))).unwrap()
    }

    pub fn envs(&self) -> Vec<(String, String)> {
        let d = self.node.dir.path().display().to_string();
        let mut v = vec![
            ("PHX_HOOK_CONFIG".to_string(), format!("{d}/phx-hook.yaml")),
            ("PHX_TEST_PVE".to_string(), format!("{d}/pve")),
            (
                "PHX_TEST_QMLOCKDIR".to_string(),
                format!("{d}/lock/qemu-server"),
            ),
            ("PHX_TEST_LOCKDIR".to_string(), format!("{d}/lock/lxc")),
            ("PHX_TEST_HOOK_TIMES".to_string(), format!("{d}/hook-times")),
            ("PHX_TEST_TASK_LOG".to_string(), format!("{d}/tasks")),
            ("PHX_TEST_QGADIR".to_string(), format!("{d}/qga")),
            ("PHX_TEST_LXCPATH".to_string(), "/nonexistent".to_string()),
        ];
        for (k, val) in &self.env {
            v.retain(|(kk, _)| kk != k);
            v.push((k.clone(), val.clone()));
        }
        v
    }

    /// Run a stand-in (`qm` or `pct`) as an administrator would.
    pub fn tool(&self, tool: &str, args: &[&str]) -> Run {
        let out: Output = Command::new(format!("{SCRIPTS}/{tool}"))
            .args(args)
            .envs(self.envs())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run::from(out)
    }

    /// Run phx-hook (config from the environment, as the hookscript finds it).
    pub fn phx(&self, args: &[&str]) -> Run {
        let env = self.envs();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.node.run_env(args, &env)
    }

    /// [`SimNode::phx`] with `input` on stdin.
    pub fn phx_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut c = Command::new(BIN)
            .arg("--config")
            .arg(self.path("phx-hook.yaml"))
            .args(args)
            .envs(self.envs())
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input).unwrap();
        Run::from(c.wait_with_output().unwrap())
    }

    pub fn syslog(&self) -> String {
        String::from_utf8_lossy(&self.syslog.lock().unwrap()).into_owned()
    }

    pub fn audit(&self) -> String {
        fs::read_to_string(self.node.path("audit.jsonl")).unwrap_or_default()
    }

    /// How long each hook phase took, as the stand-ins measured it (pipes closed).
    pub fn hook_times(&self) -> Vec<(String, String, f64, i32)> {
        fs::read_to_string(self.node.path("hook-times"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (
                    f[0].to_string(),
                    f[1].to_string(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                )
            })
            .collect()
    }

    /// Poll until `f` holds, up to `secs`.
    pub fn eventually(&self, secs: u64, what: &str, f: impl Fn() -> bool) {
        let start = std::time::Instant::now();
        while !f() {
            assert!(
                start.elapsed().as_secs() < secs,
                "timed out waiting for {what}\nsyslog:\n{}\naudit:\n{}",
                self.syslog(),
                self.audit()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// A simulated node for the real containers of `cts` (native transport, the stand-ins
    /// pointed at their lxcpath), with `agent.wait` and `agent.timeout` as given.
    pub fn for_containers(cts: &crate::guests::Containers, wait: &str, timeout: &str) -> SimNode {
        let mut sim = SimNode::for_lxcpath(&cts.lxcpath(), &cts.lock_dir(), wait, timeout);
        for (k, v) in cts.env() {
            sim.env.retain(|(kk, _)| kk != k);
            sim.env.push((k.to_string(), v));
        }
        sim
    }

    /// Put `pve.credentials_dir` (host RAM for credentials and staged files) at `dir`.
    pub fn credentials_dir(&self, dir: &std::path::Path) {
        let cfg = fs::read_to_string(self.path("phx-hook.yaml")).unwrap();
        self.node.write(
            "phx-hook.yaml",
            cfg.replacen(
                "  qga_socket_dir:",
                &format!("  credentials_dir: {}\n  qga_socket_dir:", dir.display()),
                1,
            )
            .as_bytes(),
        );
    }

    /// A simulated node for the real containers under `lxcpath` (native transport).
    pub fn for_lxcpath(
        lxcpath: &str,
        lock: &std::path::Path,
        wait: &str,
        timeout: &str,
    ) -> SimNode {
        let mut sim = SimNode::new(VAULT_JSON.as_bytes(), "  lxc_transport: native\n");
        sim.env.push(("PHX_TEST_LXCPATH".into(), lxcpath.into()));
        sim.env
            .push(("PHX_TEST_LOCKDIR".into(), lock.display().to_string()));
        sim.node.config(&format!(
            "  qga_socket_dir: {d}/qga\n  pct: {SCRIPTS}/pct\n  lxc_info: {SCRIPTS}/lxc-info\n  lxc_attach: {SCRIPTS}/lxc-attach\n  lock_dir_lxc: {lock}\n  lxc_path: {lxcpath}\n  lxc_transport: native\nsyslog: {d}/syslog.sock\nagent:\n  wait: {wait}\n  timeout: {timeout}\n",
            d = sim.node.dir.path().display(),
            lock = lock.display(),
        ));
        sim
    }

    /// Turn the simulated `/etc/pve` into what pmxcfs shows on node `name` of a cluster:
    /// guest configs under `nodes/<name>/`, the `local`, `qemu-server` and `lxc` links
    /// (pve-cluster pmxcfs.c `create_symlinks`), and phx-hook's files where its
    /// cluster-wide defaults put them: vault and manifests under `phx-hook/`, the host key
    /// under `priv/phx-hook/`. The config no longer names them.
    pub fn make_cluster(&self, name: &str) {
        let pve = self.path("pve");
        let node = pve.join("nodes").join(name);
        fs::create_dir_all(&node).unwrap();
        for kind in ["qemu-server", "lxc"] {
            let flat = pve.join(kind);
            if flat.is_dir() && !flat.is_symlink() {
                fs::rename(&flat, node.join(kind)).unwrap();
            } else {
                fs::create_dir_all(node.join(kind)).unwrap();
            }
            let _ = fs::remove_file(&flat);
            std::os::unix::fs::symlink(format!("nodes/{name}/{kind}"), &flat).unwrap();
        }
        let _ = fs::remove_file(pve.join("local"));
        std::os::unix::fs::symlink(format!("nodes/{name}"), pve.join("local")).unwrap();
        fs::create_dir_all(pve.join("phx-hook")).unwrap();
        fs::create_dir_all(pve.join("priv/phx-hook")).unwrap();
        fs::rename(
            self.path("secrets.json.gpg"),
            pve.join("phx-hook/secrets.json.gpg"),
        )
        .unwrap();
        fs::rename(self.path("manifests"), pve.join("phx-hook/manifests")).unwrap();
        fs::rename(self.path("host.key"), pve.join("priv/phx-hook/host.key")).unwrap();
        let cfg = fs::read_to_string(self.path("phx-hook.yaml")).unwrap();
        let kept: String = cfg
            .lines()
            .filter(|l| {
                !(l.starts_with("vault:") || l.starts_with("key:") || l.starts_with("manifests:"))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        self.node.write("phx-hook.yaml", kept.as_bytes());
    }

    /// Wait until no delivery worker holds its lock (they hold it until they exit).
    pub fn workers_done(&self) {
        self.eventually(30, "the delivery workers to exit", || {
            fs::read_dir(self.path("run"))
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with("worker-"))
                        .all(|e| {
                            fs::File::open(e.path())
                                .map(|f| f.try_lock().is_ok())
                                .unwrap_or(true)
                        })
                })
                .unwrap_or(true)
        });
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.node.path(rel)
    }

    /// The tasks the stand-ins ran (`TYPE VMID status=N sigterm-sent|async`).
    pub fn tasks(&self) -> String {
        fs::read_to_string(self.node.path("tasks")).unwrap_or_default()
    }

    /// The audit lines whose `action` is `action`.
    pub fn audit_actions(&self, action: &str) -> Vec<serde_json::Value> {
        self.audit()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["action"] == action)
            .collect()
    }
}

impl Drop for SimNode {
    /// The stand-ins' "QEMU" processes (their pids are in `qga/<vmid>.pid`) end with
    /// the test.
    fn drop(&mut self) {
        let Ok(rd) = fs::read_dir(self.node.path("qga")) else {
            return;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().ends_with(".pid")
                && let Ok(pid) = fs::read_to_string(e.path())
                && let Ok(pid) = pid.trim().parse::<i32>()
            {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// A guest agent that a simulated VM's boot brings up `delay` seconds after "QEMU" boots
/// the guest (the stand-ins run `<vmid>.start` at boot and `<vmid>.stop` when QEMU
/// exits), as a booting VM's would; killed on drop.
pub struct LateAgent {
    pidfile: PathBuf,
    pub root: PathBuf,
}

impl LateAgent {
    pub fn install(sim: &SimNode, vmid: u32) -> LateAgent {
        LateAgent::install_after(sim, vmid, 1)
    }

    pub fn install_after(sim: &SimNode, vmid: u32, delay: u32) -> LateAgent {
        use std::os::unix::fs::PermissionsExt;
        let root = sim.path(&format!("guests/{vmid}"));
        let pidfile = sim.path(&format!("guests/{vmid}.pid"));
        fs::create_dir_all(&root).unwrap();
        let _ = std::os::unix::fs::symlink(
            root.join("run/qga.sock"),
            sim.path(&format!("qga/{vmid}.qga")),
        );
        for (name, body) in [
            (
                "start",
                format!(
                    "#!/bin/sh
( sleep {delay}; exec {SCRIPTS}/fake-guest.sh {} ) </dev/null >/dev/null 2>&1 &\necho $! > {}\n",
                    root.display(),
                    pidfile.display()
                ),
            ),
            (
                "stop",
                format!(
                    "#!/bin/sh\n[ -s {p} ] && kill -9 $(cat {p}) 2>/dev/null; rm -f {p}\nexit 0\n",
                    p = pidfile.display()
                ),
            ),
        ] {
            let path = sim.path(&format!("pve/qemu-server/{vmid}.{name}"));
            fs::write(&path, body).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        LateAgent { pidfile, root }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }
}

impl Drop for LateAgent {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(&self.pidfile) {
            let _ = std::process::Command::new("kill")
                .args(["-9", pid.trim()])
                .status();
        }
    }
}
