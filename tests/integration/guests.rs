//! Real guests for the delivery tests: the real `qemu-ga` confined to a directory
//! (tests/scripts/fake-guest.sh), torn down on drop.

use std::fs;
use std::os::unix::net::UnixDatagram;
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
        // Listen where the guest's /dev/log leads, to see what the agent logs.
        fs::create_dir_all(root.join("run")).unwrap();
        let _ = fs::remove_file(root.join("run/syslog.sock"));
        let sock = UnixDatagram::bind(root.join("run/syslog.sock")).unwrap();
        let syslog = Arc::new(Mutex::new(Vec::new()));
        {
            let syslog = syslog.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = sock.recv(&mut buf) {
                    let mut l = syslog.lock().unwrap();
                    l.extend_from_slice(&buf[..n]);
                    l.push(b'\n');
                }
            });
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/fake-guest.sh");
        let child = Command::new(script)
            .arg(root)
            .args(["-l", "/run/qga.log"])
            .env("PHX_EXTRA_BLOCK", extra_block)
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
