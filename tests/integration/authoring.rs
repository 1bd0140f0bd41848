//! Vault authoring against the real gpg, both ways: what phx-hook writes, gpg reads and
//! verifies for every recipient; what people write with their gpg, the host reads.
//! Editing through a scripted $EDITOR, recipients, signatures, rollback, and `run`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::*;

/// A fresh GnuPG home holding only the secret keys `names` (and the public key files
/// `publics`).
fn home_with(names: &[&str], publics: &[&Path]) -> tempfile::TempDir {
    let k = keys();
    let h = tempfile::tempdir().unwrap();
    fs::set_permissions(h.path(), fs::Permissions::from_mode(0o700)).unwrap();
    for n in names {
        let sec = h.path().join(format!("{n}.sec"));
        fs::write(&sec, k.secret(n, false)).unwrap();
        sh(gpg(h.path())
            .args([
                "--passphrase",
                if *n == "edpw" { PASSPHRASE } else { "" },
                "--import",
            ])
            .arg(&sec));
    }
    for p in publics {
        sh(gpg(h.path()).arg("--import").arg(p));
    }
    h
}

/// Run phx-hook with a GnuPG home (the user's keyring) and extra env.
fn phx(n: &Node, home: &Path, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
    use std::io::Write;
    let mut c = Command::new(BIN);
    c.arg("--config")
        .arg(n.path("phx-hook.yaml"))
        .args(args)
        .env("GNUPGHOME", home)
        .env_remove("PHX_HOOK_CONFIG");
    c.envs(env.iter().copied());
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Run::from(out)
}

/// `vault set <key> --host` with `value` on stdin, as the test keys' owner.
fn host_set(n: &Node, key: &str, value: &[u8]) -> Run {
    phx(
        n,
        &keys().home,
        &["vault", "set", key, "--host"],
        Some(value),
        &[],
    )
}

fn export_public(name: &str, dir: &Path) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.pub.asc"));
    fs::write(&p, keys().public(&[name])).unwrap();
    p
}

/// A node whose vault phx-hook created (`vault init`) for the host plus `devs`.
fn authored_node(devs: &[&str]) -> (Node, tempfile::TempDir) {
    let n = Node::new();
    let pubs = tempfile::tempdir().unwrap();
    let mut args = vec!["vault".to_string(), "init".to_string()];
    for d in devs {
        args.push("--recipient".into());
        args.push(export_public(d, pubs.path()).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    n.run(&args)
        .assert_code(0)
        .assert_contains("generated the host key");
    (n, pubs)
}

fn gpg_decrypt(home: &Path, file: &Path) -> (bool, String, String) {
    let out = gpg(home)
        .args(["--status-fd", "2", "--decrypt"])
        .arg(file)
        .output()
        .unwrap();
    let status: String = String::from_utf8_lossy(&out.stderr).into();
    (
        status.contains("[GNUPG:] DECRYPTION_OKAY"),
        String::from_utf8_lossy(&out.stdout).into(),
        status,
    )
}

#[test]
fn two_commands_seed_a_vault_that_gpg_reads_for_every_recipient() {
    let (n, _pubs) = authored_node(&["ed", "rsa"]);
    assert_eq!(
        fs::metadata(n.path("host.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // The second command: the Samba password, from stdin (never argv).
    let r = host_set(&n, "samba/password", b"SMB-SECRET-7f3a9c\n");
    r.assert_code(0).assert_contains("is now version 2");
    n.manifest(
        101,
        "guest: lxc\nfiles:\n  - {dest: /etc/samba/phoenix.secret, key: samba/password}\n",
    );
    n.run(&["check"])
        .assert_code(0)
        .assert_contains("version 2, 1 secrets");
    // gpg decrypts for each recipient, and the host key's signature verifies.
    let host_pub = n.path("host.key.pub.asc");
    for who in ["ed", "rsa"] {
        let home = home_with(&[who], &[&host_pub]);
        let (ok, out, status) = gpg_decrypt(home.path(), &n.path("secrets.json.gpg"));
        assert!(ok, "{who}: {status}");
        assert!(out.contains("\"password\": \"SMB-SECRET-7f3a9c\""), "{out}");
        assert!(
            status.contains("GOODSIG") && status.contains("VALIDSIG") && status.contains("GOODMDC"),
            "{who}: {status}"
        );
        assert!(
            status.contains("DECRYPTION_INFO 2 9"),
            "MDC + AES-256: {status}"
        );
    }
    // The generated host key imports into gpg, which encrypts to it; the host reads that.
    let home = home_with(&[], &[&host_pub]);
    let fpr = fs::read_to_string(&host_pub).unwrap();
    assert!(fpr.contains("BEGIN PGP PUBLIC KEY BLOCK"));
    let listing = sh(gpg(home.path()).args(["--with-colons", "--list-keys"])).stdout;
    let host_fpr = colon_field(&listing, "fpr", 9);
    let out = n.path("by-gpg.gpg");
    let mut c = gpg(home.path());
    c.args(["--recipient", &host_fpr, "--output"])
        .arg(&out)
        .args(["--encrypt"]);
    let mut child = c.stdin(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"_phx":{"version":3},"samba":{"password":"x"}}"#)
        .unwrap();
    assert!(child.wait().unwrap().success());
    fs::rename(&out, n.path("secrets.json.gpg")).unwrap();
    n.run(&["check"])
        .assert_code(0)
        .assert_contains("version 3");
    // And gpg, given the host's secret key, decrypts what phx-hook wrote.
    let secret_home = tempfile::tempdir().unwrap();
    fs::set_permissions(secret_home.path(), fs::Permissions::from_mode(0o700)).unwrap();
    sh(gpg(secret_home.path())
        .args(["--passphrase", "", "--import"])
        .arg(n.path("host.key")));
    host_set(&n, "app/token", b"T0K3N").assert_code(0);
    let (ok, out, _) = gpg_decrypt(secret_home.path(), &n.path("secrets.json.gpg"));
    assert!(ok && out.contains("T0K3N"));
}

#[test]
fn a_developer_writes_with_gpg_and_the_host_checks_the_signer() {
    let (n, pubs) = authored_node(&["ed"]);
    // The developer (the `ed` key in their keyring) sets a value through gpg.
    let k = keys();
    phx(
        &n,
        &k.home,
        &["vault", "set", "app/db_password", "--signer", k.fpr("ed")],
        Some(b"DB-SECRET-41b2e8"),
        &[],
    )
    .assert_code(0);
    // The host accepts it only when signed by a listed signer, and says who signed.
    n.write(
        "recipients.asc",
        &fs::read(n.path("recipients.asc")).unwrap(),
    );
    n.config(&format!("signers: [\"{}\"]\n", k.fpr("ed")));
    n.run(&["vault", "verify"])
        .assert_code(0)
        .assert_contains(&format!("signer: {}", k.fpr("ed")))
        .assert_contains("would accept it");
    // Written with the host key instead: signed, but not by a listed key.
    host_set(&n, "app/db_password", b"other").assert_code(0);
    let r = n.run(&["check"]);
    r.assert_code(1)
        .assert_contains("not one of the accepted signers");
    let _ = pubs;
}

#[test]
fn rollback_is_refused_until_accepted() {
    let (n, _p) = authored_node(&[]);
    let set = |v: &[u8]| host_set(&n, "a/b", v).assert_code(0).code;
    set(b"one");
    n.run(&["check"]).assert_code(0);
    let old = fs::read(n.path("secrets.json.gpg")).unwrap();
    set(b"two");
    n.run(&["check"])
        .assert_code(0)
        .assert_contains("version 3");
    // Someone puts the old vault back.
    fs::write(n.path("secrets.json.gpg"), &old).unwrap();
    let r = n.run(&["check"]);
    r.assert_code(1)
        .assert_contains("version 2, older than version 3")
        .assert_contains("vault accept-rollback");
    n.run(&["vault", "verify"])
        .assert_code(1)
        .assert_contains("would REFUSE");
    n.run(&["vault", "accept-rollback"])
        .assert_code(0)
        .assert_contains("highest accepted version was 3");
    n.run(&["check"])
        .assert_code(0)
        .assert_contains("version 2");
}

/// A scripted editor: `EDIT_MODE` says what it does; it records where the file was.
fn editor(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("editor.sh");
    fs::write(
        &p,
        format!(
            r#"#!/bin/sh
f="$1"
echo "$f $(stat -f -c %T "$f") $(stat -c %a "$f") $(stat -c %a "$(dirname "$f")")" >> {log}
n=$(cat {count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {count}
case "$EDIT_MODE" in
  change) sed -i 's/"password": "[^"]*"/"password": "EDITED-VALUE"/' "$f" ;;
  none) : ;;
  invalid-then-fix)
    if [ $n -eq 1 ]; then cp "$f" {backup}; echo '}}}}}} broken' >> "$f"
    else cp {backup} "$f"; sed -i 's/"password": "[^"]*"/"password": "FIXED-VALUE"/' "$f"; fi ;;
  crash) echo 'garbage' > "$f"; kill -9 $$ ;;
esac
"#,
            log = dir.join("editor.log").display(),
            count = dir.join("count").display(),
            backup = dir.join("backup").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn vault_edit_with_a_scripted_editor() {
    let (n, _p) = authored_node(&["ed"]);
    let k = keys();
    host_set(&n, "samba/password", b"SMB-SECRET-7f3a9c").assert_code(0);
    let scratch = tempfile::tempdir().unwrap();
    let ed = editor(scratch.path());
    let ed = ed.to_str().unwrap();
    let version = |n: &Node| {
        let r = n.run(&["check"]);
        r.stdout
            .split("version ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap()
    };
    let value = |n: &Node| phx(n, &k.home, &["vault", "get", "samba/password"], None, &[]).stdout;
    let run_edit = |mode: &str| {
        let _ = fs::remove_file(scratch.path().join("count"));
        phx(
            &n,
            &k.home,
            &["vault", "edit", "--signer", k.fpr("ed")],
            None,
            &[("EDITOR", ed), ("EDIT_MODE", mode)],
        )
    };
    assert_eq!(version(&n), 2);
    // No change: untouched.
    let before = fs::read(n.path("secrets.json.gpg")).unwrap();
    run_edit("none").assert_code(0).assert_contains("no change");
    assert_eq!(fs::read(n.path("secrets.json.gpg")).unwrap(), before);
    // Editor crash: untouched.
    run_edit("crash")
        .assert_code(0)
        .assert_contains("the vault is unchanged");
    assert_eq!(fs::read(n.path("secrets.json.gpg")).unwrap(), before);
    // A change: re-encrypted, signed by the developer, version + 1.
    let r = run_edit("change");
    r.assert_code(0).assert_contains("is now version 3");
    assert_eq!(value(&n), "EDITED-VALUE");
    // Invalid JSON first: the error is shown and the editor reopens; then the fix lands.
    let r = run_edit("invalid-then-fix");
    r.assert_code(0)
        .assert_contains("not valid JSON")
        .assert_contains("reopening the editor")
        .assert_contains("is now version 4");
    assert_eq!(value(&n), "FIXED-VALUE");
    assert_eq!(
        fs::read_to_string(scratch.path().join("count"))
            .unwrap()
            .trim(),
        "2"
    );
    // Every plaintext file was on tmpfs, 0600 in a 0700 directory, and is gone now.
    let log = fs::read_to_string(scratch.path().join("editor.log")).unwrap();
    assert!(log.lines().count() >= 5);
    for line in log.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(&f[1..], ["tmpfs", "600", "700"], "{line}");
        assert!(!Path::new(f[0]).exists(), "{} was left behind", f[0]);
        assert!(!Path::new(f[0]).parent().unwrap().exists());
    }
    // A disk-backed $XDG_RUNTIME_DIR is passed over for /dev/shm.
    let r = phx(
        &n,
        &k.home,
        &["vault", "edit"],
        None,
        &[
            ("EDITOR", ed),
            ("EDIT_MODE", "none"),
            ("XDG_RUNTIME_DIR", "/var/tmp"),
        ],
    );
    r.assert_code(0);
    assert!(
        fs::read_to_string(scratch.path().join("editor.log"))
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .starts_with("/dev/shm/")
    );
    for v in ["SMB-SECRET-7f3a9c", "EDITED-VALUE", "FIXED-VALUE"] {
        r.assert_lacks(v);
    }
}

#[test]
fn removing_a_recipient_re_encrypts_and_lists_what_to_rotate() {
    let (n, pubs) = authored_node(&["ed", "rsa"]);
    let k = keys();
    // A small git history: the vault and the rsa developer from the start.
    let git = |args: &[&str]| sh(Command::new("git").arg("-C").arg(n.dir.path()).args(args));
    git(&["init", "-q"]);
    git(&["config", "user.email", "t@t"]);
    git(&["config", "user.name", "t"]);
    for (key, val) in [("samba/password", "s1"), ("old/key", "gone-later")] {
        host_set(&n, key, val.as_bytes()).assert_code(0);
        git(&["add", "secrets.json.gpg", "recipients.asc"]);
        git(&["commit", "-qm", key]);
    }
    phx(
        &n,
        &k.home,
        &["vault", "rm", "old/key", "--host"],
        None,
        &[],
    )
    .assert_code(0);
    host_set(&n, "app/db_password", b"d").assert_code(0);
    git(&["commit", "-qam", "rm old/key"]);
    n.run(&["vault", "recipients", "list"])
        .assert_code(0)
        .assert_contains(k.fpr("rsa"))
        .assert_contains(k.fpr("ed"));
    let r = n.run(&[
        "vault",
        "recipients",
        "remove",
        k.fpr("rsa"),
        "--history",
        "--key",
        n.path("host.key").to_str().unwrap(),
    ]);
    r.assert_code(0)
        .assert_contains("it could read these secrets; rotate them:");
    r.assert_contains("  app/db_password")
        .assert_contains("  samba/password")
        .assert_contains("  old/key");
    // Without --history the deleted key is not listed.
    n.run(&[
        "vault",
        "recipients",
        "add",
        pubs.path().join("rsa.pub.asc").to_str().unwrap(),
        "--host",
    ])
    .assert_code(0);
    let r = n.run(&["vault", "recipients", "remove", k.fpr("rsa"), "--host"]);
    r.assert_code(0)
        .assert_lacks("old/key")
        .assert_contains("  samba/password");
    // The removed key can no longer decrypt the new vault; the remaining one can.
    let (ok, _, _) = gpg_decrypt(home_with(&["rsa"], &[]).path(), &n.path("secrets.json.gpg"));
    assert!(!ok, "the removed recipient still decrypts");
    let (ok, _, _) = gpg_decrypt(home_with(&["ed"], &[]).path(), &n.path("secrets.json.gpg"));
    assert!(ok);
    n.run(&["vault", "recipients", "list"])
        .assert_code(0)
        .assert_lacks(k.fpr("rsa"));
}

#[test]
fn list_get_and_textconv() {
    let (n, _p) = authored_node(&[]);
    let k = keys();
    for (key, val) in [("samba/password", "SMB-SECRET-7f3a9c"), ("app/unused", "x")] {
        host_set(&n, key, val.as_bytes()).assert_code(0);
    }
    n.manifest(101, "guest: lxc\nfiles:\n  - {dest: /a, key: samba/password}\n  - {dest: /b, key: app/missing}\n");
    let r = n.run(&["vault", "list", "--host"]);
    r.assert_code(1)
        .assert_contains("samba/password  (used by 101)")
        .assert_contains("app/unused  (unused)")
        .assert_contains("app/missing  MISSING (used by 101)");
    r.assert_lacks("SMB-SECRET");
    // textconv: stable, redacted, and it changes when (only) a value changes.
    let tc = || {
        n.run(&[
            "vault",
            "textconv",
            n.path("secrets.json.gpg").to_str().unwrap(),
            "--host",
        ])
    };
    let a = tc();
    a.assert_code(0)
        .assert_contains("samba/password = hmac:")
        .assert_lacks("SMB-SECRET");
    phx(&n, &k.home, &["vault", "rekey", "--host"], None, &[]).assert_code(0);
    let b = tc();
    let tags = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("_phx/version"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        tags(&a.stdout),
        tags(&b.stdout),
        "a re-encryption changes no tag"
    );
    host_set(&n, "samba/password", b"new").assert_code(0);
    let c = tc();
    let changed: Vec<_> = tags(&b.stdout)
        .into_iter()
        .zip(tags(&c.stdout))
        .filter(|(x, y)| x != y)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].0.starts_with("samba/password"));
}

#[test]
fn run_puts_secrets_in_the_environment_not_argv() {
    let n = ready_node();
    let out = n.path("seen");
    let script = format!(
        "echo \"$SMB_PASSWORD\" > {o}; cat \"$TOKEN_FILE\" >> {o}; echo >> {o}; cat /proc/$$/cmdline >> {o}; exit 3",
        o = out.display()
    );
    let r = n.run(&[
        "run",
        "--env",
        "SMB_PASSWORD=samba/password",
        "--file",
        "TOKEN_FILE=app/api_token",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(r.code, 3, "the exit status is the command's: {r:?}");
    let seen = fs::read_to_string(&out).unwrap();
    let mut lines = seen.lines();
    assert_eq!(lines.next(), Some("SMB-SECRET-7f3a9c"));
    assert_eq!(lines.next(), Some("TOKEN-SECRET-c0ffee"));
    let cmdline = lines.next().unwrap_or("");
    assert!(
        !cmdline.contains("SMB-SECRET") && !cmdline.contains("TOKEN-SECRET"),
        "{cmdline}"
    );
    r.assert_lacks("SMB-SECRET");
    // A missing key fails before anything runs.
    let marker = n.path("ran");
    let r = n.run(&[
        "run",
        "--env",
        "X=nope/missing",
        "--",
        "touch",
        marker.to_str().unwrap(),
    ]);
    r.assert_code(1)
        .assert_contains("`nope/missing` does not exist");
    assert!(!marker.exists());
    // The audit log names the keys, not the values.
    let audit = fs::read_to_string(n.path("audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"action\":\"run\"")
            && audit.contains("samba/password")
            && !audit.contains("SMB-SECRET")
    );
}
