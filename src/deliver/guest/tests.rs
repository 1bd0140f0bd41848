//! The guest programs by themselves, under dash (with coreutils) and busybox sh (with
//! busybox's own tools), on real directory trees, and against a racing attacker: an
//! unprivileged user (uid 1000) who watches a directory it can write with inotify and
//! swaps every name phx-hook creates there for a symbolic link to a root-only file, a
//! FIFO, or a directory of its own. The tools' `chown` and `chmod` are slowed down to
//! open the windows between steps wide; the programs must stay safe anyway.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sha2::{Digest, Sha256};

use super::*;

/// Which shell, with which tools.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shell {
    /// dash with coreutils.
    Dash,
    /// busybox sh with busybox's applets only.
    Busybox,
}

const TOOLS: &[&str] = &[
    "ls", "mkdir", "chown", "chmod", "mv", "rm", "rmdir", "dd", "cat", "wc", "readlink", "stat",
    "ln",
];

/// A directory of tools to be a program's whole PATH: coreutils or busybox applets,
/// `sha256sum` only if asked, and `chown`/`chmod` slowed by `delay` seconds when asked.
fn tool_dir(base: &Path, shell: Shell, sha: bool, delay: Option<&str>) -> PathBuf {
    let bin = base.join(format!("bin-{shell:?}-{sha}-{}", delay.is_some()));
    fs::create_dir_all(&bin).unwrap();
    let mut tools = TOOLS.to_vec();
    if sha {
        tools.push("sha256sum");
    }
    for t in tools {
        let target = match shell {
            Shell::Busybox => "/bin/busybox".to_string(),
            Shell::Dash => ["/usr/bin", "/bin"]
                .iter()
                .map(|d| format!("{d}/{t}"))
                .find(|p| Path::new(p).exists())
                .unwrap(),
        };
        let link = bin.join(t);
        let _ = fs::remove_file(&link);
        match (delay, t) {
            (Some(d), "chown" | "chmod") => {
                let real = bin.join(format!("real-{t}"));
                let _ = std::os::unix::fs::symlink(&target, &real);
                fs::write(
                    &link,
                    format!(
                        "#!/bin/sh\nsleep {d}\nexec -a {t} {} \"$@\"\n",
                        real.display()
                    ),
                )
                .unwrap();
                fs::set_permissions(&link, fs::Permissions::from_mode(0o755)).unwrap();
            }
            _ => std::os::unix::fs::symlink(&target, &link).unwrap(),
        }
    }
    bin
}

fn shell_cmd(shell: Shell, prog: &str, path: &Path) -> Command {
    let mut c = match shell {
        Shell::Dash => Command::new("/bin/dash"),
        Shell::Busybox => {
            let mut c = Command::new("/bin/busybox");
            c.arg("sh");
            c
        }
    };
    c.args(["-c", prog, "phx-hook"])
        .env_clear()
        .env("PATH", path)
        .current_dir("/");
    c
}

/// Run `prog` with `stdin`; exit code, stdout, stderr.
fn run(shell: Shell, prog: &str, path: &Path, stdin: &[u8]) -> (i32, String, String) {
    let mut child = shell_cmd(shell, prog, path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = w.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One file for the batch program.
struct F<'a> {
    dest: String,
    mode: &'a str,
    owner: &'a str,
    group: &'a str,
    content: &'a [u8],
}

fn f<'a>(dest: impl Into<String>, content: &'a [u8]) -> F<'a> {
    F {
        dest: dest.into(),
        mode: "0600",
        owner: "root",
        group: "root",
        content,
    }
}

fn sha(b: &[u8]) -> String {
    crate::types::hex(&Sha256::digest(b))
}

fn batch_input(files: &[F<'_>]) -> Vec<u8> {
    let mut v = format!("{}\n", files.len()).into_bytes();
    for x in files {
        let p: crate::types::GuestPath = x.dest.parse().unwrap();
        v.extend_from_slice(
            format!(
                "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
                p.parent(),
                p.file_name(),
                x.mode,
                x.owner,
                x.group,
                temp_name(&p),
                x.content.len(),
                sha(x.content)
            )
            .as_bytes(),
        );
        v.extend_from_slice(x.content);
    }
    v
}

/// A scratch tree under /run (root-owned, 0755 all the way up, unlike /tmp), so that
/// "only root can write here" holds for its top.
fn scratch() -> tempfile::TempDir {
    let t = tempfile::Builder::new()
        .prefix("phx-guest-test-")
        .tempdir_in("/run")
        .unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    t
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn leftovers(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.contains(".phx-") {
            out.push(n);
        }
        if e.file_type().unwrap().is_dir() {
            out.extend(leftovers(&e.path()));
        }
    }
    out
}

#[test]
fn the_batch_program_writes_every_file_safely() {
    // busybox sh runs its own applets whatever PATH says, so only dash can be made to
    // lack sha256sum (the size-only verification).
    for (shell, with_sha) in [
        (Shell::Dash, true),
        (Shell::Dash, false),
        (Shell::Busybox, true),
    ] {
        {
            let t = scratch();
            let base = t.path().display().to_string();
            let bin = tool_dir(t.path(), shell, with_sha, None);
            fs::create_dir_all(t.path().join("old")).unwrap();
            fs::write(t.path().join("old/secret"), b"old").unwrap();
            fs::set_permissions(
                t.path().join("old/secret"),
                fs::Permissions::from_mode(0o644),
            )
            .unwrap();
            fs::write(t.path().join("afile"), b"x").unwrap();
            fs::create_dir_all(t.path().join("adir/secret")).unwrap();
            // A link made by root in a root-only directory is followed (like /var/run).
            fs::create_dir_all(t.path().join("real")).unwrap();
            std::os::unix::fs::symlink("real", t.path().join("link")).unwrap();
            let files = [
                F {
                    mode: "0640",
                    group: "1000",
                    ..f(format!("{base}/new/deep/secret"), b"first \x00 secret\n")
                },
                f(format!("{base}/afile/secret"), b"NEVER-WRITTEN-1"),
                f(format!("{base}/old/secret"), b"replaced"),
                f(format!("{base}/adir/secret"), b"NEVER-WRITTEN-2"),
                F {
                    owner: "nosuchuser",
                    ..f(format!("{base}/new/bad-owner"), b"NEVER-WRITTEN-3")
                },
                f(format!("{base}/link/sub/secret"), b"through a root link"),
                F {
                    mode: "0400",
                    owner: "1000",
                    ..f(format!("{base}/top"), b"")
                },
            ];
            let (code, out, err) = run(shell, &AGENT_BATCH, &bin, &batch_input(&files));
            let ctx = format!("{shell:?} sha={with_sha}: {out}{err}");
            assert_eq!(code, 0, "{ctx}");
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines.len(), 7, "{ctx}");
            let how = if with_sha { "sha256" } else { "size" };
            for (i, want) in [
                (1, format!("ok 1 {how}")),
                (2, "err 2".into()),
                (3, format!("ok 3 {how}")),
                (4, "err 4".into()),
                (5, "err 5 cannot set owner nosuchuser:root".into()),
                (6, format!("ok 6 {how}")),
                (7, format!("ok 7 {how}")),
            ] {
                assert!(lines[i - 1].starts_with(&want), "line {i}: {ctx}");
            }
            assert!(
                lines[1].contains("afile exists and is not a directory"),
                "{ctx}"
            );
            assert!(lines[3].contains("is a directory"), "{ctx}");
            if with_sha {
                assert_eq!(
                    lines[0],
                    format!("ok 1 sha256 {}", sha(b"first \x00 secret\n"))
                );
            }
            let p = t.path();
            assert_eq!(
                fs::read(p.join("new/deep/secret")).unwrap(),
                b"first \x00 secret\n"
            );
            let m = fs::metadata(p.join("new/deep/secret")).unwrap();
            assert_eq!(
                (m.mode() & 0o7777, m.uid(), m.gid()),
                (0o640, 0, 1000),
                "{ctx}"
            );
            assert_eq!(mode(&p.join("new/deep")), 0o755);
            assert_eq!(fs::read(p.join("old/secret")).unwrap(), b"replaced");
            assert_eq!(mode(&p.join("old/secret")), 0o600);
            assert_eq!(
                fs::read(p.join("real/sub/secret")).unwrap(),
                b"through a root link"
            );
            let m = fs::metadata(p.join("top")).unwrap();
            assert_eq!((m.len(), m.mode() & 0o7777, m.uid()), (0, 0o400, 1000));
            assert!(!p.join("new/bad-owner").exists());
            assert_eq!(leftovers(p), Vec::<String>::new(), "{ctx}");
        }
    }
}

#[test]
fn a_link_a_user_could_have_planted_is_not_followed() {
    for shell in [Shell::Dash, Shell::Busybox] {
        let t = scratch();
        let p = t.path();
        let bin = tool_dir(p, shell, true, None);
        // /home/app belongs to uid 1000, who made `conf` a link to a root directory.
        fs::create_dir_all(p.join("home/app")).unwrap();
        std::os::unix::fs::chown(p.join("home/app"), Some(1000), Some(1000)).unwrap();
        fs::create_dir_all(p.join("etc")).unwrap();
        std::os::unix::fs::symlink(p.join("etc"), p.join("home/app/conf")).unwrap();
        let files = [f(
            format!("{}/home/app/conf/passwd", p.display()),
            b"SECRET",
        )];
        let (_, out, _) = run(shell, &AGENT_BATCH, &bin, &batch_input(&files));
        assert!(
            out.starts_with("err 1 ")
                && out
                    .contains("symbolic link in a directory that users other than root can write"),
            "{shell:?}: {out}"
        );
        assert!(!p.join("etc/passwd").exists());
    }
}

/// An unprivileged user racing the programs, on the host: `setpriv` to uid 1000, and
/// `inotifywait` on a directory it owns, swapping every new `.phx-` name (or the staging
/// directory's entries) for a link to `victim`, a FIFO it reads, or its own directory.
struct Attacker {
    child: Child,
    log: PathBuf,
}

const ATTACK: &str = include_str!("../../../tests/scripts/race-attacker.sh");

impl Attacker {
    fn start(dir: &Path, victim: &Path, log: &Path) -> Attacker {
        fs::write(log, b"").unwrap();
        std::os::unix::fs::chown(log, Some(1000), Some(1000)).unwrap();
        let fifo_log = PathBuf::from(format!("{}.fifo", log.display()));
        fs::write(&fifo_log, b"").unwrap();
        std::os::unix::fs::chown(&fifo_log, Some(1000), Some(1000)).unwrap();
        let child = Command::new("setpriv")
            .args([
                "--reuid=1000",
                "--regid=1000",
                "--clear-groups",
                "--",
                "/bin/sh",
                "-c",
                ATTACK,
                "attacker",
            ])
            .arg(dir)
            .arg(victim)
            .arg(log)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("setpriv (util-linux)");
        std::thread::sleep(std::time::Duration::from_millis(300));
        Attacker {
            child,
            log: log.to_path_buf(),
        }
    }

    fn swaps(&self) -> usize {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .count()
    }

    fn fifo_data(&self) -> Vec<u8> {
        fs::read(format!("{}.fifo", self.log.display())).unwrap_or_default()
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

use std::os::unix::process::CommandExt;

/// The victim: a root-only file outside the attacker's reach.
fn victim(p: &Path) -> PathBuf {
    let v = p.join("shadow");
    fs::write(&v, b"ORIGINAL-SHADOW\n").unwrap();
    fs::set_permissions(&v, fs::Permissions::from_mode(0o600)).unwrap();
    v
}

fn victim_intact(v: &Path) {
    let m = fs::metadata(v).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (0, 0, 0o600),
        "victim chowned or chmodded"
    );
    assert_eq!(fs::read(v).unwrap(), b"ORIGINAL-SHADOW\n", "victim written");
}

/// A racing scene: guest tools slowed down, a home directory of uid 1000 where the
/// attacker swaps names, and a root-only victim file.
struct Race {
    _t: tempfile::TempDir,
    bin: PathBuf,
    home: PathBuf,
    victim: PathBuf,
    attacker: Attacker,
}

fn race(shell: Shell) -> Race {
    let t = scratch();
    let p = t.path().to_path_buf();
    let bin = tool_dir(&p, shell, true, Some("0.05"));
    let home = p.join("home/app");
    fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(1000), Some(1000)).unwrap();
    let victim = victim(&p);
    let attacker = Attacker::start(&home, &victim, &p.join("attack.log"));
    Race {
        _t: t,
        bin,
        home,
        victim,
        attacker,
    }
}

impl Race {
    /// The attacker raced, and gained nothing: the victim is intact, and neither its FIFO
    /// nor any file of its own holds `needle`.
    fn nothing_gained(&self, shell: Shell, needle: &[u8]) {
        assert!(
            self.attacker.swaps() > 0,
            "{shell:?}: the attacker never got to swap anything"
        );
        victim_intact(&self.victim);
        assert!(
            !self
                .attacker
                .fifo_data()
                .windows(needle.len())
                .any(|w| w == needle),
            "{shell:?}: the secret went into the attacker's FIFO"
        );
        for e in fs::read_dir(&self.home).unwrap().flatten() {
            let m = fs::symlink_metadata(e.path()).unwrap();
            if m.uid() == 1000 && m.is_file() {
                assert!(
                    !fs::read(e.path())
                        .unwrap()
                        .windows(needle.len())
                        .any(|w| w == needle),
                    "{shell:?}: a file of the attacker's holds the secret"
                );
            }
        }
    }
}

/// Regression (issue 12, point 1): root in the VM for an unprivileged guest user. The
/// old program ran `chown`, `chmod` and `cat >>` on the temporary name, which the user
/// swapped for a link to /etc/shadow (made theirs, and appended to) or a FIFO (which
/// received the secret).
#[test]
fn a_racing_user_gains_nothing_from_the_batch_program() {
    for shell in [Shell::Dash, Shell::Busybox] {
        let r = race(shell);
        let (bin, home) = (&r.bin, &r.home);
        let secret = b"RACE-SECRET-9f8e7d";
        let mut oks = 0;
        for _ in 0..12 {
            let files = [
                F {
                    mode: "0640",
                    group: "1000",
                    owner: "0",
                    ..f(format!("{}/token", home.display()), &secret[..])
                },
                F {
                    mode: "0600",
                    ..f(format!("{}/other", home.display()), &secret[..])
                },
            ];
            let (_, out, _) = run(shell, &AGENT_BATCH, bin, &batch_input(&files));
            oks += out.lines().filter(|l| l.starts_with("ok ")).count();
            for l in out.lines() {
                assert!(
                    l.starts_with("ok ") || l.starts_with("err "),
                    "{shell:?}: {out}"
                );
            }
        }
        // Whatever the user stole is a root file it cannot read (0600/0640 root:1000 is
        // the manifest's own choice for `token`); nothing of theirs holds the secret.
        r.nothing_gained(shell, secret);
        eprintln!(
            "{shell:?}: {} swaps, {oks} files delivered",
            r.attacker.swaps()
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn chunk_input(
    op: &str,
    dir: &str,
    name: &str,
    stage: &str,
    token: &str,
    piece: usize,
    tail: &[String],
    body: &[u8],
) -> Vec<u8> {
    let mut v = format!("{op}\n{dir}\n{name}\n{stage}\n{token}\n{piece}\n").into_bytes();
    for l in tail {
        v.extend_from_slice(l.as_bytes());
        v.push(b'\n');
    }
    v.extend_from_slice(body);
    v
}

/// Deliver `content` in `pieces` pieces through the chunk program; its output.
fn chunked(
    shell: Shell,
    bin: &Path,
    dest: &str,
    content: &[u8],
    pieces: usize,
    owner: &str,
) -> Result<String, String> {
    let p: crate::types::GuestPath = dest.parse().unwrap();
    let (dir, name) = (p.parent().to_string(), p.file_name().to_string());
    let stage = temp_name(&p);
    let tok = token();
    let tmp = temp_name(&p);
    let size = content.len().div_ceil(pieces);
    let parts: Vec<&[u8]> = content.chunks(size.max(1)).collect();
    let last = parts.len() - 1;
    let tail = vec![
        "0640".into(),
        owner.into(),
        "root".into(),
        tmp,
        content.len().to_string(),
        sha(content),
    ];
    for (i, part) in parts.iter().enumerate() {
        let op = match (i, last) {
            (0, 0) => "whole",
            (0, _) => "first",
            (i, l) if i == l => "last",
            _ => "append",
        };
        let t: &[String] = if op == "whole" || op == "last" {
            &tail
        } else {
            &[]
        };
        let (code, out, err) = run(
            shell,
            &AGENT_CHUNK,
            bin,
            &chunk_input(op, &dir, &name, &stage, &tok, i, t, part),
        );
        if code != 0 {
            let _ = run(
                shell,
                &AGENT_CHUNK,
                bin,
                &chunk_input("abort", &dir, &name, &stage, &tok, 0, &[], b""),
            );
            return Err(err);
        }
        if op == "whole" || op == "last" {
            return Ok(out);
        }
    }
    unreachable!()
}

#[test]
fn the_chunk_program_assembles_pieces() {
    for shell in [Shell::Dash, Shell::Busybox] {
        let t = scratch();
        let p = t.path();
        let bin = tool_dir(p, shell, true, None);
        let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for pieces in [1, 2, 5] {
            let dest = format!("{}/big/file-{pieces}", p.display());
            let out = chunked(shell, &bin, &dest, &content, pieces, "1000").unwrap();
            assert_eq!(
                out.trim(),
                format!("phx-ok sha256 {} {}", content.len(), sha(&content))
            );
            assert_eq!(fs::read(&dest).unwrap(), content);
            let m = fs::metadata(&dest).unwrap();
            assert_eq!((m.mode() & 0o7777, m.uid()), (0o640, 1000));
        }
        assert_eq!(leftovers(p), Vec::<String>::new());
        // A failure (a mismatch cannot be forced here; an unknown owner can) leaves nothing.
        let dest = format!("{}/big/bad", p.display());
        let e = chunked(shell, &bin, &dest, &content, 3, "nosuchuser").unwrap_err();
        assert!(e.contains("cannot set owner"), "{e}");
        assert!(!Path::new(&dest).exists());
        assert_eq!(leftovers(p), Vec::<String>::new(), "{shell:?}");
    }
}

/// The staging directory between calls is in a directory the user can write: swapping
/// it (or planting links in it) must neither leak the secret nor touch the victim.
#[test]
fn a_racing_user_gains_nothing_from_the_chunk_program() {
    for shell in [Shell::Dash, Shell::Busybox] {
        let r = race(shell);
        let home = &r.home;
        let secret: Vec<u8> = b"CHUNK-SECRET-5a5a|".repeat(2000);
        for _ in 0..6 {
            let _ = chunked(
                shell,
                &r.bin,
                &format!("{}/big", home.display()),
                &secret,
                3,
                "root",
            );
        }
        r.nothing_gained(shell, &secret[..18]);
    }
}

#[test]
fn the_pct_programs_refuse_directories_others_can_write() {
    for shell in [Shell::Dash, Shell::Busybox] {
        let t = scratch();
        let p = t.path();
        let bin = tool_dir(p, shell, true, None);
        fs::create_dir_all(p.join("home/app")).unwrap();
        std::os::unix::fs::chown(p.join("home/app"), Some(1000), Some(1000)).unwrap();
        let input = format!(
            "{b}/etc/app\nsecret\n{b}/home/app\ntoken\n{b}/home/app/sub\nx\n",
            b = p.display()
        );
        let (code, out, _) = run(shell, &PCT_PREPARE, &bin, input.as_bytes());
        assert_eq!(code, 0);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "ok", "{out}");
        assert!(
            lines[1].starts_with("err ")
                && lines[1].contains("can be written by users other than root"),
            "{out}"
        );
        assert!(lines[2].starts_with("err "), "{out}");
        assert!(
            !p.join("home/app/sub").exists(),
            "created a directory below a user's directory"
        );
        assert_eq!(mode(&p.join("etc/app")), 0o755);

        // Commit: a pushed file is checked and renamed; a missing one is reported.
        let dir = p.join("etc/app");
        fs::write(dir.join(".s.phx-1"), b"pushed secret").unwrap();
        fs::create_dir_all(dir.join("adir")).unwrap();
        fs::write(dir.join(".d.phx-2"), b"pushed secret").unwrap();
        let input = format!(
            "{d}\nsecret\n.s.phx-1\n{s}\n13\n{d}\nmissing\n.m.phx-3\n{s}\n13\n{d}\nadir\n.d.phx-2\n{s}\n13\n",
            d = dir.display(),
            s = sha(b"pushed secret")
        );
        let (_, out, _) = run(shell, &PCT_COMMIT, &bin, input.as_bytes());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "ok sha256", "{out}");
        assert!(lines[1].contains("missing"), "{out}");
        assert!(lines[2].contains("is a directory"), "{out}");
        assert_eq!(fs::read(dir.join("secret")).unwrap(), b"pushed secret");
        assert!(!dir.join(".d.phx-2").exists() && dir.join("adir").is_dir());
    }
}

/// The reconciler's probe: a RAM-only file counts only while its destination is the link
/// to it; a link elsewhere, a plain file there, or no link at all is `missing`.
#[test]
fn the_probe_checks_the_links_of_ram_only_files() {
    for shell in [Shell::Dash, Shell::Busybox] {
        let t = scratch();
        let p = t.path();
        let bin = tool_dir(p, shell, true, None);
        let store = p.join("ram-file");
        fs::write(&store, b"x").unwrap();
        let good = p.join("good");
        std::os::unix::fs::symlink(&store, &good).unwrap();
        let wrong = p.join("wrong");
        std::os::unix::fs::symlink(p.join("elsewhere"), &wrong).unwrap();
        let plain = p.join("plain");
        fs::write(&plain, b"y").unwrap();
        let s = |x: &Path| x.display().to_string();
        let input = format!(
            "{f}\n{good}\n{f}\n{wrong}\n{f}\n{plain}\n{f}\n{none}\n{plain}\n\n",
            f = s(&store),
            good = s(&good),
            wrong = s(&wrong),
            plain = s(&plain),
            none = s(&p.join("none"))
        );
        let (code, out, err) = run(shell, &AGENT_PROBE, &bin, input.as_bytes());
        assert_eq!(code, 0, "{shell:?}: {err}");
        let kinds: Vec<&str> = out
            .lines()
            .skip(1)
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        assert_eq!(
            kinds,
            ["ok", "missing", "missing", "missing", "ok"],
            "{shell:?}: {out}"
        );
    }
}

/// RAM-only files' last step: each destination becomes the link (a file there is
/// replaced, a link elsewhere too, never followed), a directory is refused.
#[test]
fn the_link_program_replaces_and_never_follows() {
    for shell in [Shell::Dash, Shell::Busybox] {
        let t = scratch();
        let p = t.path();
        let bin = tool_dir(p, shell, true, None);
        let target = p.join("run/phx-hook/abc-token");
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(&target, b"x").unwrap();
        let victim = victim(p);
        fs::create_dir_all(p.join("etc/app/dir")).unwrap();
        fs::write(p.join("etc/app/plain"), b"old").unwrap();
        std::os::unix::fs::symlink(&victim, p.join("etc/app/evil")).unwrap();
        let dests = [
            "etc/app/plain",
            "etc/app/evil",
            "etc/app/dir",
            "etc/new/sub/token",
        ];
        let mut input = format!("{}\n", dests.len());
        for d in dests {
            let full = p.join(d);
            input.push_str(&format!(
                "{}\n{}\n.{}.phx-test\n{}\n",
                full.parent().unwrap().display(),
                full.file_name().unwrap().to_string_lossy(),
                full.file_name().unwrap().to_string_lossy(),
                target.display()
            ));
        }
        let (code, out, err) = run(shell, &LINK, &bin, input.as_bytes());
        assert_eq!(code, 0, "{shell:?}: {err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(&lines[..2], ["ok 1", "ok 2"], "{shell:?}: {out}");
        assert!(
            lines[2].starts_with("err 3 ") && lines[2].contains("is a directory"),
            "{out}"
        );
        assert_eq!(lines[3], "ok 4", "{shell:?}: {out}");
        for d in ["etc/app/plain", "etc/app/evil", "etc/new/sub/token"] {
            assert_eq!(fs::read_link(p.join(d)).unwrap(), target, "{shell:?}: {d}");
        }
        victim_intact(&victim);
        assert!(p.join("etc/app/dir").is_dir());
    }
}
