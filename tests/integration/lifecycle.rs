//! Proxmox as it really runs guests (issue 11): backups, migrations, reboots, CLI tasks,
//! clones and rollbacks, on the simulated node whose stand-ins (tests/scripts/qm, pct,
//! vzdump, pvesim.py) are modelled on the Proxmox functions they name, with the real
//! confined qemu-ga and real LXC containers where a point is about them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::guests::*;
use crate::sim::*;
use crate::util::*;

const VM_MANIFEST: &str = "guest: qemu\nfiles:\n  - {dest: /run/secrets/smb, key: samba/password}\nafter:\n  - [touch, /run/after-ran]\n";

/// A registered VM 201 whose agent comes up `delay` s after the guest boots.
fn vm(delay: u32) -> (SimNode, LateAgent) {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    sim.vm(201, "agent: 1\nmemory: 256\n");
    sim.node.manifest(201, VM_MANIFEST);
    sim.phx(&["register", "201"]).assert_code(0);
    let agent = LateAgent::install_after(&sim, 201, delay);
    (sim, agent)
}

fn delivered(agent: &LateAgent) -> bool {
    agent.path("/run/after-ran").exists()
}

fn forget(agent: &LateAgent) {
    let _ = fs::remove_file(agent.path("/run/after-ran"));
    let _ = fs::remove_file(agent.path("/run/secrets/smb"));
}

/// Point 1: a stop-mode backup of a running VM stops it, starts it paused with
/// `lock: backup`, then resumes it (`cont`): the guest boots and must get its secrets
/// and its `after` commands again.
#[test]
fn a_stop_mode_backup_of_a_running_vm_delivers_after_it_resumes() {
    let (sim, agent) = vm(1);
    sim.tool("qm", &["start", "201"]).assert_code(0);
    sim.eventually(30, "the first delivery", || delivered(&agent));
    forget(&agent);
    let r = sim.tool("vzdump", &["201", "--mode", "stop"]);
    r.assert_code(0)
        .assert_contains("handed to a background worker");
    sim.eventually(30, "the delivery after the backup", || delivered(&agent));
    assert_eq!(
        fs::read(agent.path("/run/secrets/smb")).unwrap(),
        b"SMB-SECRET-7f3a9c"
    );
    assert!(
        !sim.conf("qemu-server", 201).contains("lock:"),
        "the backup left its lock"
    );
    // The start was recognised as a backup's, and audited as such.
    let validate = sim.audit_actions("validate");
    assert!(
        validate
            .iter()
            .any(|v| v["start"] == "backup start (`lock: backup`)" && v["task"] == "vzdump"),
        "{validate:?}"
    );
    assert!(
        sim.tasks().contains("vzdump 201 status=0"),
        "{}",
        sim.tasks()
    );
}

/// Point 1: a backup of a stopped VM starts it paused, never boots it, and stops it
/// again: the worker waits, then gives up quietly (audited) without delivering.
#[test]
fn a_backup_of_a_stopped_vm_never_boots_and_its_worker_gives_up_quietly() {
    let (sim, agent) = vm(1);
    sim.tool("vzdump", &["201", "--mode", "snapshot"])
        .assert_code(0);
    sim.eventually(15, "the worker to give up", || {
        sim.audit_actions("deliver")
            .iter()
            .any(|v| v["outcome"] == "cancelled")
    });
    let cancelled = sim.audit_actions("deliver");
    assert!(
        cancelled[0]["reason"]
            .as_str()
            .unwrap()
            .contains("was stopped")
            || cancelled[0]["reason"]
                .as_str()
                .unwrap()
                .contains("QEMU process ended"),
        "{cancelled:?}"
    );
    assert!(!agent.path("/run/secrets/smb").exists());
    assert!(
        !sim.syslog().contains("<27>"),
        "an error was logged: {}",
        sim.syslog()
    );
    // pre-stop and post-stop of the backup's stop ran, with the lock still set.
    assert_eq!(sim.audit_actions("phase").len(), 2, "{}", sim.audit());
}

/// Point 2: a vault problem fails a normal start (fail closed), but neither a backup's
/// start nor a migration target's: those warn, audit, and go on.
#[test]
fn vault_problems_do_not_break_backups_or_migrations() {
    let (sim, agent) = vm(1);
    sim.tool("qm", &["start", "201"]).assert_code(0);
    sim.eventually(30, "the first delivery", || delivered(&agent));
    let mut v = fs::read(sim.path("secrets.json.gpg")).unwrap();
    let mid = v.len() / 2;
    v[mid] ^= 0x40;
    sim.node.vault(&v);
    // The backup completes and the VM runs again.
    let r = sim.tool("vzdump", &["201", "--mode", "stop"]);
    r.assert_code(0)
        .assert_contains("failed its integrity check")
        .assert_contains("not aborting a backup start (`lock: backup`)");
    sim.tool("qm", &["status", "201"])
        .assert_contains("status: running");
    // An intra-cluster live migration: the config is still the source node's, with
    // `lock: migrate`, and PVE_MIGRATED_FROM is set.
    fs::create_dir_all(sim.path("pve/nodes/pve2/qemu-server")).unwrap();
    let conf = sim.conf("qemu-server", 201);
    fs::remove_file(sim.path("pve/qemu-server/201.conf")).unwrap();
    sim.node.write(
        "pve/nodes/pve2/qemu-server/201.conf",
        format!("{conf}lock: migrate\n").as_bytes(),
    );
    let r = sim.tool("qm", &["start", "201", "--migratedfrom", "pve2"]);
    r.assert_code(0)
        .assert_contains("not aborting a live-migration target (migrated from pve2)")
        .assert_contains("not delivering: live-migration target");
    // A normal start is still refused.
    fs::remove_file(sim.path("pve/nodes/pve2/qemu-server/201.conf")).unwrap();
    sim.vm(201, &conf);
    sim.tool("qm", &["shutdown", "201"]).assert_code(0);
    sim.tool("qm", &["start", "201"])
        .assert_code(255)
        .assert_contains("hookscript error for 201 on pre-start");
    let warned: Vec<_> = sim
        .audit_actions("validate")
        .into_iter()
        .filter(|v| v["phase"] == "pre-start")
        .collect();
    assert_eq!(
        warned.iter().filter(|v| v["outcome"] == "warning").count(),
        2,
        "{warned:?}"
    );
    assert_eq!(
        warned.iter().filter(|v| v["outcome"] == "failed").count(),
        1
    );
}

/// Point 3: the target of a remote (cross-cluster) migration has no PVE_MIGRATED_FROM,
/// but its own config says `lock: migrate` and it runs in a `qmtunnel` task: neither a
/// delivery nor `after` in the middle of a live migration.
#[test]
fn a_remote_migration_target_is_left_alone() {
    let (sim, agent) = vm(0);
    sim.vm(
        201,
        "agent: 1\nhookscript: sim:snippets/phx-hook\nlock: migrate\n",
    );
    let r = sim.tool("qm", &["mtunnel-start", "201"]);
    r.assert_code(0)
        .assert_contains("not delivering: incoming migration (`lock: migrate`)");
    std::thread::sleep(Duration::from_secs(2));
    assert!(!delivered(&agent));
    let skip = sim.audit_actions("skip");
    assert_eq!(skip.len(), 1);
    assert_eq!(skip[0]["task"], "qmtunnel");
    assert!(sim.tasks().contains("qmtunnel 201 status=0 async"));
}

/// Point 4: a start from a shell (`qm start`, `pct start`) is a sync task, whose parent
/// sends SIGTERM to the task's whole process group when it ends. The worker left that
/// group before exec, so delivery still happens.
#[test]
fn the_worker_survives_the_cli_tasks_process_group_sigterm() {
    let (sim, agent) = vm(2);
    sim.tool("qm", &["start", "201"]).assert_code(0);
    assert!(
        sim.tasks().contains("qmstart 201 status=0"),
        "{}",
        sim.tasks()
    );
    sim.eventually(30, "delivery after the task's SIGTERM", || {
        delivered(&agent)
    });
    // The worker runs in a session of its own.
    let spawn = sim.audit_actions("spawn");
    assert_eq!(spawn[0]["task"], "qmstart");
}

/// Point 5, against the real qemu-ga (which, like QEMU's chardev, serves one client at a
/// time): while phx-hook runs a long `after` command, Proxmox's own agent calls (3 s
/// timeouts) still get through; and a guest frozen by a backup's fs-freeze is waited
/// for, then delivered to.
#[test]
fn the_agent_socket_is_shared_and_a_frozen_guest_is_waited_for() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("vm");
    fs::create_dir_all(root.join("frozen")).unwrap();
    let img = tmp.path().join("fs.img");
    sh(std::process::Command::new("truncate")
        .args(["-s", "8M"])
        .arg(&img));
    sh(std::process::Command::new("mkfs.ext4").arg("-q").arg(&img));
    sh(std::process::Command::new("mount")
        .args(["-o", "loop"])
        .arg(&img)
        .arg(root.join("frozen")));
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(root.join("frozen"));
    let g = FakeGuest::start_with(&root, "", &[("PHX_ALLOW_FREEZE_LIST", "1")]);
    let manifest = "guest: qemu\nfiles:\n  - {dest: /etc/app/secret, key: samba/password}\nafter:\n  - [sleep, \"6\"]\n";
    let n = crate::qga::vm_node(&g.socket(), manifest, VAULT_JSON.as_bytes());
    let ping = |timeout: u64| {
        let mut t = phx_hook::deliver::qga::QgaTransport::new(
            "201".parse().unwrap(),
            g.socket(),
            Duration::from_secs(timeout),
        );
        t.wait(Duration::from_secs(timeout))
    };
    // 1. A long after-command: pings from "Proxmox" during it still answer in time.
    let bin = std::thread::spawn({
        let cfg = n.path("phx-hook.yaml");
        move || {
            std::process::Command::new(BIN)
                .arg("--config")
                .arg(cfg)
                .args(["inject", "201"])
                .output()
                .unwrap()
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..3 {
        let t = Instant::now();
        ping(3)
            .unwrap_or_else(|e| panic!("Proxmox's ping was kept out for {:?}: {e}", t.elapsed()));
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = Run::from(bin.join().unwrap());
    out.assert_code(0).assert_contains("after: sleep 6: ok");
    // 2. Frozen: the agent refuses guest-exec until thawed; phx-hook waits.
    let agent_cmd = |json: &str| {
        use std::io::{BufRead, BufReader, Write};
        let mut s = std::os::unix::net::UnixStream::connect(g.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(json.as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line
    };
    let r = agent_cmd(
        "{\"execute\":\"guest-fsfreeze-freeze-list\",\"arguments\":{\"mountpoints\":[\"/frozen\"]}}\n",
    );
    assert!(r.contains("\"return\": 1"), "{r}");
    fs::remove_file(g.path("/etc/app/secret")).unwrap();
    let started = Instant::now();
    let bin = std::thread::spawn({
        let cfg = n.path("phx-hook.yaml");
        move || {
            std::process::Command::new(BIN)
                .arg("--config")
                .arg(cfg)
                .args(["inject", "201"])
                .output()
                .unwrap()
        }
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !g.path("/etc/app/secret").exists(),
        "delivered into a frozen guest"
    );
    let r = agent_cmd("{\"execute\":\"guest-fsfreeze-thaw\"}\n");
    assert!(r.contains("\"return\": 1"), "{r}");
    let out = Run::from(bin.join().unwrap());
    out.assert_code(0).assert_lacks("forbids");
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(
        fs::read(g.path("/etc/app/secret")).unwrap(),
        b"SMB-SECRET-7f3a9c"
    );
}

/// Point 6: configs read as Proxmox reads them: `agent: on,...` enables the agent, the
/// last `agent:` line wins, and snippets follow `content-dirs`.
#[test]
fn guest_configs_and_storage_are_parsed_as_proxmox_does() {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    let d = sim.node.dir.path().display().to_string();
    sim.node.write(
        "pve/storage.cfg",
        format!("dir: local\n\tpath /var/lib/vz\n\tcontent iso\n\ndir: sim\n\tpath {d}/storage\n\tcontent snippets\n\tcontent-dirs snippets=hooks\n").as_bytes(),
    );
    sim.vm(201, "agent: 0\nagent: on,fstrim_cloned_disks=1\n");
    sim.node.manifest(201, VM_MANIFEST);
    sim.phx(&["register", "201"]).assert_code(0);
    assert!(
        sim.path("storage/hooks/phx-hook").exists(),
        "content-dirs ignored"
    );
    let agent = LateAgent::install_after(&sim, 201, 0);
    sim.tool("qm", &["start", "201"]).assert_code(0);
    sim.eventually(30, "the delivery", || delivered(&agent));
    // The last line wins the other way too.
    sim.tool("qm", &["shutdown", "201"]).assert_code(0);
    let conf = sim.conf("qemu-server", 201).replace("agent: 0\n", "") + "agent: enabled=no\n";
    sim.vm(201, &conf);
    sim.tool("qm", &["start", "201"])
        .assert_code(255)
        .assert_contains("the QEMU guest agent is not enabled");
}

/// Point 7: registration drift. A clone carries phx-hook's hookscript without a record;
/// a rollback takes the hookscript away from a recorded guest; a chained hook that
/// vanished fails the start loudly; a guest on another node is not registered here.
#[test]
fn registration_drift_is_noticed() {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    sim.vm(201, "agent: 1\n");
    sim.node.manifest(201, VM_MANIFEST);
    sim.tool("qm", &["snapshot", "201", "clean"]).assert_code(0);
    sim.phx(&["register", "201"]).assert_code(0);
    sim.tool("qm", &["clone", "201", "203"]).assert_code(0);
    assert!(
        sim.conf("qemu-server", 203)
            .contains("hookscript: sim:snippets/phx-hook")
    );
    sim.phx(&["status"]).assert_code(1).assert_contains(
        "has phx-hook's hookscript but no registration record (a clone or a restore?)",
    );
    sim.phx(&["doctor"])
        .assert_contains("guest 203 has phx-hook's hookscript but no registration record");
    sim.tool("qm", &["rollback", "201", "clean"]).assert_code(0);
    assert!(!sim.conf("qemu-server", 201).contains("hookscript"));
    sim.phx(&["status"]).assert_code(1).assert_contains(
        "recorded as registered, but its hookscript is unset (a snapshot rollback?)",
    );
    sim.phx(&["doctor"]).assert_contains(
        "guest 201 is recorded as registered, but its hookscript is no longer phx-hook's",
    );
    sim.phx(&["register", "201"]).assert_code(0);
    // A chained hook that cannot be found.
    sim.vm(202, "agent: 1\nhookscript: sim:snippets/old-hook.sh\n");
    let old = sim.path("storage/snippets/old-hook.sh");
    fs::write(&old, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o755)).unwrap();
    sim.phx(&["register", "202", "--chain"]).assert_code(0);
    fs::remove_file(&old).unwrap();
    sim.tool("qm", &["start", "202"])
        .assert_code(255)
        .assert_contains("the chained hookscript cannot be run: `sim:snippets/old-hook.sh`");
    sim.phx(&["202", "post-stop"])
        .assert_code(0)
        .assert_contains("the chained hookscript cannot be run");
    // A guest on another node.
    std::os::unix::fs::symlink("nodes/pve1", sim.path("pve/local")).unwrap();
    fs::create_dir_all(sim.path("pve/nodes/pve1")).unwrap();
    sim.node
        .write("pve/nodes/pve2/qemu-server/205.conf", b"agent: 1\n");
    sim.phx(&["register", "205"])
        .assert_code(1)
        .assert_contains("guest 205 lives on node `pve2`, not on this node (`pve1`)");
    let v: serde_json::Value =
        serde_json::from_str(&sim.phx(&["status", "--json"]).stdout).unwrap();
    assert!(
        v.as_array().unwrap().iter().any(|g| g["node"] == "pve1"),
        "{v}"
    );
}

/// Point 8: post-start can run before a container is RUNNING (monitor_start gives up
/// after 10 s, or has no monitor socket): the worker waits for it, bounded.
#[test]
fn a_container_that_is_not_running_yet_is_waited_for() {
    let cts = Containers::start();
    cts.stop(PRIV);
    let mut sim = SimNode::new(VAULT_JSON.as_bytes(), "  lxc_transport: native\n");
    for (k, v) in cts.env() {
        sim.env.push((k.to_string(), v));
    }
    sim.env.push(("PHX_TEST_CT_START_DELAY".into(), "3".into()));
    let lock_dir = cts.lock_dir().display().to_string();
    sim.node.config(&format!(
        "  qga_socket_dir: {d}/qga\n  pct: {SCRIPTS}/pct\n  lxc_info: {SCRIPTS}/lxc-info\n  lxc_attach: {SCRIPTS}/lxc-attach\n  lock_dir_lxc: {lock_dir}\n  lxc_transport: native\nsyslog: {d}/syslog.sock\nagent:\n  wait: 30s\n  timeout: 5s\n",
        d = sim.node.dir.path().display()
    ));
    sim.ct(301, "arch: amd64\n");
    sim.node.manifest(
        301,
        "guest: lxc\nfiles:\n  - {dest: /etc/phx/secret, key: samba/password}\n",
    );
    sim.phx(&["register", "301"]).assert_code(0);
    let t = Instant::now();
    sim.tool("pct", &["start", "301"]).assert_code(0);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the stand-in waited for RUNNING"
    );
    sim.eventually(30, "delivery once the container runs", || {
        cts.path(PRIV, "/etc/phx/secret").exists()
    });
    assert!(
        sim.syslog().contains("the container is running after"),
        "{}",
        sim.syslog()
    );
}

/// Point 9: a Windows VM: pre-start says clearly that phx-hook cannot deliver into it,
/// instead of starting a worker that fails later.
#[test]
fn a_windows_vm_is_refused_at_pre_start() {
    let (sim, _agent) = vm(0);
    sim.vm(
        201,
        "agent: 1\nostype: win11\nhookscript: sim:snippets/phx-hook\n",
    );
    sim.tool("qm", &["start", "201"])
        .assert_code(255)
        .assert_contains(
            "is a Windows VM (`ostype: win11`): phx-hook cannot deliver into Windows guests yet",
        );
    sim.node
        .manifest(201, &format!("required: false\n{VM_MANIFEST}"));
    sim.tool("qm", &["start", "201"])
        .assert_code(0)
        .assert_contains("not delivering: a Windows VM");
    assert!(sim.audit_actions("spawn").is_empty());
}

/// Point 10: `qm reboot` runs all four phases. A worker of the previous boot that still
/// waits for the agent must not deliver its (stale) plan; the new start's worker does,
/// with the vault as it is now.
#[test]
fn a_reboot_retires_the_previous_boots_worker() {
    let (sim, agent) = vm(4);
    sim.tool("qm", &["start", "201"]).assert_code(0);
    // The worker now waits for an agent that needs 4 s. Rotate the value, and reboot.
    let rotated = VAULT_JSON.replace("SMB-SECRET-7f3a9c", "SMB-ROTATED-0042");
    sim.node
        .vault(&keys().encrypt(rotated.as_bytes(), &["ed"], false, None, &[]));
    sim.tool("qm", &["reboot", "201"]).assert_code(0);
    assert!(sim.tasks().contains("qmreboot 201 status=0"));
    sim.eventually(30, "the new boot's delivery", || delivered(&agent));
    assert_eq!(
        fs::read(agent.path("/run/secrets/smb")).unwrap(),
        b"SMB-ROTATED-0042"
    );
    sim.eventually(10, "the audit", || {
        sim.audit_actions("after").len() == 1
            && sim
                .audit_actions("deliver")
                .iter()
                .any(|v| v["outcome"] == "cancelled")
    });
    let delivers: Vec<_> = sim
        .audit_actions("deliver")
        .into_iter()
        .filter(|v| v["outcome"] == "ok")
        .collect();
    assert_eq!(delivers.len(), 1, "delivered twice: {}", sim.audit());
}

/// Point 1 for containers: a stop-mode backup stops the container, writes the archive,
/// removes `lock: backup`, then starts it again from the vzdump task itself. That start
/// delivers, and a vault problem does not keep the container stopped; suspend and
/// snapshot modes only freeze it (no phase).
#[test]
fn container_backups_deliver_after_the_restart_and_never_keep_it_down() {
    let cts = Containers::start();
    cts.stop(PRIV);
    let sim = SimNode::for_containers(&cts, "30s", "5s");
    sim.ct(301, "arch: amd64\n");
    sim.node.manifest(
        301,
        "guest: lxc\nfiles:\n  - {dest: /run/phx/secret, key: samba/password}\n",
    );
    sim.phx(&["register", "301"]).assert_code(0);
    let secret = cts.path(PRIV, "/run/phx/secret");
    sim.tool("pct", &["start", "301"]).assert_code(0);
    sim.eventually(30, "the first delivery", || secret.exists());
    for mode in ["suspend", "snapshot"] {
        sim.tool("vzdump", &["301", "--mode", mode]).assert_code(0);
    }
    assert_eq!(
        sim.audit_actions("phase").len(),
        0,
        "a phase ran for suspend or snapshot"
    );
    fs::remove_file(&secret).unwrap();
    sim.tool("vzdump", &["301", "--mode", "stop"])
        .assert_code(0);
    sim.eventually(30, "the delivery after the restart", || secret.exists());
    let ok: Vec<_> = sim
        .audit_actions("validate")
        .into_iter()
        .filter(|v| v["task"] == "vzdump")
        .collect();
    assert_eq!(ok.len(), 1, "{}", sim.audit());
    assert_eq!(ok[0]["start"], "restart by a backup (vzdump task)");
    // With a broken vault the restart warns instead of failing: the container runs.
    let mut v = fs::read(sim.path("secrets.json.gpg")).unwrap();
    let mid = v.len() / 2;
    v[mid] ^= 0x40;
    sim.node.vault(&v);
    sim.tool("vzdump", &["301", "--mode", "stop"])
        .assert_code(0)
        .assert_contains("not aborting a restart by a backup (vzdump task)");
    let state = std::process::Command::new("lxc-info")
        .args(["-P", &cts.lxcpath(), "-n", "301", "-sH"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "RUNNING");
}
