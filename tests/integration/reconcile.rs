//! `phx-hook reconcile` (issue 13): every running guest of the node holds what its
//! manifest says, between starts. Against the real confined qemu-ga and real LXC
//! containers on the simulated node: drift, rotation (only the files and guests that use
//! a key), reboots from inside (a container's init changes), what is skipped and why, one
//! pass at a time, and the cost of a guest in sync.

use std::fs;
use std::time::Duration;

use crate::guests::*;
use crate::sim::*;
use crate::util::*;

const VM201: &str = "guest: qemu\nfiles:\n  - {dest: /run/secrets/smb, key: samba/password}\n  - {dest: /etc/app/token, key: app/api_token}\nafter:\n  - [sh, -c, \"echo x >> /run/after-count\"]\n";
const VM202: &str = "guest: qemu\nfiles:\n  - {dest: /etc/app/db, key: app/db_password}\nafter:\n  - [sh, -c, \"echo x >> /run/after-count\"]\n";

fn count(agent: &LateAgent) -> usize {
    fs::read_to_string(agent.path("/run/after-count"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn pass(sim: &SimNode, args: &[&str]) -> (Run, Vec<serde_json::Value>) {
    let mut a = vec!["reconcile", "--json"];
    a.extend_from_slice(args);
    let r = sim.phx(&a);
    let v: Vec<serde_json::Value> =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    (r, v)
}

fn guest(v: &[serde_json::Value], vmid: u32) -> &serde_json::Value {
    v.iter().find(|g| g["vmid"] == vmid).unwrap()
}

/// Two running VMs: 201 uses samba/password and app/api_token, 202 app/db_password.
fn two_vms() -> (SimNode, LateAgent, LateAgent) {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    for (id, m) in [(201, VM201), (202, VM202)] {
        sim.vm(id, "agent: 1\n");
        sim.node.manifest(id, m);
    }
    sim.phx(&["register", "201", "202"]).assert_code(0);
    let a = LateAgent::install_after(&sim, 201, 0);
    let b = LateAgent::install_after(&sim, 202, 0);
    for id in ["201", "202"] {
        sim.tool("qm", &["start", id]).assert_code(0);
    }
    sim.eventually(30, "both first deliveries", || {
        count(&a) == 1 && count(&b) == 1
    });
    sim.workers_done();
    (sim, a, b)
}

#[test]
fn drift_and_rotation_repair_only_what_changed() {
    let (sim, a, b) = two_vms();
    // In sync: nothing written, a few agent requests each, no audit line.
    let audit_before = sim.audit().lines().count();
    let (r, v) = pass(&sim, &[]);
    r.assert_code(0);
    for id in [201, 202] {
        assert_eq!(guest(&v, id)["state"], "in_sync", "{v:?}");
        let calls = guest(&v, id)["calls"].as_u64().unwrap();
        assert!(calls <= 3, "{calls} agent requests for a guest in sync");
    }
    assert_eq!(
        sim.audit().lines().count(),
        audit_before,
        "an in-sync pass wrote audit lines"
    );
    assert_eq!((count(&a), count(&b)), (1, 1));
    // Drift: a delivered file deleted in the guest comes back, and its after runs once.
    fs::remove_file(a.path("/etc/app/token")).unwrap();
    let (r, v) = pass(&sim, &["--dry-run"]);
    r.assert_code(0);
    assert_eq!(guest(&v, 201)["state"], "would_repair");
    assert_eq!(guest(&v, 201)["changes"][0]["reason"], "drift");
    assert!(!a.path("/etc/app/token").exists(), "--dry-run delivered");
    let (r, v) = pass(&sim, &[]);
    r.assert_code(0);
    assert_eq!(guest(&v, 201)["state"], "repaired");
    assert_eq!(guest(&v, 201)["changes"].as_array().unwrap().len(), 1);
    assert_eq!(guest(&v, 202)["state"], "in_sync");
    assert_eq!(
        fs::read(a.path("/etc/app/token")).unwrap(),
        b"TOKEN-SECRET-c0ffee"
    );
    assert_eq!((count(&a), count(&b)), (2, 1));
    let drift: Vec<_> = sim
        .audit_actions("deliver")
        .into_iter()
        .filter(|e| e["reason"] == "drift")
        .collect();
    assert_eq!(drift.len(), 1, "{}", sim.audit());
    assert!(sim.syslog().contains("/etc/app/token re-delivered (drift)"));
    // An edit in place (same name, new content) is drift too.
    fs::write(a.path("/run/secrets/smb"), b"tampered").unwrap();
    let (_, v) = pass(&sim, &[]);
    assert_eq!(guest(&v, 201)["changes"][0]["dest"], "/run/secrets/smb");
    assert_eq!(
        fs::read(a.path("/run/secrets/smb")).unwrap(),
        b"SMB-SECRET-7f3a9c"
    );
    assert_eq!(count(&a), 3);
    // Rotation of samba/password: only 201's file that uses it; 202 sees no write.
    let db_before = fs::metadata(b.path("/etc/app/db")).unwrap();
    let rotated = VAULT_JSON.replace("SMB-SECRET-7f3a9c", "SMB-ROTATED-1234");
    sim.node
        .vault(&keys().encrypt(rotated.as_bytes(), &["ed"], false, None, &[]));
    let (r, v) = pass(&sim, &[]);
    r.assert_code(0);
    let changes = guest(&v, 201)["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{v:?}");
    assert_eq!(
        (changes[0]["dest"].as_str(), changes[0]["reason"].as_str()),
        (Some("/run/secrets/smb"), Some("rotation"))
    );
    assert_eq!(guest(&v, 202)["state"], "in_sync");
    assert_eq!(
        fs::read(a.path("/run/secrets/smb")).unwrap(),
        b"SMB-ROTATED-1234"
    );
    assert_eq!((count(&a), count(&b)), (4, 1));
    let db_after = fs::metadata(b.path("/etc/app/db")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (db_before.ino(), db_before.ctime()),
        (db_after.ino(), db_after.ctime()),
        "202 was written"
    );
    // And then nothing changes: 0 writes, counted.
    let (_, v) = pass(&sim, &[]);
    assert!(v.iter().all(|g| g["state"] == "in_sync"), "{v:?}");
    assert_eq!((count(&a), count(&b)), (4, 1));
    // status shows it.
    let st: serde_json::Value =
        serde_json::from_str(&sim.phx(&["status", "--json"]).stdout).unwrap();
    assert!(
        st.as_array()
            .unwrap()
            .iter()
            .all(|g| g["sync"] == "in sync"),
        "{st}"
    );
    for t in [&sim.audit(), &sim.syslog()] {
        for v in SECRET_VALUES.iter().chain(&["SMB-ROTATED-1234"]) {
            assert!(!t.contains(v));
        }
    }
}

#[test]
fn guests_that_must_not_be_touched_are_skipped_with_the_reason() {
    let (sim, a, _b) = two_vms();
    fs::remove_file(a.path("/etc/app/token")).unwrap();
    // Locked (a backup, a migration...).
    let conf = sim.conf("qemu-server", 201);
    sim.vm(201, &format!("{conf}lock: backup\n"));
    let (_, v) = pass(&sim, &[]);
    assert_eq!(guest(&v, 201)["state"], "skipped");
    assert_eq!(guest(&v, 201)["detail"], "locked (`lock: backup`)");
    sim.vm(201, &conf);
    // Stopped.
    sim.tool("qm", &["shutdown", "202"]).assert_code(0);
    let (r, v) = pass(&sim, &["--vmid", "202", "--vmid", "203"]);
    r.assert_code(0);
    assert_eq!(guest(&v, 202)["detail"], "not running");
    assert_eq!(guest(&v, 203)["detail"], "no manifest");
    // On another node; not registered.
    sim.node.write(
        "pve/nodes/pve2/qemu-server/205.conf",
        b"agent: 1\nhookscript: sim:snippets/phx-hook\n",
    );
    sim.node.manifest(205, VM202);
    sim.vm(206, "agent: 1\n");
    sim.node.manifest(206, VM202);
    std::os::unix::fs::symlink("nodes/pve1", sim.path("pve/local")).unwrap();
    let (_, v) = pass(&sim, &["--vmid", "205", "--vmid", "206"]);
    assert_eq!(guest(&v, 205)["detail"], "on node `pve2`");
    assert_eq!(guest(&v, 206)["detail"], "phx-hook is not its hookscript");
    assert!(!a.path("/etc/app/token").exists());
    // A running, unlocked 201 is repaired.
    let (_, v) = pass(&sim, &["--vmid", "201"]);
    assert_eq!(guest(&v, 201)["state"], "repaired");
}

/// One reconcile at a time per node: a second one exits while the first holds the lock,
/// and two at once never deliver a file twice.
#[test]
fn one_pass_at_a_time() {
    let (sim, a, _b) = two_vms();
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(sim.path("run/reconcile.lock"))
        .unwrap();
    lock.lock().unwrap();
    fs::remove_file(a.path("/etc/app/token")).unwrap();
    let r = sim.phx(&["reconcile"]);
    r.assert_code(0)
        .assert_contains("another reconcile is running on this node");
    assert!(!a.path("/etc/app/token").exists());
    drop(lock);
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let cfg = sim.path("phx-hook.yaml");
            std::thread::spawn(move || {
                std::process::Command::new(BIN)
                    .arg("--config")
                    .arg(cfg)
                    .arg("reconcile")
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for r in runs {
        assert_eq!(r.join().unwrap().status.code(), Some(0));
    }
    assert!(a.path("/etc/app/token").exists());
    let delivered = sim
        .audit_actions("deliver")
        .into_iter()
        .filter(|e| e["reason"] == "drift")
        .count();
    assert_eq!(delivered, 1, "{}", sim.audit());
    assert_eq!(count(&a), 2);
}

/// A real container rebooted from inside (no hook phase runs): its RAM-backed secret is
/// gone, and the next pass puts it back and says why.
#[test]
fn a_container_rebooted_from_inside_gets_its_secrets_back() {
    let cts = Containers::start();
    // The container's /run is a tmpfs of its own, as with any systemd guest.
    let conf = cts.dir.path().join(format!("{PRIV}/config"));
    let mut text = fs::read_to_string(&conf).unwrap();
    text.push_str("lxc.mount.entry = tmpfs run tmpfs rw,nosuid,nodev,mode=755,create=dir 0 0\n");
    fs::write(&conf, text).unwrap();
    cts.stop(PRIV);
    let sim = SimNode::for_containers(&cts, "30s", "5s");
    sim.ct(301, "arch: amd64\n");
    sim.node.manifest(301, "guest: lxc\nfiles:\n  - {dest: /run/secrets/smb, key: samba/password}\nafter:\n  - [sh, -c, \"echo x >> /tmp/after-count\"]\n");
    sim.phx(&["register", "301"]).assert_code(0);
    sim.tool("pct", &["start", "301"]).assert_code(0);
    let secret = || {
        std::process::Command::new("lxc-attach")
            .args([
                "-P",
                &cts.lxcpath(),
                "-n",
                "301",
                "--",
                "cat",
                "/run/secrets/smb",
            ])
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default()
    };
    sim.eventually(30, "the first delivery", || {
        secret() == b"SMB-SECRET-7f3a9c"
    });
    sim.workers_done();
    // In sync: no process at all for the check.
    let (_, v) = pass(&sim, &[]);
    assert_eq!(guest(&v, 301)["state"], "in_sync", "{v:?}");
    assert_eq!(guest(&v, 301)["calls"], 0);
    // Reboot from inside: a new init, a fresh /run.
    let pid = |cts: &Containers| {
        String::from_utf8(
            std::process::Command::new("lxc-info")
                .args(["-P", &cts.lxcpath(), "-n", "301", "-pH"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
    };
    let before = pid(&cts);
    // The attached shell may be killed by the reboot it asked for: its status says nothing.
    let _ = std::process::Command::new("lxc-attach")
        .args([
            "-P",
            &cts.lxcpath(),
            "-n",
            "301",
            "--clear-env",
            "--",
            "/bin/sh",
            "-c",
            "reboot",
        ])
        .stdin(std::process::Stdio::null())
        .output();
    sim.eventually(30, "the container to come back", || {
        let p = pid(&cts);
        !p.trim().is_empty() && p != before && secret().is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    let (r, v) = pass(&sim, &[]);
    r.assert_code(0);
    assert_eq!(guest(&v, 301)["state"], "repaired", "{v:?}");
    assert_eq!(guest(&v, 301)["changes"][0]["reason"], "reboot");
    assert_eq!(secret(), b"SMB-SECRET-7f3a9c");
    let (_, v) = pass(&sim, &[]);
    assert_eq!(guest(&v, 301)["state"], "in_sync");
    // Stopped: skipped (Proxmox's own test, the monitor's command socket), not
    // "unreachable", and the exit status stays 0.
    sim.tool("pct", &["stop", "301"]).assert_code(0);
    let (r, v) = pass(&sim, &[]);
    r.assert_code(0);
    assert_eq!(
        (
            guest(&v, 301)["state"].as_str(),
            guest(&v, 301)["detail"].as_str()
        ),
        (Some("skipped"), Some("not running"))
    );
}

/// The shipped watch unit's command: a `vault set` reaches a running guest without a
/// restart, and only the guest that uses the key (its `after` once).
#[test]
fn the_watch_unit_delivers_a_vault_set_to_running_guests() {
    let (sim, a, b) = two_vms();
    let unit = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/systemd/phx-hook-watch.service"
    ))
    .unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let mut argv = exec.split_whitespace();
    assert_eq!(
        argv.next(),
        Some("/usr/local/sbin/phx-hook"),
        "the hooks/ snippet's path"
    );
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _watch = Kill(
        std::process::Command::new(BIN)
            .arg("--config")
            .arg(sim.path("phx-hook.yaml"))
            .args(argv)
            .envs(sim.envs())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Its watches are set up before it says so (the deliveries above were in sync
    // already, so the records alone do not show that the watch runs).
    sim.eventually(30, "the watch to start", || {
        sim.syslog().contains("reconcile: watching")
    });
    sim.eventually(30, "the first pass", || {
        ["201", "202"].iter().all(|id| {
            fs::read_to_string(sim.path(&format!("run/delivered/{id}.json")))
                .is_ok_and(|t| t.contains("\"in sync\""))
        })
    });
    // The vault's recipients (`vault set` re-encrypts to them): the host's own key here.
    sim.node.write("recipients.asc", &keys().public(&["ed"]));
    let mut set = std::process::Command::new(BIN)
        .arg("--config")
        .arg(sim.path("phx-hook.yaml"))
        .args(["vault", "set", "samba/password", "--host"])
        .envs(sim.envs())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    set.stdin
        .take()
        .unwrap()
        .write_all(b"SMB-WATCHED-99\n")
        .unwrap();
    let out = set.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    sim.eventually(30, "the new value in the running guest", || {
        fs::read(a.path("/run/secrets/smb")).is_ok_and(|v| v == b"SMB-WATCHED-99")
    });
    // The repair audits once it is done: after the file and the after command.
    let rotations = || {
        sim.audit_actions("deliver")
            .into_iter()
            .filter(|e| e["reason"] == "rotation")
            .count()
    };
    sim.eventually(10, "the after command and the audit", || {
        count(&a) == 2 && rotations() == 1
    });
    // The pass is over (its lock is free): nothing more came.
    sim.eventually(10, "the pass to end", || {
        fs::File::open(sim.path("run/reconcile.lock")).is_ok_and(|f| f.try_lock().is_ok())
    });
    assert_eq!(
        count(&b),
        1,
        "a guest that does not use the key ran its after"
    );
    assert_eq!((count(&a), rotations()), (2, 1), "{}", sim.audit());
    assert!(
        sim.syslog()
            .contains("the vault, the config or a manifest changed")
    );
}

/// The shipped units are valid systemd units (`systemd-analyze verify`, with the
/// binary's path pointed at the one under test), and the timer starts the pass.
#[test]
fn the_shipped_units_verify() {
    let src = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/systemd"));
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let text = fs::read_to_string(e.path()).unwrap();
        let dest = dir.path().join(e.file_name());
        fs::write(&dest, text.replace("/usr/local/sbin/phx-hook", BIN)).unwrap();
        units.push(dest);
    }
    assert_eq!(units.len(), 3);
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let timer = fs::read_to_string(src.join("phx-hook-reconcile.timer")).unwrap();
    assert!(timer.contains("OnUnitActiveSec=1min"), "{timer}");
    let service = fs::read_to_string(src.join("phx-hook-reconcile.service")).unwrap();
    assert!(service.contains("ExecStart=/usr/local/sbin/phx-hook reconcile\n"));
}

/// A hostile container plants a FUSE mount that never answers where its manifest puts a
/// file: looking at it from the host would wait for ever. The pass still ends, reports it
/// unreachable, and repairs the other container.
#[test]
fn a_container_whose_filesystem_never_answers_cannot_stall_a_pass() {
    let cts = Containers::start();
    let sim = SimNode::for_containers(&cts, "5s", "2s");
    for id in [PRIV, IDMAPPED] {
        sim.ct(id, "arch: amd64\n");
        sim.node.manifest(id, "guest: lxc\nfiles:\n  - {dest: /mnt/trap/secret, key: samba/password}\n  - {dest: /run/ok, key: app/api_token}\n");
    }
    sim.phx(&["register", "301", "302"]).assert_code(0);
    // The trap, in 301 only (as the container's own root could mount it).
    let init = String::from_utf8(
        std::process::Command::new("lxc-info")
            .args(["-P", &cts.lxcpath(), "-n", "301", "-pH"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut trap = Kill(
        std::process::Command::new(format!("{SCRIPTS}/fuse-stall.py"))
            .args([init.trim(), "/mnt/trap"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut ready = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(trap.0.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready, "ready\n");
    // The pass ends (the test would hang otherwise) within its bounds.
    let (r, v) = pass(&sim, &[]);
    r.assert_code(1);
    assert_eq!(guest(&v, 301)["state"], "unreachable", "{v:?}");
    assert!(
        guest(&v, 301)["detail"]
            .as_str()
            .unwrap()
            .contains("looking at its files did not finish within 2s"),
        "{v:?}"
    );
    assert_eq!(guest(&v, 302)["state"], "repaired", "{v:?}");
    assert_eq!(
        fs::read(cts.path(IDMAPPED, "/mnt/trap/secret")).unwrap(),
        b"SMB-SECRET-7f3a9c"
    );
    // Delivering by hand (the post-start worker's path) ends too, with the file failed.
    let r = sim.phx(&["inject", "301"]);
    r.assert_code(1).assert_contains("/mnt/trap/secret");
    // Once the trap is gone (the daemon killed, the dead mount taken away), 301 is
    // repaired too.
    drop(trap);
    cts.attach(PRIV, "umount -l /mnt/trap");
    let (r, v) = pass(&sim, &[]);
    r.assert_code(0);
    assert_eq!(guest(&v, 301)["state"], "repaired", "{v:?}");
    assert_eq!(guest(&v, 302)["state"], "in_sync", "{v:?}");
}
