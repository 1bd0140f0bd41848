//! A Proxmox cluster's node (issue 15): phx-hook's files in /etc/pve by default, so a
//! guest that HA or a migration moves to another node gets its secrets there; pmxcfs's
//! rules (1 MiB per file, no quorum = read-only); a registered guest without a manifest
//! on this node does not start without its secrets.

use std::fs;

use crate::sim::*;
use crate::util::*;

const VM201: &str = "guest: qemu\nfiles:\n  - {dest: /run/secrets/smb, key: samba/password}\n";

/// A read-only bind mount of a directory onto itself, undone on drop: /etc/pve as pmxcfs
/// shows it to a node without quorum.
struct ReadOnly(std::path::PathBuf);

impl ReadOnly {
    fn new(dir: std::path::PathBuf) -> ReadOnly {
        sh(std::process::Command::new("mount")
            .arg("--bind")
            .arg(&dir)
            .arg(&dir));
        sh(std::process::Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(&dir));
        ReadOnly(dir)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The guest's config was moved to this node's directory (as HA recovery and migration
/// do); with the cluster-wide defaults, the config file names nothing but Proxmox's
/// paths, and the start on this node delivers.
#[test]
fn a_guest_moved_to_another_node_gets_its_secrets_there() {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    sim.vm(201, "agent: 1\n");
    sim.node.manifest(201, VM201);
    sim.phx(&["register", "201"]).assert_code(0);
    sim.make_cluster("pve2");
    // A node that joins has no snippet on node-local storage; the package's postinst
    // runs `register --node`, which puts it there and changes no guest.
    let snippet = sim.path("storage/snippets/phx-hook");
    fs::remove_file(&snippet).unwrap();
    let conf_before = sim.conf("qemu-server", 201);
    sim.phx(&["register", "--node"])
        .assert_code(0)
        .assert_contains("sim: snippet");
    assert!(fs::read_to_string(&snippet).unwrap().contains(BIN));
    assert_eq!(sim.conf("qemu-server", 201), conf_before);
    let agent = LateAgent::install_after(&sim, 201, 0);
    let r = sim.phx(&["check"]);
    r.assert_code(0);
    let st: serde_json::Value =
        serde_json::from_str(&sim.phx(&["status", "--json"]).stdout).unwrap();
    assert_eq!(st[0]["node"], "pve2", "{st}");
    sim.tool("qm", &["start", "201"]).assert_code(0);
    sim.eventually(30, "the delivery", || {
        fs::read(agent.path("/run/secrets/smb")).is_ok_and(|v| v == b"SMB-SECRET-7f3a9c")
    });
    // doctor says where things are, and what the cluster looks like.
    let d = sim.phx(&["doctor"]);
    d.assert_contains("cluster-wide")
        .assert_contains("pve2")
        .assert_contains("priv/phx-hook/host.key");
}

/// pmxcfs holds at most 1 MiB per file: a `vault set` that would outgrow it is refused
/// before anything is written.
#[test]
fn a_vault_too_large_for_pmxcfs_is_refused_before_writing() {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    sim.make_cluster("pve1");
    sim.node
        .write("pve/phx-hook/recipients.asc", &keys().public(&["ed"]));
    let vault = sim.path("pve/phx-hook/secrets.json.gpg");
    let before = fs::read(&vault).unwrap();
    // Letters that do not compress: the encrypted vault grows past 1 MiB.
    let mut x: u32 = 1;
    let big: String = (0..2_500_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from(b'a' + ((x >> 16) % 26) as u8)
        })
        .collect();
    let r = sim.phx_stdin(&["vault", "set", "big/blob", "--host"], big.as_bytes());
    r.assert_code(1)
        .assert_contains("pmxcfs holds at most 1048576 bytes")
        .assert_contains("nothing was written");
    assert_eq!(fs::read(&vault).unwrap(), before);
    // A normal value fits.
    sim.phx_stdin(&["vault", "set", "small/one", "--host"], b"fits")
        .assert_code(0);
}

/// Without quorum /etc/pve is read-only and Proxmox starts no guest (its start API checks
/// quorum first). What runs anyway still works with reads only: a reconcile pass repairs a
/// running guest, and its audit lines go to the node-local log, saying why.
#[test]
fn without_quorum_running_guests_are_kept_and_the_audit_goes_local() {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    sim.vm(201, "agent: 1\n");
    sim.vm(202, "agent: 1\n");
    sim.node.manifest(201, VM201);
    sim.node.manifest(202, VM201);
    sim.phx(&["register", "201", "202"]).assert_code(0);
    sim.make_cluster("pve1");
    let d = sim.node.dir.path().display().to_string();
    let cfg = fs::read_to_string(sim.path("phx-hook.yaml")).unwrap();
    let cfg = cfg.replace(
        &format!("audit_log: {d}/audit.jsonl\n"),
        &format!(
            "audit_log: {d}/pve/phx-hook/audit.jsonl\naudit_fallback: {d}/audit-local.jsonl\n"
        ),
    );
    sim.node.write("phx-hook.yaml", cfg.as_bytes());
    let agent = LateAgent::install_after(&sim, 201, 0);
    sim.tool("qm", &["start", "201"]).assert_code(0);
    sim.eventually(30, "the delivery", || {
        agent.path("/run/secrets/smb").exists()
    });
    sim.workers_done();
    assert!(
        fs::read_to_string(sim.path("pve/phx-hook/audit.jsonl"))
            .unwrap()
            .contains("\"deliver\"")
    );
    sim.node
        .write("pve/phx-hook/recipients.asc", &keys().public(&["ed"]));
    let _ro = ReadOnly::new(sim.path("pve"));
    // Proxmox refuses to start a guest.
    sim.tool("qm", &["start", "202"])
        .assert_code(255)
        .assert_contains("no quorum");
    // A secret removed in the running guest comes back.
    fs::remove_file(agent.path("/run/secrets/smb")).unwrap();
    let r = sim.phx(&["reconcile", "--vmid", "201"]);
    r.assert_code(0)
        .assert_contains("cannot write the audit log");
    assert_eq!(
        fs::read(agent.path("/run/secrets/smb")).unwrap(),
        b"SMB-SECRET-7f3a9c"
    );
    let local = fs::read_to_string(sim.path("audit-local.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(local.lines().last().unwrap()).unwrap();
    assert!(
        line["audit_fallback"]
            .as_str()
            .unwrap()
            .contains("pve/phx-hook/audit.jsonl"),
        "{line}"
    );
    assert!(local.contains("\"reason\":\"drift\""), "{local}");
    // Writing the vault says why it cannot.
    sim.phx_stdin(&["vault", "set", "x/y", "--host"], b"v")
        .assert_code(1)
        .assert_contains("read-only");
}
