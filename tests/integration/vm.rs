//! End to end into a real VM: a Debian kernel and a busybox + qemu-ga initramfs under
//! qemu-system-x86_64 with software emulation (TCG), the agent on virtio-serial, QMP and
//! the pid file wired exactly as Proxmox VE wires them. One boot for the whole suite, and
//! one reboot from inside the guest (QEMU resets in place; no hook phase runs).

use std::fs;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use phx_hook::deliver::qga::QgaTransport;

use crate::util::*;

struct Vm {
    child: Child,
    dir: PathBuf,
}

impl Vm {
    /// Boot VM 201 with its sockets and pid file in `dir`, as Proxmox keeps them in
    /// /var/run/qemu-server (qemu-server `config_to_command`: `-pidfile`, the `qmp`
    /// chardev, the `qga0` chardev). No `-no-reboot`: a reboot in the guest resets the
    /// machine and the same QEMU process goes on, as on Proxmox.
    fn boot(images: &Path, dir: &Path, extra: &[&str]) -> Vm {
        fs::create_dir_all(dir).unwrap();
        let sock = dir.join("201.qga");
        // The guest's disk: a minix filesystem the guest mounts at /data.
        let disk = dir.join("disk.img");
        fs::write(&disk, vec![0u8; 8 << 20]).unwrap();
        sh(Command::new("mkfs.minix").arg(&disk));
        let child = Command::new("qemu-system-x86_64")
            .args([
                "-name",
                "phx-test-vm",
                "-machine",
                "q35,accel=tcg",
                "-cpu",
                "max",
                "-m",
                "256",
                "-smp",
                "1",
            ])
            .args(["-nodefaults", "-no-user-config", "-display", "none"])
            .arg("-pidfile")
            .arg(dir.join("201.pid"))
            .arg("-chardev")
            .arg(format!(
                "socket,id=qmp,path={},server=on,wait=off",
                dir.join("201.qmp").display()
            ))
            .args(["-mon", "chardev=qmp,mode=control"])
            .arg("-drive")
            .arg(format!("file={},format=raw,if=virtio", disk.display()))
            // The VM config's `args`, appended last as qemu-server's config_to_command does.
            .args(extra)
            .arg("-serial")
            .arg(format!("file:{}", dir.join("console.log").display()))
            .arg("-kernel")
            .arg(images.join("vmlinuz"))
            .arg("-initrd")
            .arg(images.join("initrd.gz"))
            .args(["-append", "console=ttyS0 panic=-1 quiet"])
            // The agent, as Proxmox VE's config_to_command adds it.
            .arg("-chardev")
            .arg(format!(
                "socket,path={},server=on,wait=off,id=qga0",
                sock.display()
            ))
            .args([
                "-device",
                "virtio-serial,id=qga0",
                "-device",
                "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start qemu-system-x86_64 (is qemu-system-x86 installed?)");
        Vm {
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// Boot VM 201 from a Debian 12 initramfs whose init is systemd 252 (no agent, no
    /// disk), with `extra` (the VM's `args`) last, as qemu-server appends them.
    fn boot_systemd(kernel: &Path, initrd: &Path, dir: &Path, extra: &[&str]) -> Vm {
        fs::create_dir_all(dir).unwrap();
        let child = Command::new("qemu-system-x86_64")
            .args([
                "-name",
                "phx-test-sd-vm",
                "-machine",
                "q35,accel=tcg",
                "-cpu",
                "max",
            ])
            .args(["-m", "1024", "-smp", "1", "-nodefaults", "-no-user-config"])
            .args(["-display", "none", "-no-reboot"])
            .arg("-pidfile")
            .arg(dir.join("201.pid"))
            .args(extra)
            .arg("-serial")
            .arg(format!("file:{}", dir.join("console.log").display()))
            .arg("-kernel")
            .arg(kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", "console=ttyS0 rdinit=/phx-init panic=-1 quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start qemu-system-x86_64");
        Vm {
            child,
            dir: dir.to_path_buf(),
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("201.qga")
    }

    fn console(&self) -> String {
        fs::read_to_string(self.dir.join("console.log")).unwrap_or_default()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One QMP command on QEMU's monitor socket (a connection of its own, as Proxmox's
/// `mon_cmd` makes).
fn qmp(sock: &Path, cmd: &str) {
    use std::io::{BufRead, BufReader};
    let s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap(); // greeting
    w.write_all(
        format!("{{\"execute\":\"qmp_capabilities\"}}\n{{\"execute\":\"{cmd}\"}}\n").as_bytes(),
    )
    .unwrap();
    // Two replies; events (`STOP`, `RESUME`) may come in between.
    let mut replies = 0;
    for _ in 0..10 {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(!line.contains("\"error\""), "{cmd}: {line}");
        if line.contains("\"return\"") {
            replies += 1;
            if replies == 2 {
                return;
            }
        }
    }
    panic!("{cmd}: no reply");
}

fn images() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vm");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/build-vm.sh");
    sh(Command::new(script).arg(&out));
    out
}

fn guest(t: &mut QgaTransport, script: &str) -> (Option<i32>, String) {
    let argv: Vec<String> = ["/bin/sh", "-c", script]
        .iter()
        .map(ToString::to_string)
        .collect();
    let (o, out) = t.capture(&argv).unwrap();
    (o.exitcode, String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn delivers_into_a_real_vm_over_virtio_serial() {
    let n = Node::new();
    let vm = Vm::boot(&images(), &n.path("qga"), &[]);
    let vmid = "201".parse().unwrap();
    let mut t = QgaTransport::new(vmid, vm.socket(), Duration::from_secs(20));
    let took = t.wait(Duration::from_secs(180)).unwrap_or_else(|e| {
        panic!(
            "the VM's agent never answered: {e}\nconsole:\n{}",
            vm.console()
        )
    });
    eprintln!("VM agent answered after {took:?}");

    // An existing world-readable file to replace.
    assert_eq!(guest(&mut t, "mkdir -p /etc/samba && echo old > /etc/samba/phoenix.secret && chmod 644 /etc/samba/phoenix.secret").0, Some(0));

    // Leave stale replies in the virtio-serial channel: a client that sends commands and
    // goes away without reading. The next client must skip them.
    {
        let mut s = UnixStream::connect(vm.socket()).unwrap();
        s.write_all(b"{\"execute\":\"guest-get-host-name\"}\n{\"execute\":\"guest-ping\"}\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }

    let k = keys();
    n.host_key(&k.secret("ed", true));
    n.vault(&k.encrypt(VAULT_JSON.as_bytes(), &["ed"], false, None, &[]));
    n.manifest(
        201,
        "guest: qemu\nfiles:\n  - {dest: /etc/samba/phoenix.secret, key: samba/password}\n  - {dest: /etc/app/conf.d/app.env, format: env, vars: {DATABASE_PASS: app/db_password}, mode: \"0640\", group: app}\n  - {dest: /etc/krb5.keytab, key: kerberos/keytab, decode: base64, owner: app}\n  - {dest: /data/app/token, key: app/api_token, storage: ram, owner: app, mode: \"0440\"}\n  - {dest: /data/app/plain, key: samba/password}\nafter:\n  - [touch, /run/delivered]\n",
    );
    n.write(
        "pve/qemu-server/201.conf",
        b"agent: 1\nhookscript: local:snippets/phx-hook\n",
    );
    n.config(&format!(
        "  qga_socket_dir: {}\nagent:\n  timeout: 20s\n",
        n.path("qga").display()
    ));
    let r = n.run(&["inject", "201", "--wait", "60"]);
    r.assert_code(0)
        .assert_contains("5 of 5 files delivered through qga")
        .assert_contains("/etc/krb5.keytab (22 bytes): ok, verified by");
    for v in SECRET_VALUES {
        r.assert_lacks(v);
    }

    // Verify through the agent.
    let (code, out) = guest(
        &mut t,
        "cat /etc/samba/phoenix.secret; echo; stat -c '%a %u %g' /etc/samba/phoenix.secret",
    );
    assert_eq!(code, Some(0));
    assert_eq!(out, "SMB-SECRET-7f3a9c\n600 0 0\n");
    let (_, out) = guest(
        &mut t,
        "cat /etc/app/conf.d/app.env; stat -c '%a %u %g' /etc/app/conf.d/app.env /etc/app/conf.d",
    );
    assert_eq!(out, "DATABASE_PASS=DB-SECRET-41b2e8\n640 0 1000\n755 0 0\n");
    let (_, out) = guest(
        &mut t,
        "wc -c < /etc/krb5.keytab; stat -c '%a %u' /etc/krb5.keytab; ls -a /etc /etc/app/conf.d | grep -c phx- ; test -e /run/delivered && echo after-ran",
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        vec!["22", "600", "1000", "0", "after-ran"]
    );
    // RAM-only: the application reads /data/app/token, a link on the disk into
    // /run/phx-hook (tmpfs); the disk image holds the disk file's value, never the
    // RAM-only one.
    let (code, out) = guest(
        &mut t,
        "cat /data/app/token; echo; readlink /data/app/token; stat -L -c '%a %u' /data/app/token; sync",
    );
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "TOKEN-SECRET-c0ffee", "{out}");
    assert!(lines[1].starts_with("/run/phx-hook/"), "{out}");
    assert_eq!(lines[2], "440 1000", "{out}");
    let image = fs::read(vm.dir.join("disk.img")).unwrap();
    let has = |v: &str| image.windows(v.len()).any(|w| w == v.as_bytes());
    assert!(
        has("SMB-SECRET-7f3a9c"),
        "the search cannot find the disk file's value"
    );
    assert!(
        !has("TOKEN-SECRET-c0ffee"),
        "a RAM-only value reached the VM's disk"
    );

    // In sync: the reconciler looks (agent requests only, no write) and does nothing.
    let pass = |n: &Node| {
        let r = n.run(&["reconcile", "--json"]);
        let v: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
        (r, v[0].clone())
    };
    let (r, g) = pass(&n);
    r.assert_code(0);
    assert_eq!(g["state"], "in_sync", "{g}");

    // Paused (QMP `stop`, as `qm suspend` does): skipped, with QEMU's own word for it.
    qmp(&vm.dir.join("201.qmp"), "stop");
    let (r, g) = pass(&n);
    r.assert_code(0);
    assert_eq!(
        (g["state"].as_str(), g["detail"].as_str()),
        (
            Some("skipped"),
            Some("not running a guest (QEMU is `paused`)")
        ),
        "{g}"
    );
    qmp(&vm.dir.join("201.qmp"), "cont");

    // Reboot from inside: the kernel restarts, QEMU resets the machine in place (same
    // process, same sockets), the initramfs (RAM) comes back without the secrets, and
    // no hook phase runs.
    let boot_id = |t: &mut QgaTransport| guest(t, "cat /proc/sys/kernel/random/boot_id").1;
    let before = boot_id(&mut t);
    let qemu_pid = fs::read_to_string(vm.dir.join("201.pid")).unwrap();
    assert_eq!(
        guest(&mut t, "(sleep 1; reboot -f) >/dev/null 2>&1 &").0,
        Some(0)
    );
    std::thread::sleep(Duration::from_secs(3));
    t.wait(Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("no agent after the reboot: {e}\nconsole:\n{}", vm.console()));
    assert_ne!(boot_id(&mut t), before, "the guest did not reboot");
    assert_eq!(
        fs::read_to_string(vm.dir.join("201.pid")).unwrap(),
        qemu_pid,
        "QEMU restarted"
    );
    let (code, _) = guest(
        &mut t,
        "test -e /etc/samba/phoenix.secret || test -e /run/delivered",
    );
    assert_eq!(code, Some(1), "the secrets survived a reboot of a RAM root");
    let (r, g) = pass(&n);
    r.assert_code(0);
    assert_eq!(g["state"], "repaired", "{g}");
    let reasons: Vec<&str> = g["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap())
        .collect();
    // The RAM root's three files and the RAM-only file; the disk file survived.
    assert_eq!(reasons, ["reboot", "reboot", "reboot", "reboot"], "{g}");
    let (code, out) = guest(
        &mut t,
        "cat /etc/samba/phoenix.secret; echo; cat /data/app/token; echo; test -e /run/delivered && echo after-ran",
    );
    assert_eq!(
        (code, out.as_str()),
        (
            Some(0),
            "SMB-SECRET-7f3a9c\nTOKEN-SECRET-c0ffee\nafter-ran\n"
        )
    );
    let reboots = fs::read_to_string(n.path("audit.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"reason\":\"reboot\""))
        .count();
    assert_eq!(reboots, 4);
    let (_, g) = pass(&n);
    assert_eq!(g["state"], "in_sync", "{g}");
}

/// Early delivery for VMs: `register --early` puts fw_cfg entries in the VM's `args`,
/// pre-start writes the credentials to the host's RAM, QEMU reads them at start-up,
/// post-start removes them; the guest kernel shows them where systemd imports them
/// from, and no value is in the VM config or QEMU's command line.
#[test]
fn systemd_credentials_reach_a_real_vm_through_fw_cfg() {
    use crate::sim::SimNode;
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    let creds = tempfile::tempdir_in("/dev/shm").unwrap();
    sim.credentials_dir(creds.path());
    sim.vm(201, "agent: 1\nargs: -smbios type=1,serial=phx\n");
    sim.node.manifest(
        201,
        "guest: qemu\nfiles:\n  - {credential: db-password, key: app/db_password}\n  - {credential: api.token, key: app/api_token, dest: /run/app/token}\n",
    );
    sim.phx(&["register", "201", "--early"])
        .assert_code(0)
        .assert_contains("db-password, api.token reach the VM through fw_cfg");
    let conf = sim.conf("qemu-server", 201);
    let args = vm_args(&conf);
    assert_eq!(
        &args[..2],
        ["-smbios", "type=1,serial=phx"],
        "the VM's own args went: {conf}"
    );
    assert!(conf.contains("hookscript: sim:snippets/phx-hook"));
    // pre-start: the credentials wait in RAM, root-only.
    sim.phx(&["201", "pre-start"])
        .assert_code(0)
        .assert_contains("2 credential(s) handed to QEMU");
    let dir = creds.path().join("201");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::read(dir.join("db-password")).unwrap(),
        b"DB-SECRET-41b2e8"
    );
    assert_eq!(
        fs::metadata(dir.join("db-password"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // QEMU starts with the VM's args and reads them.
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let vm = Vm::boot(&images(), &sim.path("qga"), &args);
    let mut t = QgaTransport::new("201".parse().unwrap(), vm.socket(), Duration::from_secs(20));
    t.wait(Duration::from_secs(180)).unwrap_or_else(|e| {
        panic!(
            "the VM's agent never answered: {e}\nconsole:\n{}",
            vm.console()
        )
    });
    // post-start: off the host.
    sim.phx(&["201", "post-start"]).assert_code(0);
    assert!(!dir.exists(), "the host copies are still there");
    let (code, out) = guest(
        &mut t,
        "d=/sys/firmware/qemu_fw_cfg/by_name/opt/io.systemd.credentials; cat $d/db-password/raw; echo; cat $d/api.token/raw",
    );
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "DB-SECRET-41b2e8\nTOKEN-SECRET-c0ffee"),
        "{}",
        vm.console()
    );
    // The file entry with a `dest` too is delivered through the agent by the worker.
    let t = std::cell::RefCell::new(t);
    sim.eventually(60, "the agent delivery", || {
        guest(&mut t.borrow_mut(), "cat /run/app/token").1 == "TOKEN-SECRET-c0ffee"
    });
    // No value in the VM config or QEMU's command line.
    let pid = fs::read_to_string(sim.path("qga/201.pid")).unwrap();
    let cmdline = fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap();
    for v in SECRET_VALUES {
        assert!(
            !cmdline.windows(v.len()).any(|w| w == v.as_bytes()),
            "{v} in QEMU's argv"
        );
        assert!(!sim.conf("qemu-server", 201).contains(v));
    }
    // unregister takes phx-hook's entries out, the VM's own args stay.
    sim.phx(&["unregister", "201"]).assert_code(0);
    let conf = sim.conf("qemu-server", 201);
    assert!(
        conf.contains("args: -smbios type=1,serial=phx\n") && !conf.contains("fw_cfg"),
        "{conf}"
    );
}

/// systemd itself imports what `register --early` hands to QEMU: a VM whose init is
/// Debian 12's systemd 252 (tests/scripts/build-sd-vm.sh, from the debootstrap rootfs)
/// boots with the VM's `args`; systemd imports the credentials from fw_cfg into
/// /run/credentials/@system before any unit starts, and a unit with
/// `LoadCredential=db-password` reads the right bytes (it prints their MD5, not them).
#[test]
fn systemd_imports_the_credentials_at_boot() {
    use crate::sim::SimNode;
    let vm_images = images();
    let sd = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sd");
    sh(Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scripts/build-sd-rootfs.sh"
    ))
    .arg(&sd));
    let sdvm = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sdvm");
    sh(Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scripts/build-sd-vm.sh"
    ))
    .arg(&sdvm)
    .arg(sd.join("rootfs"))
    .arg(&vm_images));
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    let creds = tempfile::tempdir_in("/dev/shm").unwrap();
    sim.credentials_dir(creds.path());
    sim.vm(201, "ostype: l26\n");
    sim.node.manifest(
        201,
        "guest: qemu\nfiles:\n  - {credential: db-password, key: app/db_password}\n  - {credential: api.token, key: app/api_token}\n",
    );
    sim.phx(&["register", "201", "--early"]).assert_code(0);
    let conf = sim.conf("qemu-server", 201);
    let args = vm_args(&conf);
    sim.phx(&["201", "pre-start"]).assert_code(0);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut vm = Vm::boot_systemd(
        &vm_images.join("vmlinuz"),
        &sdvm.join("initrd-sd.gz"),
        &sim.path("qga"),
        &args,
    );
    let t = std::time::Instant::now();
    while !vm.console().contains("PHX-CRED")
        && t.elapsed() < Duration::from_secs(300)
        && vm.child.try_wait().unwrap().is_none()
    {
        std::thread::sleep(Duration::from_millis(500));
    }
    sim.phx(&["201", "post-start"]).assert_code(0);
    assert!(
        !creds.path().join("201").exists(),
        "the host copies are still there"
    );
    let console = vm.console();
    let line = console
        .lines()
        .find(|l| l.starts_with("PHX-CRED"))
        .unwrap_or_else(|| panic!("the unit never ran:\n{console}"));
    let md5 = {
        let out = sh(Command::new("sh").args(["-c", "printf %s DB-SECRET-41b2e8 | md5sum"]));
        String::from_utf8_lossy(&out.stdout)[..32].to_string()
    };
    assert_eq!(
        line.trim(),
        format!("PHX-CRED db-password {md5} imported: api.token db-password"),
        "{console}"
    );
    assert!(!console.contains("DB-SECRET-41b2e8") && !console.contains("TOKEN-SECRET"));
    eprintln!(
        "systemd read the credential {:.0?} after QEMU started",
        t.elapsed()
    );
}

/// The words of a VM config's `args`.
fn vm_args(conf: &str) -> Vec<String> {
    conf.lines()
        .find_map(|l| l.strip_prefix("args: "))
        .unwrap()
        .split(' ')
        .map(str::to_string)
        .collect()
}
