//! Delivery into real LXC containers, privileged and idmapped, through both transports:
//! `pct` (a stand-in keeping real pct's contract, working on the real containers) and
//! `native` (the container's namespaces entered from a forked child).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use crate::guests::*;
use crate::util::*;

/// Values only these tests use, so a host-disk scan cannot be confused by other tests.
fn tag() -> String {
    format!("{:x}", std::process::id())
}

fn lxc_vault() -> String {
    let tag = tag();
    format!(
        r#"{{"samba": {{"password": "CT-SMB-{tag}-secret"}}, "app": {{"db_password": "CT-DB-{tag}-secret", "api_token": "CT-TOKEN-{tag}-secret"}}, "kerberos": {{"keytab": "S0VZVEFCLVNFQ1JFVC1iaW5hcnkA/w=="}}, "big": {{"blob": "{}"}}}}"#,
        "B".repeat(16 * 1024)
    )
}

fn needles() -> Vec<String> {
    let tag = tag();
    vec![
        format!("CT-SMB-{tag}-secret"),
        format!("CT-DB-{tag}-secret"),
        format!("CT-TOKEN-{tag}-secret"),
    ]
}

const CT_MANIFEST: &str = "guest: lxc
files:
  - {dest: /etc/samba/phoenix.secret, key: samba/password}
  - {dest: /etc/app/app.env, format: env, vars: {DATABASE_PASS: app/db_password, API_TOKEN: app/api_token}, mode: \"0640\", owner: root, group: app}
  - {dest: /etc/app/app.json, format: json, vars: {db: app/db_password}, owner: app, group: 1000}
  - {dest: /etc/app/app.conf, template: templates/app.conf.tmpl, owner: 1000}
  - {dest: /etc/krb5.keytab, key: kerberos/keytab, decode: base64}
  - {dest: /srv/deep/new/dirs/secret, key: app/api_token, mode: \"0400\"}
after:
  - [touch, /tmp/after-ran]
";

/// A node for containers 301/302 with `transport`.
fn ct_node(cts: &Containers, manifest: &str, transport: &str, extra: &str) -> Node {
    ct_node_with(cts, manifest, transport, extra, &lxc_vault())
}

/// [`ct_node`] with a vault of one's own.
pub fn ct_node_with(
    cts: &Containers,
    manifest: &str,
    transport: &str,
    extra: &str,
    vault_json: &str,
) -> Node {
    let k = keys();
    let n = Node::new();
    n.host_key(&k.secret("ed", true));
    n.vault(&k.encrypt(vault_json.as_bytes(), &["ed"], false, None, &[]));
    n.write("manifests/templates/app.conf.tmpl", TEMPLATE.as_bytes());
    n.manifest(PRIV, manifest);
    n.manifest(IDMAPPED, manifest);
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts");
    n.config(&format!(
        "  lxc_transport: {transport}\n  pct: {scripts}/pct\n  lxc_info: {scripts}/lxc-info\n  lxc_attach: {scripts}/lxc-attach\n  lock_dir_lxc: {}\n{extra}",
        cts.lock_dir().display()
    ));
    n
}

pub fn run(n: &Node, cts: &Containers, args: &[&str]) -> Run {
    let env = cts.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    n.run_env(args, &env)
}

/// The host uid of container uid `n`.
fn host_id(ct: u32, n: u32) -> u32 {
    if ct == IDMAPPED { 100_000 + n } else { n }
}

#[test]
fn delivers_into_privileged_and_idmapped_containers_with_both_transports() {
    let cts = Containers::start();
    for ct in [PRIV, IDMAPPED] {
        // An existing world-readable file, owned by container root.
        let old = cts.path(ct, "/etc/samba/phoenix.secret");
        fs::create_dir_all(old.parent().unwrap()).unwrap();
        fs::write(&old, "old\n").unwrap();
        fs::set_permissions(&old, fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&old, Some(host_id(ct, 0)), Some(host_id(ct, 0))).unwrap();
        std::os::unix::fs::chown(
            old.parent().unwrap(),
            Some(host_id(ct, 0)),
            Some(host_id(ct, 0)),
        )
        .unwrap();
    }
    let needles = needles();
    let needle_refs: Vec<&str> = needles.iter().map(String::as_str).collect();
    for transport in ["pct", "native"] {
        let n = ct_node(&cts, CT_MANIFEST, transport, "");
        for ct in [PRIV, IDMAPPED] {
            let calls_before = cts.pct_calls().len();
            let id = ct.to_string();
            let ((r, argv_hits), disk_hits) = watch_disk(
                &["/tmp", "/run"],
                &containers_parent(),
                &needle_refs,
                || watch_argv(&needle_refs, || run(&n, &cts, &["inject", &id])),
            );
            r.assert_code(0)
                .assert_contains(&format!("6 of 6 files delivered through {transport}"));
            assert!(
                argv_hits.is_empty(),
                "{transport} {ct}: a value in argv: {argv_hits:?}"
            );
            assert!(
                disk_hits.is_empty(),
                "{transport} {ct}: a value on the host disk: {disk_hits:?}"
            );
            for v in &needles {
                r.assert_lacks(v);
            }
            let tag = tag();
            let read = |p: &str| fs::read(cts.path(ct, p)).unwrap();
            let meta = |p: &str| fs::metadata(cts.path(ct, p)).unwrap();
            let ids = |p: &str| {
                let m = meta(p);
                (m.mode() & 0o7777, m.uid(), m.gid())
            };
            assert_eq!(
                read("/etc/samba/phoenix.secret"),
                format!("CT-SMB-{tag}-secret").as_bytes()
            );
            assert_eq!(
                ids("/etc/samba/phoenix.secret"),
                (0o600, host_id(ct, 0), host_id(ct, 0)),
                "{transport} {ct}"
            );
            assert_eq!(
                read("/etc/app/app.env"),
                format!("API_TOKEN=CT-TOKEN-{tag}-secret\nDATABASE_PASS=CT-DB-{tag}-secret\n")
                    .as_bytes()
            );
            assert_eq!(
                ids("/etc/app/app.env"),
                (0o640, host_id(ct, 0), host_id(ct, 1000)),
                "{transport} {ct}"
            );
            assert_eq!(
                ids("/etc/app/app.json"),
                (0o600, host_id(ct, 1000), host_id(ct, 1000))
            );
            assert_eq!(meta("/etc/app/app.conf").uid(), host_id(ct, 1000));
            assert_eq!(
                read("/etc/app/app.conf"),
                format!("[db]\npassword = CT-DB-{tag}-secret\ntoken=CT-TOKEN-{tag}-secret\n")
                    .as_bytes()
            );
            assert_eq!(read("/etc/krb5.keytab"), b"KEYTAB-SECRET-binary\0\xff");
            assert_eq!(ids("/srv/deep/new/dirs/secret").0, 0o400);
            assert_eq!(
                ids("/srv/deep/new"),
                (0o755, host_id(ct, 0), host_id(ct, 0))
            );
            assert!(
                cts.path(ct, "/tmp/after-ran").exists(),
                "{transport} {ct}: the after command did not run"
            );
            fs::remove_file(cts.path(ct, "/tmp/after-ran")).unwrap();
            assert_eq!(
                temporaries(&cts.rootfs(ct)),
                Vec::<std::path::PathBuf>::new()
            );
            if transport == "pct" {
                // One exec to prepare, one push per file, one exec to commit, one exec per after.
                let calls = &cts.pct_calls()[calls_before..];
                let pushes = calls.iter().filter(|c| c.starts_with("push")).count();
                let execs = calls.iter().filter(|c| c.starts_with("exec")).count();
                assert_eq!((pushes, execs), (6, 3), "{calls:?}");
            }
            fs::remove_file(cts.path(ct, "/etc/krb5.keytab")).unwrap();
        }
    }
}

#[test]
fn symlinks_planted_by_the_container_never_reach_the_host() {
    let cts = Containers::start();
    let host = tempfile::tempdir().unwrap();
    let victim = host.path().join("victim");
    let victim_dir = host.path().join("victim-dir");
    fs::write(&victim, "ORIGINAL-HOST-CONTENT").unwrap();
    fs::create_dir(&victim_dir).unwrap();
    let manifest = "guest: lxc\nfiles:\n  - {dest: /etc/app/secret, key: samba/password}\n  - {dest: /etc/app2/secret, key: samba/password}\n";
    for transport in ["pct", "native"] {
        let n = ct_node(&cts, manifest, transport, "");
        for ct in [PRIV, IDMAPPED] {
            // /etc/app/secret -> <host file>; /etc/app2 -> <host dir> (which the container
            // also has, so the link resolves inside it).
            cts.attach(
                ct,
                &format!(
                    "rm -rf /etc/app /etc/app2; mkdir -p /etc/app {vd}; ln -s {v} /etc/app/secret; ln -s {vd} /etc/app2",
                    v = victim.display(),
                    vd = victim_dir.display()
                ),
            );
            let r = run(&n, &cts, &["inject", &ct.to_string()]);
            if transport == "pct" {
                // The dir link leads through the container's /tmp, which its users can
                // write: `pct push` would resolve that path again, so pct refuses it.
                r.assert_code(1)
                    .assert_contains("1 of 2 files delivered")
                    .assert_contains("can be written by users other than root");
            } else {
                r.assert_code(0);
            }
            assert_eq!(
                fs::read_to_string(&victim).unwrap(),
                "ORIGINAL-HOST-CONTENT",
                "{transport} {ct}"
            );
            assert_eq!(
                fs::read_dir(&victim_dir).unwrap().count(),
                0,
                "{transport} {ct}: a file appeared in the host dir"
            );
            // Inside the container the link was replaced by the file; the dir link's target
            // (inside the container) got the file.
            let inside = cts.path(ct, "/etc/app/secret");
            assert!(fs::symlink_metadata(&inside).unwrap().is_file());
            assert_eq!(
                cts.path(ct, &format!("{}/secret", victim_dir.display()))
                    .is_file(),
                transport == "native"
            );
        }
    }
}

#[test]
fn bad_destinations_stopped_containers_and_missing_sh() {
    let cts = Containers::start();
    // Parent is a file; a read-only directory.
    cts.attach(
        PRIV,
        "echo x > /etc/afile; mkdir -p /etc/ro && mount -t tmpfs -o ro tmpfs /etc/ro",
    );
    let manifest = "guest: lxc\nfiles:\n  - {dest: /etc/afile/secret, key: samba/password}\n  - {dest: /etc/ro/secret, key: samba/password}\n  - {dest: /etc/fine, key: samba/password}\n";
    for transport in ["pct", "native"] {
        let n = ct_node(&cts, manifest, transport, "");
        let r = run(&n, &cts, &["inject", "301"]);
        r.assert_code(1).assert_contains("1 of 3 files delivered");
        r.assert_contains("/etc/afile/secret (")
            .assert_contains("/etc/ro/secret (");
        assert!(
            r.stderr.contains("not a directory") || r.stderr.contains("Not a directory"),
            "{transport}: {}",
            r.stderr
        );
        assert!(cts.path(PRIV, "/etc/fine").is_file());
        fs::remove_file(cts.path(PRIV, "/etc/fine")).unwrap();
    }
    // A container without /bin/sh: the pct transport says so; native needs no shell.
    fs::remove_file(cts.path(IDMAPPED, "/bin/sh")).unwrap();
    let manifest = "guest: lxc\nfiles:\n  - {dest: /etc/x, key: samba/password}\n";
    let n = ct_node(&cts, manifest, "pct", "");
    run(&n, &cts, &["inject", "302"])
        .assert_code(1)
        .assert_contains("no usable /bin/sh");
    assert!(!cts.path(IDMAPPED, "/etc/x").exists());
    let n = ct_node(&cts, manifest, "native", "");
    run(&n, &cts, &["inject", "302"]).assert_code(0);
    assert!(cts.path(IDMAPPED, "/etc/x").exists());
    fs::remove_file(cts.path(IDMAPPED, "/etc/x")).unwrap();
    // Stopped: a clear error, nothing written.
    cts.stop(IDMAPPED);
    for transport in ["pct", "native"] {
        let n = ct_node(&cts, manifest, transport, "");
        run(&n, &cts, &["inject", "302"])
            .assert_code(1)
            .assert_contains("not running");
        assert!(!cts.path(IDMAPPED, "/etc/x").exists());
    }
}

#[test]
fn pct_push_that_fails_but_exits_0_fails_the_delivery_and_the_lock_is_waited_for() {
    let cts = Containers::start();
    // A 4 KiB filesystem: the 16 KiB value cannot fit; pct push prints an error, exits 0.
    cts.attach(
        PRIV,
        "mkdir -p /etc/full && mount -t tmpfs -o size=4k tmpfs /etc/full",
    );
    let manifest = "guest: lxc\nfiles:\n  - {dest: /etc/full/big, key: big/blob}\n";
    let n = ct_node(&cts, manifest, "pct", "");
    let r = run(&n, &cts, &["inject", "301"]);
    r.assert_code(1).assert_contains("0 of 1 file delivered");
    assert!(!cts.path(PRIV, "/etc/full/big").exists());
    assert_eq!(
        temporaries(&cts.path(PRIV, "/etc/full")),
        Vec::<std::path::PathBuf>::new()
    );

    // The config lock is held (a start task in post-start): delivery waits for it.
    let manifest = "guest: lxc\nfiles:\n  - {dest: /etc/locked, key: samba/password}\n";
    fs::create_dir_all(cts.lock_dir()).unwrap();
    let lock_path = cts.lock_dir().join("pve-config-301.lock");
    let lock = fs::File::create(&lock_path).unwrap();
    lock.lock().unwrap();
    let n = ct_node(&cts, manifest, "pct", "  lock_wait: 1s\n");
    run(&n, &cts, &["inject", "301"])
        .assert_code(1)
        .assert_contains("was still held after 1s");
    assert!(!cts.path(PRIV, "/etc/locked").exists());
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(lock);
    });
    let n = ct_node(&cts, manifest, "pct", "  lock_wait: 20s\n");
    run(&n, &cts, &["inject", "301"]).assert_code(0);
    releaser.join().unwrap();
    assert!(Path::new(&cts.path(PRIV, "/etc/locked")).is_file());
}
