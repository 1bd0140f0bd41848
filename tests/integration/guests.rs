//! Real guests for the delivery tests: the real `qemu-ga` confined to a directory
//! (tests/scripts/fake-guest.sh), torn down on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A confined qemu-ga. The guest's `/` is `root`.
pub struct FakeGuest {
    child: Child,
    pub root: PathBuf,
    syslog: Arc<Mutex<Vec<u8>>>,
}

impl FakeGuest {
    /// Start the agent with extra commands blocked (`,guest-exec,...`) and a log file at
    /// `/run/qga.log` inside the guest.
    pub fn start(root: &Path, extra_block: &str) -> FakeGuest {
        FakeGuest::start_with(root, extra_block, &[])
    }

    /// [`FakeGuest::start`] with extra environment for fake-guest.sh.
    pub fn start_with(root: &Path, extra_block: &str, env: &[(&str, &str)]) -> FakeGuest {
        // Listen where the guest's /dev/log leads, to see what the agent logs.
        fs::create_dir_all(root.join("run")).unwrap();
        let _ = fs::remove_file(root.join("run/syslog.sock"));
        let syslog = crate::util::listen_datagrams(&root.join("run/syslog.sock"));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/fake-guest.sh");
        let child = Command::new(script)
            .arg(root)
            .args(["-l", "/run/qga.log"])
            .env("PHX_EXTRA_BLOCK", extra_block)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fake-guest.sh (is qemu-guest-agent installed?)");
        let g = FakeGuest {
            child,
            root: root.to_path_buf(),
            syslog,
        };
        let sock = g.socket();
        let start = Instant::now();
        while !sock.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "qemu-ga did not create {}",
                sock.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        g
    }

    pub fn socket(&self) -> PathBuf {
        self.root.join("run/qga.sock")
    }

    /// A path inside the guest.
    pub fn path(&self, guest_path: &str) -> PathBuf {
        self.root.join(guest_path.trim_start_matches('/'))
    }

    /// What the agent logged: its log file and its syslog messages.
    pub fn log(&self) -> String {
        let file = fs::read_to_string(self.path("/run/qga.log")).unwrap_or_default();
        format!(
            "{file}{}",
            String::from_utf8_lossy(&self.syslog.lock().unwrap())
        )
    }
}

impl Drop for FakeGuest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Files whose name says they are phx-hook temporaries, anywhere under `dir`.
pub fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let ft = e.file_type().unwrap();
        if ft.is_dir() && !ft.is_symlink() {
            if p.file_name()
                .is_some_and(|n| n == "usr" || n == "proc" || n == "dev")
            {
                continue;
            }
            out.extend(temporaries(&p));
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(".phx-"))
        {
            out.push(p);
        }
    }
    out
}

/// Watch every process's argv while `f` runs; return every cmdline that held a needle.
pub fn watch_argv<T>(needles: &[&str], f: impl FnOnce() -> T) -> (T, Vec<String>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let stop = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(Mutex::new(Vec::new()));
    let owned: Vec<Vec<u8>> = needles.iter().map(|n| n.as_bytes().to_vec()).collect();
    let watcher = {
        let (stop, hits) = (stop.clone(), hits.clone());
        std::thread::spawn(move || {
            let mut scans = 0u32;
            while !stop.load(Ordering::Relaxed) || scans == 0 {
                scans += 1;
                for e in fs::read_dir("/proc").unwrap().flatten() {
                    let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
                        continue;
                    };
                    if owned
                        .iter()
                        .any(|n| cmd.windows(n.len()).any(|w| w == n.as_slice()))
                    {
                        hits.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&cmd).replace('\0', " "));
                    }
                }
            }
            scans
        })
    };
    let r = f();
    stop.store(true, Ordering::Relaxed);
    let scans = watcher.join().unwrap();
    assert!(scans > 0);
    let hits = hits.lock().unwrap().clone();
    (r, hits)
}

/// Where every test's containers live.
pub fn containers_parent() -> PathBuf {
    std::env::temp_dir().join("phx-hook-test-containers")
}

/// Real LXC containers under a private lxcpath: 301 privileged, 302 idmapped
/// (`u/g 0 100000 65536`, as Proxmox's unprivileged containers). Both busybox, no
/// network, an `app` user (1000) added. Stopped and destroyed on drop.
pub struct Containers {
    pub dir: tempfile::TempDir,
}

pub const PRIV: u32 = 301;
pub const IDMAPPED: u32 = 302;

impl Containers {
    pub fn start() -> Containers {
        // Every test's containers under one parent, which host-disk scans skip: tests run
        // in parallel, and another test's container legitimately holds its secrets.
        let parent = containers_parent();
        fs::create_dir_all(&parent).unwrap();
        fs::set_permissions(&parent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let dir = tempfile::tempdir_in(&parent).unwrap();
        // The idmapped container's root (host uid 100000) must traverse the path.
        fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let c = Containers { dir };
        let base = "lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n";
        fs::write(c.dir.path().join("priv.conf"), base).unwrap();
        fs::write(
            c.dir.path().join("idmap.conf"),
            format!("{base}lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n"),
        )
        .unwrap();
        for (id, conf) in [(PRIV, "priv.conf"), (IDMAPPED, "idmap.conf")] {
            let p = c.lxcpath();
            crate::util::sh(
                Command::new("lxc-create")
                    .args(["-P", &p, "-n", &id.to_string(), "-f"])
                    .arg(c.dir.path().join(conf))
                    .args(["-t", "busybox"]),
            );
            let root = c.rootfs(id);
            let add = |file: &str, line: &str| {
                let path = root.join(file);
                let mut text = fs::read_to_string(&path).unwrap_or_default();
                text.push_str(line);
                fs::write(&path, text).unwrap();
            };
            add("etc/passwd", "app:x:1000:1000::/:/bin/sh\n");
            add("etc/group", "app:x:1000:\n");
            c.lxc_start(id);
        }
        c
    }

    pub fn lxcpath(&self) -> String {
        self.dir.path().display().to_string()
    }

    pub fn rootfs(&self, id: u32) -> PathBuf {
        self.dir.path().join(id.to_string()).join("rootfs")
    }

    /// A path inside a container, as the host sees it (the rootfs is a plain directory).
    pub fn path(&self, id: u32, guest_path: &str) -> PathBuf {
        self.rootfs(id).join(guest_path.trim_start_matches('/'))
    }

    pub fn lxc_start(&self, id: u32) {
        let p = self.lxcpath();
        crate::util::sh(Command::new("lxc-start").args(["-P", &p, "-n", &id.to_string()]));
        crate::util::sh(Command::new("lxc-wait").args([
            "-P",
            &p,
            "-n",
            &id.to_string(),
            "-s",
            "RUNNING",
            "-t",
            "10",
        ]));
    }

    pub fn stop(&self, id: u32) {
        let p = self.lxcpath();
        crate::util::sh(Command::new("lxc-stop").args(["-P", &p, "-n", &id.to_string(), "-k"]));
    }

    /// Give container `id` a tmpfs of its own on /run, as every systemd guest has
    /// (restarts it).
    pub fn tmpfs_run(&self, id: u32) {
        self.stop(id);
        let conf = self.dir.path().join(format!("{id}/config"));
        let mut text = fs::read_to_string(&conf).unwrap();
        text.push_str(
            "lxc.mount.entry = tmpfs run tmpfs rw,nosuid,nodev,mode=755,create=dir 0 0\n",
        );
        fs::write(&conf, text).unwrap();
        self.lxc_start(id);
    }

    /// Run a shell command inside a container (as its root) and return its stdout.
    pub fn output(&self, id: u32, script: &str) -> String {
        let p = self.lxcpath();
        let out = crate::util::sh(Command::new("lxc-attach").args([
            "-P",
            &p,
            "-n",
            &id.to_string(),
            "--clear-env",
            "--",
            "/bin/sh",
            "-c",
            script,
        ]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run a shell command inside a container (as its root).
    pub fn attach(&self, id: u32, script: &str) {
        self.output(id, script);
    }

    /// The environment the pct/lxc stand-ins need.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PHX_TEST_LXCPATH", self.lxcpath()),
            (
                "PHX_TEST_LOCKDIR",
                self.dir.path().join("lock").display().to_string(),
            ),
            (
                "PHX_TEST_PCT_LOG",
                self.dir.path().join("pct.log").display().to_string(),
            ),
        ]
    }

    pub fn lock_dir(&self) -> PathBuf {
        self.dir.path().join("lock")
    }

    pub fn pct_calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("pct.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        let p = self.lxcpath();
        for id in [PRIV, IDMAPPED] {
            let _ = Command::new("lxc-stop")
                .args(["-P", &p, "-n", &id.to_string(), "-k"])
                .stderr(Stdio::null())
                .status();
            let _ = Command::new("lxc-destroy")
                .args(["-P", &p, "-n", &id.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// New regular files under `dirs` (recursively, skipping `skip`) whose content holds any
/// of `needles`, checked repeatedly while `f` runs: a secret written to the host's disk.
pub fn watch_disk<T>(
    dirs: &[&str],
    skip: &Path,
    needles: &[&str],
    f: impl FnOnce() -> T,
) -> (T, Vec<PathBuf>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(Mutex::new(Vec::new()));
    let dirs: Vec<PathBuf> = dirs.iter().map(PathBuf::from).collect();
    let skip = skip.to_path_buf();
    let owned: Vec<Vec<u8>> = needles.iter().map(|n| n.as_bytes().to_vec()).collect();
    let h = {
        let (stop, hits) = (stop.clone(), hits.clone());
        std::thread::spawn(move || {
            fn scan(
                d: &Path,
                skip: &Path,
                owned: &[Vec<u8>],
                hits: &Mutex<Vec<PathBuf>>,
                depth: u32,
            ) {
                if depth > 6 || d.starts_with(skip) {
                    return;
                }
                let Ok(rd) = fs::read_dir(d) else { return };
                for e in rd.flatten() {
                    let p = e.path();
                    let Ok(ft) = e.file_type() else { continue };
                    if ft.is_dir() {
                        scan(&p, skip, owned, hits, depth + 1);
                    } else if ft.is_file() {
                        if e.metadata().is_ok_and(|m| m.len() > 1 << 20) {
                            continue;
                        }
                        if let Ok(b) = fs::read(&p)
                            && owned
                                .iter()
                                .any(|n| b.windows(n.len()).any(|w| w == n.as_slice()))
                        {
                            hits.lock().unwrap().push(p);
                        }
                    }
                }
            }
            while !stop.load(Ordering::Relaxed) {
                for d in &dirs {
                    scan(d, &skip, &owned, &hits, 0);
                }
            }
        })
    };
    let r = f();
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    let mut v = hits.lock().unwrap().clone();
    v.sort();
    v.dedup();
    (r, v)
}

/// Every regular file below `dir` (not following links) whose bytes contain `needle`: a
/// search of a stopped guest's whole disk for a value.
pub fn holders(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(m) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file()
                && fs::read(e.path()).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}
