//! `storage: ram` (issue 14): a RAM-only file's bytes live on a RAM-backed filesystem in
//! the guest and its destination is a link to them, so nothing of it reaches a guest's
//! disk (and so its backups, snapshots, replicas and clones). Against real containers
//! (both transports, privileged and idmapped), and guests that try to trick phx-hook
//! into writing to a disk.

use std::fs;

use crate::guests::*;
use crate::lxc::{ct_node_with, run};

fn tag() -> String {
    format!("{:x}", std::process::id())
}

/// The RAM-only value, and a disk value (the control: the search must find it).
fn values() -> (String, String) {
    (
        format!("RAM-ONLY-{}-value", tag()),
        format!("ON-DISK-{}-value", tag()),
    )
}

fn vault() -> String {
    let (ram, disk) = values();
    format!(r#"{{"app": {{"api_token": "{ram}", "db_password": "{disk}"}}}}"#)
}

const MANIFEST: &str = "guest: lxc
storage: ram
files:
  - {dest: /etc/app/token, key: app/api_token, owner: app, mode: \"0440\"}
  - {dest: /etc/app/db, key: app/db_password, storage: disk}
";

#[test]
fn ram_only_files_never_reach_a_container_disk() {
    let cts = Containers::start();
    let (ram, disk) = values();
    for (id, transport) in [(PRIV, "native"), (IDMAPPED, "pct")] {
        cts.tmpfs_run(id);
        let n = ct_node_with(&cts, MANIFEST, transport, "", &vault());
        let r = run(&n, &cts, &["inject", &id.to_string()]);
        r.assert_code(0).assert_contains("2 of 2 files delivered");
        // The application reads the destination; it is a link into /run/phx-hook, whose
        // file has the manifest's owner and mode; the directory can be entered, not listed.
        let out = cts.output(
            id,
            "cat /etc/app/token; echo; t=$(readlink /etc/app/token); echo $t; stat -c '%a %u' \"$t\" /run/phx-hook",
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], ram, "{transport}: {out}");
        assert!(
            lines[1].starts_with("/run/phx-hook/") && lines[1].ends_with("-token"),
            "{out}"
        );
        assert_eq!(&lines[2..], ["440 1000", "711 0"], "{transport}: {out}");
        // Stopped: the container's whole disk holds the disk file's value, and never the
        // RAM-only one.
        cts.stop(id);
        let root = cts.rootfs(id);
        assert!(
            !holders(&root, disk.as_bytes()).is_empty(),
            "the search cannot find the control"
        );
        assert_eq!(
            holders(&root, ram.as_bytes()),
            Vec::<String>::new(),
            "{transport}"
        );
        assert!(
            fs::symlink_metadata(root.join("etc/app/token"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}

/// A guest whose /run is on its disk, or that makes /run/phx-hook lead to its disk (a
/// link, a bind mount): the RAM-only file is refused, with the fix, and nothing of it is
/// written.
#[test]
fn a_guest_cannot_make_a_ram_only_file_land_on_disk() {
    let cts = Containers::start();
    let (ram, _) = values();
    let manifest =
        "guest: lxc\nstorage: ram\nfiles:\n  - {dest: /etc/app/token, key: app/api_token}\n";
    // /run on the container's disk (busybox init mounts nothing there).
    for (id, transport) in [(PRIV, "native"), (IDMAPPED, "pct")] {
        let n = ct_node_with(&cts, manifest, transport, "", &vault());
        run(&n, &cts, &["inject", &id.to_string()])
            .assert_code(1)
            .assert_contains("not on a RAM-backed filesystem")
            .assert_contains("mount a tmpfs");
        assert_eq!(
            holders(&cts.rootfs(id), ram.as_bytes()),
            Vec::<String>::new(),
            "{transport}"
        );
        assert!(!cts.path(id, "/etc/app/token").exists());
    }
    // A tmpfs /run, but the container's root points /run/phx-hook at its disk: by a
    // link, then by a bind mount.
    for (id, transport) in [(PRIV, "native"), (IDMAPPED, "pct")] {
        cts.tmpfs_run(id);
        let n = ct_node_with(&cts, manifest, transport, "", &vault());
        cts.attach(id, "mkdir -p /var/trap && ln -s /var/trap /run/phx-hook");
        run(&n, &cts, &["inject", &id.to_string()])
            .assert_code(1)
            .assert_contains("not on a RAM-backed filesystem");
        cts.attach(
            id,
            "rm /run/phx-hook && mkdir /run/phx-hook && mount -o bind /var/trap /run/phx-hook",
        );
        run(&n, &cts, &["inject", &id.to_string()])
            .assert_code(1)
            .assert_contains("not on a RAM-backed filesystem");
        assert_eq!(
            holders(&cts.rootfs(id), ram.as_bytes()),
            Vec::<String>::new(),
            "{transport}"
        );
        assert_eq!(
            fs::read_dir(cts.path(id, "/var/trap")).unwrap().count(),
            0,
            "{transport}"
        );
        // Without the trap it works.
        cts.attach(id, "umount /run/phx-hook");
        run(&n, &cts, &["inject", &id.to_string()]).assert_code(0);
    }
}

/// Through the real guest agent: a guest whose /run/phx-hook is not RAM-backed refuses
/// RAM-only files; one whose is gets them, the destination a link.
#[test]
fn through_the_agent_ram_only_files_go_to_ram_or_nowhere() {
    use phx_hook::deliver::qga::QgaTransport;
    let (ram, disk) = values();
    let manifest = "guest: qemu\nfiles:\n  - {dest: /etc/app/token, key: app/api_token, storage: ram}\n  - {dest: /etc/app/db, key: app/db_password}\n";
    // /run on the host's disk.
    let t = tempfile::tempdir().unwrap();
    let g = FakeGuest::start(&t.path().join("g"), "");
    let n = crate::qga::vm_node(&g.socket(), manifest, vault().as_bytes());
    n.run(&["inject", "201"])
        .assert_code(1)
        .assert_contains("1 of 2 files delivered")
        .assert_contains("not on a RAM-backed filesystem");
    assert!(!g.path("/etc/app/token").exists());
    assert_eq!(holders(&g.path("/"), ram.as_bytes()), Vec::<String>::new());
    // A tmpfs there.
    let t = tempfile::tempdir().unwrap();
    let g = FakeGuest::start_with(&t.path().join("g"), "", &[("PHX_RAM_DIR", "1")]);
    let n = crate::qga::vm_node(&g.socket(), manifest, vault().as_bytes());
    n.run(&["inject", "201"])
        .assert_code(0)
        .assert_contains("2 of 2 files delivered");
    assert!(
        fs::symlink_metadata(g.path("/etc/app/token"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        holders(&g.path("/"), ram.as_bytes()),
        Vec::<String>::new(),
        "in the guest's disk"
    );
    // The control: the same search finds the disk file's value.
    assert!(!holders(&g.path("/"), disk.as_bytes()).is_empty());
    let mut agent = QgaTransport::new(
        "201".parse().unwrap(),
        g.socket(),
        std::time::Duration::from_secs(5),
    );
    let (_, out) = agent
        .capture(&["/bin/cat".into(), "/etc/app/token".into()])
        .unwrap();
    assert_eq!(out, ram.as_bytes());
}
