//! Delivery into VMs through the real qemu-ga (confined to a temp dir). What the real
//! agent never does (lies, stalls, floods) is in `hostile_agent`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use crate::guests::*;
use crate::util::*;

const VMID: u32 = 201;

/// A node whose VM 201's agent socket is `socket`.
pub fn vm_node(socket: &std::path::Path, manifest: &str, vault_json: &[u8]) -> Node {
    let k = keys();
    let n = Node::new();
    n.host_key(&k.secret("ed", true));
    n.vault(&k.encrypt(vault_json, &["ed"], false, None, &[]));
    n.write("manifests/templates/app.conf.tmpl", TEMPLATE.as_bytes());
    n.manifest(VMID, manifest);
    n.write(&format!("pve/qemu-server/{VMID}.conf"), b"agent: 1\n");
    fs::create_dir_all(n.path("qga")).unwrap();
    std::os::unix::fs::symlink(socket, n.path(&format!("qga/{VMID}.qga"))).unwrap();
    n.config(&format!(
        "  qga_socket_dir: {}\nagent:\n  timeout: 3s\n",
        n.path("qga").display()
    ));
    n
}

const BIG_LEN: usize = 5 * 1024 * 1024;

fn big_value() -> String {
    let mut s = String::with_capacity(BIG_LEN);
    let mut i = 0u32;
    while s.len() < BIG_LEN {
        s.push_str(&format!("BIG{i:08x}"));
        i += 1;
    }
    s.truncate(BIG_LEN);
    s
}

fn vm_vault() -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_str(VAULT_JSON).unwrap();
    v["big"] = serde_json::Value::String(big_value());
    serde_json::to_vec(&v).unwrap()
}

const VM_MANIFEST: &str = "guest: qemu
files:
  - {dest: /etc/samba/phoenix.secret, key: samba/password}
  - {dest: /etc/app/app.env, format: env, vars: {DATABASE_PASS: app/db_password, API_TOKEN: app/api_token}, mode: \"0640\", owner: root, group: app}
  - {dest: /etc/app/app.json, format: json, vars: {db: app/db_password}, owner: app, group: 1000}
  - {dest: /etc/app/app.conf, template: templates/app.conf.tmpl, owner: 1000}
  - {dest: /etc/krb5.keytab, key: kerberos/keytab, decode: base64}
  - {dest: /srv/deep/new/dirs/secret, key: app/api_token, mode: \"0400\"}
  - {dest: /var/lib/big.blob, key: big}
after:
  - [touch, /run/after-ran]
";

#[test]
fn delivers_every_format_into_the_real_agent() {
    let tmp = tempfile::tempdir().unwrap();
    let g = FakeGuest::start(&tmp.path().join("vm"), "");
    // An existing, world-readable file that must be replaced by the manifest's mode.
    fs::create_dir_all(g.path("/etc/samba")).unwrap();
    fs::write(g.path("/etc/samba/phoenix.secret"), "old content\n").unwrap();
    fs::set_permissions(
        g.path("/etc/samba/phoenix.secret"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let n = vm_node(&g.socket(), VM_MANIFEST, &vm_vault());

    let mut needles: Vec<&str> = SECRET_VALUES.to_vec();
    let big = big_value();
    needles.push(&big[..64]);
    let (r, argv_hits) = watch_argv(&needles, || n.run(&["inject", "201"]));
    r.assert_code(0)
        .assert_contains("7 of 7 files delivered through qga")
        .assert_contains("/etc/samba/phoenix.secret (17 bytes): ok, verified by sha256")
        .assert_contains("after: touch /run/after-ran: ok");
    assert!(
        argv_hits.is_empty(),
        "a secret was in a process's argv: {argv_hits:?}"
    );
    for v in &needles {
        r.assert_lacks(v);
    }

    let read = |p: &str| fs::read(g.path(p)).unwrap();
    let meta = |p: &str| fs::metadata(g.path(p)).unwrap();
    assert_eq!(read("/etc/samba/phoenix.secret"), b"SMB-SECRET-7f3a9c");
    assert_eq!(meta("/etc/samba/phoenix.secret").mode() & 0o7777, 0o600);
    assert_eq!(
        read("/etc/app/app.env"),
        b"API_TOKEN=TOKEN-SECRET-c0ffee\nDATABASE_PASS=DB-SECRET-41b2e8\n"
    );
    let m = meta("/etc/app/app.env");
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o640, 0, 1000));
    let j: serde_json::Value = serde_json::from_slice(&read("/etc/app/app.json")).unwrap();
    assert_eq!(j["db"], "DB-SECRET-41b2e8");
    let m = meta("/etc/app/app.json");
    assert_eq!((m.uid(), m.gid()), (1000, 1000));
    assert_eq!(
        read("/etc/app/app.conf"),
        b"[db]\npassword = DB-SECRET-41b2e8\ntoken=TOKEN-SECRET-c0ffee\n"
    );
    assert_eq!(meta("/etc/app/app.conf").uid(), 1000);
    assert_eq!(read("/etc/krb5.keytab"), b"KEYTAB-SECRET-binary\0\xff");
    assert_eq!(meta("/srv/deep/new/dirs/secret").mode() & 0o7777, 0o400);
    assert_eq!(
        meta("/srv/deep/new").mode() & 0o7777,
        0o755,
        "new parents are 0755"
    );
    assert_eq!(read("/var/lib/big.blob").len(), BIG_LEN);
    assert!(read("/var/lib/big.blob") == big.as_bytes());
    assert!(g.path("/run/after-ran").exists());
    assert_eq!(temporaries(&g.root), Vec::<std::path::PathBuf>::new());

    // The agent logs every guest-exec argv: no value may be there.
    let log = g.log();
    assert!(
        log.contains("guest-exec called"),
        "the agent log is empty: {log}"
    );
    for v in &needles {
        assert!(!log.contains(v), "the agent log holds a value");
    }
    // The audit log: one line per decrypt, file and command; names, not values.
    let audit = fs::read_to_string(n.path("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 1 + 7 + 1, "{audit}");
    assert!(audit.contains("\"dest\":\"/etc/app/app.env\""));
    for v in &needles {
        assert!(!audit.contains(v));
    }
    // A second run replaces everything again (idempotent), leaving no temporaries.
    n.run(&["inject", "201"]).assert_code(0);
    assert_eq!(temporaries(&g.root), Vec::<std::path::PathBuf>::new());
}

#[test]
fn a_bad_owner_fails_that_file_only_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let g = FakeGuest::start(&tmp.path().join("vm"), "");
    let manifest = "guest: qemu\nfiles:\n  - {dest: /etc/a, key: samba/password, owner: nosuchuser}\n  - {dest: /etc/b, key: samba/password}\nafter:\n  - [touch, /run/after-ran]\n";
    let n = vm_node(&g.socket(), manifest, VAULT_JSON.as_bytes());
    let r = n.run(&["inject", "201"]);
    r.assert_code(1)
        .assert_contains("/etc/a (17 bytes): FAILED: cannot set owner nosuchuser:root")
        .assert_contains("1 of 2 files");
    r.assert_contains("after-command(s) not run");
    assert!(!g.path("/etc/a").exists());
    assert_eq!(fs::read(g.path("/etc/b")).unwrap(), b"SMB-SECRET-7f3a9c");
    assert!(!g.path("/run/after-ran").exists());
    assert_eq!(temporaries(&g.root), Vec::<std::path::PathBuf>::new());
    let audit = fs::read_to_string(n.path("audit.jsonl")).unwrap();
    assert!(audit.contains("\"outcome\":\"failed\""));
}

#[test]
fn a_failing_after_command_is_reported_and_files_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let g = FakeGuest::start(&tmp.path().join("vm"), "");
    let manifest =
        "guest: qemu\nfiles:\n  - {dest: /etc/a, key: samba/password}\nafter:\n  - [\"false\"]\n";
    let n = vm_node(&g.socket(), manifest, VAULT_JSON.as_bytes());
    n.run(&["inject", "201"])
        .assert_code(1)
        .assert_contains("after: false: FAILED (exit 1); the delivered files stay in place");
    assert_eq!(fs::read(g.path("/etc/a")).unwrap(), b"SMB-SECRET-7f3a9c");
}

#[test]
fn agent_that_forbids_exec() {
    let tmp = tempfile::tempdir().unwrap();
    let g = FakeGuest::start(&tmp.path().join("vm"), ",guest-exec,guest-exec-status");
    let n = vm_node(&g.socket(), VM_MANIFEST, &vm_vault());
    let r = n.run(&["inject", "201"]);
    r.assert_code(1)
        .assert_contains("forbids guest-exec")
        .assert_contains("0 of 7 files");
    assert!(!g.path("/etc/samba/phoenix.secret").exists());
    assert!(!g.path("/etc/app").exists());
}

#[test]
fn agent_not_running_fails_within_the_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let n = vm_node(
        &tmp.path().join("nothing.sock"),
        "guest: qemu\nfiles:\n  - {dest: /etc/a, key: samba/password}\n",
        VAULT_JSON.as_bytes(),
    );
    let start = Instant::now();
    n.run(&["inject", "201"])
        .assert_code(1)
        .assert_contains("agent not running or not enabled for VM 201");
    let r = n.run(&["inject", "201", "--wait", "1"]);
    r.assert_code(1)
        .assert_contains("did not answer within 1s")
        .assert_contains("agent not running or not enabled for VM 201");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn wait_succeeds_once_the_agent_comes_up() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("vm");
    let n = vm_node(
        &root.join("run/qga.sock"),
        "guest: qemu\nfiles:\n  - {dest: /etc/a, key: samba/password}\n",
        VAULT_JSON.as_bytes(),
    );
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        FakeGuest::start(&root, "")
    });
    let r = n.run(&["inject", "201", "--wait", "30"]);
    let g = starter.join().unwrap();
    r.assert_code(0)
        .assert_contains("the guest agent answered after");
    assert_eq!(fs::read(g.path("/etc/a")).unwrap(), b"SMB-SECRET-7f3a9c");
}
