//! Early delivery for containers (issue 14): `register --early` adds phx-hook's
//! `lxc.hook.mount` to the container's Proxmox config; the simulated `pct start` writes
//! the LXC config from it as pve-container's `update_lxc_config` does, runs pre-start
//! (which stages the files in host RAM), and real LXC runs the hook in the container's
//! namespaces before its init. Real busybox containers, privileged and idmapped.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::guests::*;
use crate::sim::SimNode;
use crate::util::*;

const MANIFEST: &str = "guest: lxc
storage: ram
files:
  - {dest: /etc/app/token, key: app/api_token, owner: app, mode: \"0440\"}
  - {dest: /etc/app/db, key: app/db_password, storage: disk, mode: \"0600\"}
after:
  - [touch, /after-ran]
";

/// An init that looks at the secret first (its digest, never the value, goes to disk),
/// then becomes busybox's init.
const PROBE_INIT: &str = "#!/bin/sh
if [ -r /etc/app/token ]; then
  echo \"found $(md5sum < /etc/app/token | cut -c1-32) $(stat -f -c %T /run)\" >> /first-look
else
  echo missing >> /first-look
fi
exec /bin/busybox init
";

/// A node for `cts` whose staging directory is in host RAM (`/dev/shm`).
fn sim_for(cts: &Containers, creds: &Path) -> SimNode {
    let sim = SimNode::for_containers(cts, "30s", "5s");
    sim.credentials_dir(creds);
    sim
}

/// A staging root the idmapped container's root may enter (as `/run/phx-hook` is).
fn staging_root() -> tempfile::TempDir {
    let d = tempfile::tempdir_in("/dev/shm").unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o711)).unwrap();
    d
}

/// Make container `id` start through `/sbin/probe-init`.
fn probe_init(cts: &Containers, id: u32) {
    let p = cts.path(id, "/sbin/probe-init");
    fs::write(&p, PROBE_INIT).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    let conf = cts.dir.path().join(format!("{id}/config"));
    let mut text = fs::read_to_string(&conf).unwrap();
    text.push_str("lxc.init.cmd = /sbin/probe-init\n");
    fs::write(&conf, text).unwrap();
}

fn md5(bytes: &[u8]) -> String {
    let out = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)[..32].to_string()
}

fn hook_lines(conf: &str) -> Vec<&str> {
    conf.lines()
        .filter(|l| l.starts_with("lxc.hook.mount"))
        .collect()
}

#[test]
fn containers_hold_their_files_before_init_starts() {
    let cts = Containers::start();
    let creds = staging_root();
    let sim = sim_for(&cts, creds.path());
    for id in [PRIV, IDMAPPED] {
        cts.stop(id);
        probe_init(&cts, id);
        let unpriv = if id == IDMAPPED {
            "unprivileged: 1\n"
        } else {
            ""
        };
        sim.ct(id, &format!("arch: amd64\nhostname: ct{id}\n{unpriv}"));
        sim.node.manifest(id, MANIFEST);
        sim.phx(&["register", &id.to_string(), "--early"])
            .assert_code(0)
            .assert_contains("runs phx-hook's mount hook");
        // Once only, in the main section, naming this binary and the staging directory.
        let conf = sim.conf("lxc", id);
        assert_eq!(hook_lines(&conf).len(), 1, "{conf}");
        assert!(
            hook_lines(&conf)[0].contains(" __lxc-early ")
                && hook_lines(&conf)[0]
                    .contains(&creds.path().join(id.to_string()).display().to_string()),
            "{conf}"
        );
        assert!(conf.contains("hookscript: sim:snippets/phx-hook"), "{conf}");
        sim.phx(&["register", &id.to_string(), "--early"])
            .assert_code(0)
            .assert_contains("already runs");
        assert_eq!(hook_lines(&sim.conf("lxc", id)).len(), 1);

        let r = sim.tool("pct", &["start", &id.to_string()]);
        r.assert_code(0)
            .assert_contains("2 files staged in host RAM for the container's mount hook")
            .assert_contains("2 file(s) delivered by the mount hook");
        // The init found the file, with the right bytes, on the tmpfs the hook gave /run.
        let look = fs::read_to_string(cts.path(id, "/first-look")).unwrap();
        assert_eq!(
            look.trim(),
            format!("found {} tmpfs", md5(b"TOKEN-SECRET-c0ffee")),
            "container {id}"
        );
        let out = cts.output(
            id,
            "readlink /etc/app/token; stat -c '%a %u %g' /etc/app/db; stat -L -c '%a %u' /etc/app/token; cat /etc/app/db; echo; stat -c %a /etc/app",
        );
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("/run/phx-hook/"), "{out}");
        // The directory the hook created can be entered by the file's owner.
        assert_eq!(
            &lines[1..],
            ["600 0 0", "440 1000", "DB-SECRET-41b2e8", "755"],
            "{out}"
        );
        // The staged bundle is gone from the host; the audit names the hook's files.
        assert!(
            !creds.path().join(id.to_string()).exists(),
            "the staging directory outlived the start"
        );
        let by_hook: Vec<_> = sim
            .audit_actions("deliver")
            .into_iter()
            .filter(|v| v["vmid"] == id && v["transport"] == "lxc-mount-hook")
            .collect();
        assert_eq!(by_hook.len(), 2, "{}", sim.audit());
        assert!(by_hook.iter().all(|v| v["outcome"] == "ok"));
        // The worker records the files as in sync and delivers nothing again (so
        // `after` does not run: the services started with their files in place).
        let record_path = sim.path(&format!("run/delivered/{id}.json"));
        sim.eventually(30, "the worker's record", || record_path.exists());
        sim.workers_done();
        let record: serde_json::Value = serde_json::from_slice(
            &fs::read(sim.path(&format!("run/delivered/{id}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(record["state"], "in sync", "{record}");
        assert_eq!(record["files"].as_array().unwrap().len(), 2, "{record}");
        assert!(
            sim.audit_actions("deliver")
                .iter()
                .all(|v| v["vmid"] != id || v["transport"] == "lxc-mount-hook"),
            "the worker delivered again: {}",
            sim.audit()
        );
        assert!(!cts.path(id, "/after-ran").exists());
        leaks(&[&r.all(), &sim.syslog(), &sim.audit()]);
        // Stopped: the RAM-only value is nowhere on the container's disk.
        sim.tool("pct", &["stop", &id.to_string()]).assert_code(0);
        let hits = holders(&cts.rootfs(id), b"TOKEN-SECRET-c0ffee");
        assert!(hits.is_empty(), "on disk: {hits:?}");
        assert!(!holders(&cts.rootfs(id), b"DB-SECRET-41b2e8").is_empty());
        // unregister takes the hook out again, and the next start delivers after start.
        sim.phx(&["unregister", &id.to_string()]).assert_code(0);
        let conf = sim.conf("lxc", id);
        assert!(hook_lines(&conf).is_empty(), "{conf}");
        assert!(!conf.contains("hookscript"), "{conf}");
    }
}

/// A container that planted traps on its rootfs during an earlier run, aimed at the
/// host through `/proc/1/root` (which, before `pivot_root`, is the host's root): the
/// destination's directory a link to the host's `/tmp`, and `/run` a link to the host's
/// `/run`. The first is resolved inside the container (the file lands in the container's
/// own `/tmp`), the second is refused: the start fails, as the plan is required. Nothing
/// is written on the host, and the staged bundle is gone from it either way.
#[test]
fn planted_links_cannot_lead_the_mount_hook_out_of_the_container() {
    let cts = Containers::start();
    let creds = staging_root();
    let sim = sim_for(&cts, creds.path());
    let outside = tempfile::tempdir_in("/tmp").unwrap();
    fs::set_permissions(outside.path(), fs::Permissions::from_mode(0o777)).unwrap();
    for id in [PRIV, IDMAPPED] {
        cts.stop(id);
        let unpriv = if id == IDMAPPED {
            "unprivileged: 1\n"
        } else {
            ""
        };
        sim.ct(id, &format!("arch: amd64\n{unpriv}"));
        sim.node.manifest(
            id,
            "guest: lxc\nfiles:\n  - {dest: /etc/app/token, key: app/api_token}\n",
        );
        sim.phx(&["register", &id.to_string(), "--early"])
            .assert_code(0);
        // Trap 1: the destination's directory leads to the host's /tmp.
        let app = cts.path(id, "/etc/app");
        let _ = fs::remove_dir_all(&app);
        std::os::unix::fs::symlink(format!("/proc/1/root{}", outside.path().display()), &app)
            .unwrap();
        let r = sim.tool("pct", &["start", &id.to_string()]);
        assert_eq!(
            fs::read_dir(outside.path()).unwrap().count(),
            0,
            "container {id}: the hook wrote outside the container: {}",
            r.all()
        );
        r.assert_code(0)
            .assert_contains("1 file(s) delivered by the mount hook");
        let inside = cts.path(id, &format!("{}/token", outside.path().display()));
        assert_eq!(fs::read(&inside).unwrap(), b"TOKEN-SECRET-c0ffee");
        sim.workers_done();
        sim.tool("pct", &["stop", &id.to_string()]).assert_code(0);
        fs::remove_file(&app).unwrap();

        // Trap 2: /etc/passwd leads to the host's (an owner is looked up by name).
        sim.node.manifest(
            id,
            "guest: lxc\nfiles:\n  - {dest: /etc/app/token, key: app/api_token, owner: app}\n",
        );
        let passwd = cts.path(id, "/etc/passwd");
        let kept = fs::read(&passwd).unwrap();
        fs::remove_file(&passwd).unwrap();
        std::os::unix::fs::symlink("/proc/1/root/etc/passwd", &passwd).unwrap();
        let r = sim.tool("pct", &["start", &id.to_string()]);
        r.assert_code(255);
        let last = sim
            .audit_actions("deliver")
            .into_iter()
            .rfind(|v| v["vmid"] == id && v["outcome"] == "failed")
            .unwrap();
        assert!(
            last["error"]
                .as_str()
                .unwrap()
                .contains("the container's /etc/passwd is not a regular file"),
            "{last}"
        );
        fs::remove_file(&passwd).unwrap();
        fs::write(&passwd, kept).unwrap();

        // Trap 3: /run itself is such a link, and a file is to live in RAM.
        sim.node.manifest(
            id,
            "guest: lxc\nstorage: ram\nfiles:\n  - {dest: /etc/app/token, key: app/api_token}\n",
        );
        let run = cts.path(id, "/run");
        let _ = fs::remove_dir_all(&run);
        std::os::unix::fs::symlink("/proc/1/root/run", &run).unwrap();
        let r = sim.tool("pct", &["start", &id.to_string()]);
        r.assert_code(255).assert_contains("startup for container");
        assert!(
            !creds
                .path()
                .join(id.to_string())
                .join("bundle.json")
                .exists(),
            "the bundle outlived the hook"
        );
        // Its report says why: LXC runs post-stop after the failed start, which audits it.
        let errors: Vec<String> = sim
            .audit_actions("deliver")
            .into_iter()
            .filter(|v| v["vmid"] == id && v["outcome"] == "failed")
            .map(|v| v["error"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(errors.len(), 2, "{}", sim.audit());
        assert!(errors[1].contains("/run is a symbolic link"), "{errors:?}");
        assert!(!creds.path().join(id.to_string()).exists());
        fs::remove_file(&run).unwrap();
        fs::create_dir(&run).unwrap();
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}

/// A Debian container with systemd as its init (tests/scripts/build-sd-rootfs.sh, built
/// once and copied), under an lxcpath of its own; stopped and destroyed on drop.
struct SystemdContainer {
    dir: tempfile::TempDir,
}

const SD: u32 = 401;

impl SystemdContainer {
    fn new() -> SystemdContainer {
        let images = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sd");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/scripts/build-sd-rootfs.sh"
        );
        sh(std::process::Command::new(script).arg(&images));
        let parent = containers_parent();
        fs::create_dir_all(&parent).unwrap();
        let dir = tempfile::tempdir_in(&parent).unwrap();
        let ct = dir.path().join(SD.to_string());
        fs::create_dir_all(&ct).unwrap();
        sh(std::process::Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(images.join("rootfs"))
            .arg(ct.join("rootfs")));
        // docs/TESTLAB.md Part C: what a systemd container needs here.
        fs::write(
            ct.join("config"),
            format!(
                "lxc.uts.name = sd{SD}\nlxc.rootfs.path = dir:{}\nlxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\nlxc.mount.auto = proc:mixed sys:mixed cgroup:mixed\nlxc.init.cmd = /lib/systemd/systemd\nlxc.tty.max = 1\nlxc.pty.max = 16\n",
                ct.join("rootfs").display()
            ),
        )
        .unwrap();
        SystemdContainer { dir }
    }

    fn lxcpath(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn path(&self, guest_path: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("{SD}/rootfs"))
            .join(guest_path.trim_start_matches('/'))
    }

    /// The probe service's lines, one per boot.
    fn looks(&self) -> Vec<String> {
        fs::read_to_string(self.path("/var/log/phx-probe.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for SystemdContainer {
    fn drop(&mut self) {
        let p = self.lxcpath();
        let _ = std::process::Command::new("lxc-stop")
            .args(["-P", &p, "-n", &SD.to_string(), "-k"])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The start race, measured on a real systemd container whose first service reads its
/// secret at once (and whose init mounts its own tmpfs on /run unless one is there):
/// 20 starts with delivery by post-start, then 20 with the mount hook. With the hook the
/// service finds the right bytes every time, through the link into the tmpfs the hook
/// mounted and systemd kept.
#[test]
fn a_service_that_reads_its_secret_at_boot_finds_it_every_time_with_early_delivery() {
    const STARTS: usize = 20;
    let ct = SystemdContainer::new();
    let creds = staging_root();
    let sim = SimNode::for_lxcpath(&ct.lxcpath(), &ct.dir.path().join("lock"), "60s", "10s");
    sim.credentials_dir(creds.path());
    let id = SD.to_string();
    sim.ct(SD, "arch: amd64\nhostname: sd401\n");
    sim.node.manifest(
        SD,
        "guest: lxc\nstorage: ram\nfiles:\n  - {dest: /etc/app/token, key: app/api_token, owner: app, mode: \"0440\"}\n",
    );
    let right = format!("found {}", md5(b"TOKEN-SECRET-c0ffee"));
    let boots = |early: bool| -> usize {
        let mut missed = 0;
        for i in 0..STARTS {
            let before = ct.looks().len();
            let r = sim.tool("pct", &["start", &id]);
            r.assert_code(0);
            sim.eventually(60, "the probe service", || ct.looks().len() > before);
            let look = ct.looks()[before].clone();
            if look != right {
                assert_eq!(look, "missing", "start {i}: a wrong value was read");
                missed += 1;
            }
            // Either way the file is there once the hook or the worker is done.
            let look = || {
                let out = sh(std::process::Command::new("lxc-attach").args([
                    "-P",
                    &ct.lxcpath(),
                    "-n",
                    &id,
                    "--",
                    "/bin/sh",
                    "-c",
                    "md5sum < /etc/app/token 2>/dev/null | cut -c1-32; stat -f -c %T /run",
                ]));
                String::from_utf8_lossy(&out.stdout).into_owned()
            };
            let want = format!("{}\ntmpfs\n", md5(b"TOKEN-SECRET-c0ffee"));
            sim.eventually(30, "the delivered file", || look() == want);
            sim.workers_done();
            assert_eq!(look(), want, "start {i} (early: {early})");
            leaks(&[&r.all()]);
            sim.tool("pct", &["stop", &id]).assert_code(0);
        }
        missed
    };
    sim.phx(&["register", &id]).assert_code(0);
    let late = boots(false);
    sim.phx(&["register", &id, "--early"]).assert_code(0);
    let early = boots(true);
    eprintln!(
        "start race: the service found no secret in {late} of {STARTS} starts with post-start delivery, in {early} of {STARTS} with the mount hook"
    );
    assert_eq!(early, 0, "early delivery missed {early} of {STARTS} starts");
    // Nothing of the RAM-only value on the container's disk after all those boots.
    assert!(holders(&ct.path("/"), b"TOKEN-SECRET-c0ffee").is_empty());
    leaks(&[&sim.syslog(), &sim.audit()]);
}

/// A container whose config was copied from another's (`pct clone` copies raw `lxc.*`
/// keys; so does a restore as root) carries that container's hook line. Its hook must
/// not take the other container's staged files, even as host root (a privileged clone):
/// they stay for their owner, the clone gets nothing from them, and `register --early`
/// gives the clone a line of its own instead of keeping the copy.
#[test]
fn a_clone_cannot_take_the_files_staged_for_its_source() {
    let cts = Containers::start();
    let creds = staging_root();
    let sim = sim_for(&cts, creds.path());
    for id in [PRIV, IDMAPPED] {
        cts.stop(id);
    }
    sim.ct(IDMAPPED, "arch: amd64\nunprivileged: 1\n");
    sim.node.manifest(
        IDMAPPED,
        "guest: lxc\nfiles:\n  - {dest: /etc/app/token, key: app/api_token}\n",
    );
    sim.phx(&["register", &IDMAPPED.to_string(), "--early"])
        .assert_code(0);
    let source = sim.conf("lxc", IDMAPPED);
    let line = hook_lines(&source)[0].to_string();
    // The clone: privileged, registered the plain way, with the source's line copied.
    sim.ct(PRIV, &format!("arch: amd64\n{line}\n"));
    sim.node.manifest(
        PRIV,
        "guest: lxc\nfiles:\n  - {dest: /etc/app/db, key: app/db_password}\n",
    );
    sim.phx(&["register", &PRIV.to_string()]).assert_code(0);
    // The source's files wait for it (its pre-start ran: an onboot start in parallel).
    sim.phx(&[&IDMAPPED.to_string(), "pre-start"])
        .assert_code(0);
    let bundle = creds.path().join(IDMAPPED.to_string()).join("bundle.json");
    assert!(bundle.exists());
    let r = sim.tool("pct", &["start", &PRIV.to_string()]);
    r.assert_code(0)
        .assert_contains("another container's phx-hook mount hook");
    assert!(bundle.exists(), "the clone's hook took the source's files");
    assert!(!cts.path(PRIV, "/etc/app/token").exists());
    // Its own files come the normal way.
    sim.eventually(30, "the clone's own delivery", || {
        cts.path(PRIV, "/etc/app/db").exists()
    });
    sim.workers_done();
    assert_eq!(
        fs::read(cts.path(PRIV, "/etc/app/db")).unwrap(),
        b"DB-SECRET-41b2e8"
    );
    sim.tool("pct", &["stop", &PRIV.to_string()]).assert_code(0);
    // register --early replaces the copied line with the clone's own.
    sim.phx(&["register", &PRIV.to_string(), "--early"])
        .assert_code(0);
    let conf = sim.conf("lxc", PRIV);
    assert_eq!(hook_lines(&conf).len(), 1, "{conf}");
    assert!(
        hook_lines(&conf)[0].ends_with(&format!("/{PRIV}")),
        "{conf}"
    );
    // The source still gets its files.
    sim.tool("pct", &["start", &IDMAPPED.to_string()])
        .assert_code(0);
    assert_eq!(
        fs::read(cts.path(IDMAPPED, "/etc/app/token")).unwrap(),
        b"TOKEN-SECRET-c0ffee"
    );
    assert!(!bundle.exists());
}
