//! Hook mode on a simulated node: `qm start` / `pct start` stand-ins run the registered
//! hookscript exactly as Proxmox does (argv, empty stdin, PVE_MIGRATED_FROM, the config
//! lock held through pre- and post-start, abort on a failed pre-start, waiting for the
//! hook's pipes to close), against the real confined qemu-ga and real LXC containers.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::guests::*;
use crate::sim::*;
use crate::util::*;

const VM_MANIFEST: &str = "guest: qemu\nfiles:\n  - {dest: /etc/samba/phoenix.secret, key: samba/password}\n  - {dest: /etc/app/app.env, format: env, vars: {DATABASE_PASS: app/db_password}, mode: \"0640\", group: app}\nafter:\n  - [touch, /run/after-ran]\n";

#[test]
fn a_registered_vm_gets_its_secrets_on_start() {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    sim.vm(201, "agent: 1\nmemory: 256\n");
    sim.node.manifest(201, VM_MANIFEST);
    sim.phx(&["register", "201"])
        .assert_code(0)
        .assert_contains("201: registered");
    assert!(
        sim.conf("qemu-server", 201)
            .contains("hookscript: sim:snippets/phx-hook")
    );
    let agent = LateAgent::install(&sim, 201);
    let r = sim.tool("qm", &["start", "201"]);
    r.assert_code(0)
        .assert_contains("2 files ready for delivery")
        .assert_contains("handed to a background worker");
    // post-start returned (both pipes closed) while the agent was not up yet.
    let times = sim.hook_times();
    let post = times.iter().find(|t| t.1 == "post-start").unwrap();
    assert!(post.2 < 2.0, "post-start took {}s", post.2);
    assert!(!agent.path("/etc/samba/phoenix.secret").exists());
    sim.eventually(30, "the worker's delivery", || {
        agent.path("/run/after-ran").exists()
    });
    assert_eq!(
        fs::read(agent.path("/etc/samba/phoenix.secret")).unwrap(),
        b"SMB-SECRET-7f3a9c"
    );
    let m = fs::metadata(agent.path("/etc/app/app.env")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.gid()), (0o640, 1000));
    sim.eventually(10, "the worker's audit lines", || {
        sim.audit().contains("\"action\":\"after\"")
    });
    let syslog = sim.syslog();
    assert!(syslog.contains("phx-hook["), "{syslog}");
    assert!(
        syslog.contains("delivered /etc/samba/phoenix.secret"),
        "{syslog}"
    );
    let audit = sim.audit();
    for action in [
        "\"phase\":\"pre-start\",",
        "\"action\":\"spawn\"",
        "\"phase\":\"post-start\",",
    ] {
        assert!(audit.contains(action), "{action} missing from\n{audit}");
    }
    sim.phx(&["audit", "--verify"])
        .assert_code(0)
        .assert_contains("hash chain intact");
    leaks(&[&r.all(), &syslog, &audit]);
}

#[test]
fn a_registered_container_gets_its_secrets_on_start_after_the_lock_is_released() {
    let cts = Containers::start();
    cts.stop(PRIV);
    for transport in ["pct", "native"] {
        let mut sim = SimNode::new(
            VAULT_JSON.as_bytes(),
            &format!("  lxc_transport: {transport}\n"),
        );
        for (k, v) in cts.env() {
            sim.env.push((k.to_string(), v));
        }
        // The stand-ins and the hook must agree on the lock directory.
        let lock_dir = cts.lock_dir().display().to_string();
        sim.node.config(&format!(
            "  qga_socket_dir: {d}/qga\n  qm: {SCRIPTS}/qm\n  pct: {SCRIPTS}/pct\n  lxc_info: {SCRIPTS}/lxc-info\n  lxc_attach: {SCRIPTS}/lxc-attach\n  lock_dir_lxc: {lock_dir}\n  lxc_transport: {transport}\nsyslog: {d}/syslog.sock\nagent:\n  timeout: 5s\n",
            d = sim.node.dir.path().display()
        ));
        sim.ct(301, "arch: amd64\nhostname: ct301\n");
        sim.node.manifest(301, "guest: lxc\nfiles:\n  - {dest: /etc/samba/phoenix.secret, key: samba/password}\nafter:\n  - [touch, /tmp/after-ran]\n");
        sim.phx(&["register", "301"]).assert_code(0);
        let r = sim.tool("pct", &["start", "301"]);
        r.assert_code(0)
            .assert_contains("handed to a background worker");
        sim.eventually(30, "delivery into the container", || {
            cts.path(PRIV, "/tmp/after-ran").exists()
        });
        assert_eq!(
            fs::read(cts.path(PRIV, "/etc/samba/phoenix.secret")).unwrap(),
            b"SMB-SECRET-7f3a9c"
        );
        sim.eventually(10, "the audit lines", || {
            sim.audit().contains("\"action\":\"after\"")
        });
        assert!(
            sim.audit()
                .contains(&format!("\"transport\":\"{transport}\""))
        );
        leaks(&[&r.all(), &sim.syslog(), &sim.audit()]);
        fs::remove_file(cts.path(PRIV, "/tmp/after-ran")).unwrap();
        fs::remove_file(cts.path(PRIV, "/etc/samba/phoenix.secret")).unwrap();
        cts.stop(PRIV);
    }
}

#[test]
fn a_missing_key_or_a_tampered_vault_aborts_the_start() {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    sim.vm(201, "agent: 1\n");
    sim.node.manifest(
        201,
        "guest: qemu\nfiles:\n  - {dest: /etc/x, key: samba/passwort}\n",
    );
    sim.phx(&["register", "201"]).assert_code(0);
    let launcher = sim.path("pve/qemu-server/201.start");
    fs::write(
        &launcher,
        format!("#!/bin/sh\ntouch {}\n", sim.path("qemu-launched").display()),
    )
    .unwrap();
    fs::set_permissions(&launcher, fs::Permissions::from_mode(0o755)).unwrap();
    let r = sim.tool("qm", &["start", "201"]);
    r.assert_code(255)
        .assert_contains("phx-hook: guest 201: ")
        .assert_contains("101.yaml".replace("101", "201").as_str())
        .assert_contains("`samba/passwort` does not exist")
        .assert_contains("hookscript error for 201 on pre-start");
    assert!(
        !sim.path("qemu-launched").exists(),
        "the VM was started despite the failed pre-start"
    );
    // required: false turns it into a warning: the start goes on.
    sim.node.manifest(
        201,
        "guest: qemu\nrequired: false\nfiles:\n  - {dest: /etc/x, key: samba/passwort}\n",
    );
    sim.tool("qm", &["start", "201"])
        .assert_code(0)
        .assert_contains("warning");
    assert!(sim.path("qemu-launched").exists());
    fs::remove_file(sim.path("qemu-launched")).unwrap();
    // A tampered vault.
    sim.node.manifest(201, VM_MANIFEST);
    let mut v = fs::read(sim.path("secrets.json.gpg")).unwrap();
    let mid = v.len() / 2;
    v[mid] ^= 0x40;
    sim.node.vault(&v);
    let r = sim.tool("qm", &["start", "201"]);
    r.assert_code(255)
        .assert_contains("failed its integrity check");
    assert!(!sim.path("qemu-launched").exists());
    // An agent that is not enabled: the start is refused with the fix.
    sim.node
        .vault(&keys().encrypt(VAULT_JSON.as_bytes(), &["ed"], false, None, &[]));
    sim.vm(201, "agent: 0\nhookscript: sim:snippets/phx-hook\n");
    sim.tool("qm", &["start", "201"])
        .assert_code(255)
        .assert_contains("guest agent is not enabled")
        .assert_contains("qm set 201 --agent enabled=1");
    leaks(&[&sim.audit()]);
}

#[test]
fn unknown_phases_exit_0_and_guests_without_a_manifest_are_left_alone() {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    sim.vm(201, "agent: 1\n");
    sim.node.manifest(201, VM_MANIFEST);
    sim.phx(&["register", "201"]).assert_code(0);
    for phase in ["pre-stop", "post-stop", "pre-migrate", "something-new"] {
        sim.phx(&["201", phase]).assert_code(0);
    }
    // A guest without a manifest: nothing to do, at any phase.
    sim.vm(202, "agent: 1\n");
    for phase in ["pre-start", "post-start"] {
        let r = sim.phx(&["202", phase]);
        r.assert_code(0);
        assert!(r.all().is_empty(), "{}", r.all());
    }
    // A clone that inherited the hookscript: starts, with a warning in the task log.
    sim.vm(203, "agent: 1\nhookscript: sim:snippets/phx-hook\n");
    sim.phx(&["203", "pre-start"])
        .assert_code(0)
        .assert_contains("not registered (a clone?)");
    // A registered guest whose manifest is gone on this node: the start fails, saying
    // what to do.
    std::fs::remove_file(sim.path("manifests/201.yaml")).unwrap();
    sim.tool("qm", &["start", "201"])
        .assert_code(255)
        .assert_contains("registered with phx-hook but this node has no manifest")
        .assert_contains("phx-hook unregister 201");
}

#[test]
fn a_second_start_takes_over_and_nothing_is_delivered_twice() {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    sim.vm(201, "agent: 1\n");
    sim.node.manifest(201, VM_MANIFEST);
    let root = sim.path("guests/201");
    fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(root.join("run/qga.sock"), sim.path("qga/201.qga")).unwrap();
    // Two post-start hooks while the agent is down: the first worker waits for it holding
    // the guest's worker lock; the second start takes the guest over, the first gives up
    // without delivering, and the second delivers once the agent is up.
    sim.phx(&["201", "post-start"]).assert_code(0);
    sim.eventually(10, "the first worker to take the lock", || {
        fs::File::open(sim.path("run/worker-201.lock")).is_ok_and(|f| f.try_lock().is_err())
    });
    sim.phx(&["201", "post-start"]).assert_code(0);
    sim.eventually(10, "the first worker to give up", || {
        sim.audit().contains("took over its delivery")
    });
    let g = FakeGuest::start(&root, "");
    sim.eventually(30, "the delivery", || g.path("/run/after-ran").exists());
    sim.eventually(10, "the audit lines", || {
        sim.audit().contains("\"action\":\"after\"")
    });
    let delivers = sim
        .audit()
        .matches("\"action\":\"deliver\",\"outcome\":\"ok\"")
        .count();
    assert_eq!(delivers, 2, "each file delivered once:\n{}", sim.audit());
}

#[test]
fn fifty_parallel_hooks_keep_the_audit_chain() {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    let ids: Vec<u32> = (300..350).collect();
    for id in &ids {
        sim.ct(*id, "arch: amd64\n");
        sim.node.manifest(*id, "guest: lxc\nfiles:\n  - {dest: /etc/x, key: samba/password}\n  - {dest: /etc/y, key: app/api_token}\n");
    }
    let handles: Vec<_> = ids
        .iter()
        .map(|id| {
            let env: Vec<(String, String)> = vec![(
                "PHX_HOOK_CONFIG".into(),
                sim.path("phx-hook.yaml").display().to_string(),
            )];
            let id = id.to_string();
            std::thread::spawn(move || {
                std::process::Command::new(BIN)
                    .args([&id, "pre-start"])
                    .envs(env)
                    .output()
                    .unwrap()
                    .status
                    .code()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), Some(0));
    }
    let audit = sim.audit();
    let lines: Vec<&str> = audit.lines().collect();
    assert_eq!(lines.len(), 100, "50 hooks x (decrypt + validate)");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).expect("a well-formed line");
        assert!(v["prev"].as_str().unwrap().len() == 64);
    }
    sim.phx(&["audit", "--verify"])
        .assert_code(0)
        .assert_contains("100 lines, hash chain intact");
    let write = |text: String| fs::write(sim.path("audit.jsonl"), text).unwrap();
    // Edit line 10: line 11 no longer follows it.
    let edited: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 9 {
                l.replace("\"ok\"", "\"OK\"")
            } else {
                l.to_string()
            }
        })
        .collect();
    write(edited.join("\n") + "\n");
    sim.phx(&["audit", "--verify"])
        .assert_code(1)
        .assert_contains("audit.jsonl:11:")
        .assert_contains("line 10 was edited");
    // Delete line 20.
    let deleted: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 19)
        .map(|(_, l)| *l)
        .collect();
    write(deleted.join("\n") + "\n");
    sim.phx(&["audit", "--verify"])
        .assert_code(1)
        .assert_contains("audit.jsonl:20:");
    // Swap lines 30 and 31.
    let mut swapped: Vec<&str> = lines.clone();
    swapped.swap(29, 30);
    write(swapped.join("\n") + "\n");
    sim.phx(&["audit", "--verify"])
        .assert_code(1)
        .assert_contains("audit.jsonl:30:");
    // Filters.
    write(lines.join("\n") + "\n");
    let r = sim.phx(&["audit", "--vmid", "305", "--json"]);
    assert_eq!(r.stdout.lines().count(), 2);
    assert_eq!(
        sim.phx(&["audit", "--since", "1h"]).stdout.lines().count(),
        100
    );
    assert_eq!(
        sim.phx(&["audit", "--since", "2999-01-01"])
            .stdout
            .lines()
            .count(),
        0
    );
}

#[test]
fn registration() {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    sim.vm(201, "agent: 1\n");
    sim.ct(301, "arch: amd64\n");
    // A foreign hookscript on 202.
    sim.vm(202, "agent: 1\nhookscript: sim:snippets/old-hook.sh\n");
    let marker = sim.path("old-hook-ran");
    let old = sim.path("storage/snippets/old-hook.sh");
    fs::write(
        &old,
        format!(
            "#!/bin/sh\necho \"$1 $2\" >> {}\nexit ${{OLD_HOOK_EXIT:-0}}\n",
            marker.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o755)).unwrap();

    // Many guests in one call; the snippet lands in local's snippets dir, executable.
    sim.phx(&["register", "201", "301"])
        .assert_code(0)
        .assert_contains("201: registered")
        .assert_contains("301: registered");
    let snippet = sim.path("storage/snippets/phx-hook");
    assert!(fs::metadata(&snippet).unwrap().permissions().mode() & 0o111 != 0);
    assert!(fs::read_to_string(&snippet).unwrap().contains(BIN));
    assert!(
        sim.conf("lxc", 301)
            .contains("hookscript: sim:snippets/phx-hook")
    );
    // Idempotent.
    sim.phx(&["register", "201", "301"])
        .assert_code(0)
        .assert_contains("201: already registered");
    // A storage without snippets content, and one that does not exist.
    sim.phx(&["register", "201", "--storage", "backups"])
        .assert_code(1)
        .assert_contains("pvesm set backups --content backup,snippets");
    sim.phx(&["register", "201", "--storage", "nope"])
        .assert_code(1)
        .assert_contains("storage `nope` is not in");
    // A foreign hookscript is not clobbered...
    sim.phx(&["register", "202"])
        .assert_code(1)
        .assert_contains("already has the hookscript `sim:snippets/old-hook.sh`")
        .assert_contains("--chain");
    assert!(
        sim.conf("qemu-server", 202)
            .contains("hookscript: sim:snippets/old-hook.sh")
    );
    // ...unless chained: then it runs after phx-hook, for every phase.
    sim.phx(&["register", "202", "--chain"])
        .assert_code(0)
        .assert_contains("runs `sim:snippets/old-hook.sh` after phx-hook");
    sim.node.manifest(
        202,
        "guest: qemu\nfiles:\n  - {dest: /etc/x, key: samba/password}\n",
    );
    // A migration target (the config still on the source node, locked): phx-hook
    // delivers nothing, and the chained hook runs for both phases.
    let conf = sim.conf("qemu-server", 202);
    fs::remove_file(sim.path("pve/qemu-server/202.conf")).unwrap();
    sim.node.write(
        "pve/nodes/pve2/qemu-server/202.conf",
        format!("{conf}lock: migrate\n").as_bytes(),
    );
    sim.tool("qm", &["start", "202", "--migratedfrom", "pve2"])
        .assert_code(0);
    fs::remove_file(sim.path("pve/nodes/pve2/qemu-server/202.conf")).unwrap();
    sim.vm(202, &conf);
    assert_eq!(
        fs::read_to_string(&marker).unwrap(),
        "202 pre-start\n202 post-start\n"
    );
    // Its pre-start exit status counts.
    let mut sim_env = sim;
    sim_env.env.push(("OLD_HOOK_EXIT".into(), "3".into()));
    sim_env
        .tool("qm", &["start", "202"])
        .assert_code(255)
        .assert_contains("chained hookscript");
    let sim = sim_env;
    // unregister restores the previous hookscript, or removes ours.
    sim.phx(&["unregister", "202", "201"])
        .assert_code(0)
        .assert_contains("previous hookscript `sim:snippets/old-hook.sh` is back");
    assert!(
        sim.conf("qemu-server", 202)
            .contains("hookscript: sim:snippets/old-hook.sh")
    );
    assert!(!sim.conf("qemu-server", 201).contains("hookscript"));
    sim.phx(&["unregister", "201"])
        .assert_code(0)
        .assert_contains("nothing to do");
    assert!(Path::new(&snippet).exists());
}

#[test]
fn status_and_doctor() {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    sim.vm(201, "agent: 1\n");
    sim.ct(301, "arch: amd64\n");
    sim.node.manifest(201, VM_MANIFEST);
    sim.node.manifest(
        301,
        "guest: lxc\nfiles:\n  - {dest: /etc/x, key: samba/password}\n",
    );
    sim.phx(&["register", "201"]).assert_code(0);
    let r = sim.phx(&["status"]);
    r.assert_code(1)
        .assert_contains("not registered: `phx-hook register 301`");
    let v: serde_json::Value =
        serde_json::from_str(&sim.phx(&["status", "--json"]).stdout).unwrap();
    assert_eq!(v[0]["vmid"], 201);
    assert_eq!(v[0]["registered"], true);
    assert_eq!(v[0]["problems"].as_array().unwrap().len(), 0);
    assert_eq!(v[1]["registered"], false);
    // A delivery shows up as the last one.
    let agent_root = sim.path("guests/201");
    let g = FakeGuest::start(&agent_root, "");
    std::os::unix::fs::symlink(g.socket(), sim.path("qga/201.qga")).unwrap();
    sim.phx(&["inject", "201"]).assert_code(0);
    let v: serde_json::Value =
        serde_json::from_str(&sim.phx(&["status", "--json"]).stdout).unwrap();
    assert_eq!(v[0]["last_delivery"]["outcome"], "ok");
    assert_eq!(v[0]["last_delivery"]["files"], 2);
    sim.phx(&["register", "301"]).assert_code(0);
    sim.phx(&["status"]).assert_code(0);

    let r = sim.phx(&["doctor"]);
    r.assert_code(0)
        .assert_contains("ok    snippet sim:snippets/phx-hook present")
        .assert_contains("ok    vault")
        .assert_contains("warn  signature policy")
        .assert_contains("ok    manifest 201 valid")
        .assert_contains("ok    audit log hash chain intact");
    // Break things: each check names the fix.
    fs::set_permissions(sim.path("host.key"), fs::Permissions::from_mode(0o644)).unwrap();
    sim.vm(201, "agent: 0\nhookscript: sim:snippets/phx-hook\n");
    let audit = sim.audit().replacen("\"ok\"", "\"OK\"", 1);
    fs::write(sim.path("audit.jsonl"), audit).unwrap();
    let r = sim.phx(&["doctor"]);
    r.assert_code(1)
        .assert_contains("FAIL  host key")
        .assert_contains("chmod 600")
        .assert_contains("FAIL  manifest 201")
        .assert_contains("FAIL  audit log hash chain intact");
    sim.phx(&["status"])
        .assert_code(1)
        .assert_contains("guest agent not enabled");
}
