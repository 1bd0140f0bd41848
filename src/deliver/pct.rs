//! The `pct` container transport, built on Proxmox's own tools and their real behaviour
//! (PROXMOX.md §3): `pct push` creates no parent directories, creates files `0666 &
//! ~umask` unless given `--perms`, truncates an existing file in place, takes the
//! guest's config lock (which the start task holds during post-start), and can exit 0
//! when the copy failed. So, per guest: one `pct exec` creates the parents and checks
//! that only root can write on the way (`pct push` resolves its path again, so a
//! directory another user of the container can write would let them redirect it); one
//! `pct push --perms --user --group` per file writes a new temporary name beside the
//! destination, reading the content from a memfd (`/dev/fd/N`), never a host file; one
//! `pct exec` verifies every temporary file's digest (or size) and renames it into place.
//! The programs are `deliver::guest`'s; names and digests travel on stdin, never argv.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use nix::sys::memfd::{MFdFlags, memfd_create};
use sha2::{Digest, Sha256};

use super::guest::{self, PCT_COMMIT, PCT_PREPARE};
use super::{CommandOutcome, DeliverError, Transport, Verified, run_bounded};
use crate::plan::Delivery;
use crate::text;
use crate::types::Vmid;

/// The `pct` transport for one container.
pub struct PctTransport {
    vmid: Vmid,
    pct: String,
    lock: Utf8PathBuf,
    lock_wait: Duration,
    timeout: Duration,
    /// `pct` invocations so far (for benchmarks and tests).
    pub invocations: u32,
}

impl PctTransport {
    /// `pct` is the command (words split on white space); `lock` is the container's
    /// config lock file, waited for up to `lock_wait` before pushing.
    pub fn new(
        vmid: Vmid,
        pct: &str,
        lock: Utf8PathBuf,
        lock_wait: Duration,
        timeout: Duration,
    ) -> PctTransport {
        PctTransport {
            vmid,
            pct: pct.to_string(),
            lock,
            lock_wait,
            timeout,
            invocations: 0,
        }
    }

    fn pct(&mut self) -> Command {
        self.invocations += 1;
        let mut words = self.pct.split_whitespace();
        let mut c = Command::new(words.next().unwrap_or("pct"));
        c.args(words);
        c
    }

    /// `pct exec <vmid> --keep-env 0 -- argv...`, with `input` on stdin.
    fn exec(
        &mut self,
        argv: &[&str],
        input: Option<&[u8]>,
    ) -> Result<(CommandOutcome, String, String), DeliverError> {
        let vmid = self.vmid.to_string();
        let bound = self.timeout;
        let mut c = self.pct();
        c.args(["exec", &vmid, "--keep-env", "0", "--"]).args(argv);
        let (o, out, err) = run_bounded(&mut c, input, bound)?;
        Ok((
            o,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        ))
    }

    /// Wait until nobody holds the config lock (the start task releases it when the
    /// post-start hook returns); `pct push` takes it itself.
    fn wait_for_lock(&self) -> Result<(), DeliverError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            let f = match OpenOptions::new().read(true).open(&self.lock) {
                Ok(f) => f,
                // No lock file: nobody has locked this guest's config yet.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => {
                    return Err(DeliverError::Unreachable(format!(
                        "cannot open the config lock `{}`: {e}",
                        self.lock
                    )));
                }
            };
            match f.try_lock() {
                Ok(()) => return Ok(()),
                Err(std::fs::TryLockError::WouldBlock)
                    if start.elapsed() + pause < self.lock_wait =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(DeliverError::Unreachable(format!(
                        "the config lock `{}` of CT {} was still held after {:.0}s",
                        self.lock,
                        self.vmid,
                        self.lock_wait.as_secs_f64()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(DeliverError::Unreachable(format!(
                        "cannot lock `{}`: {e}",
                        self.lock
                    )));
                }
            }
        }
    }

    fn push(&mut self, d: &Delivery, tmp: &str) -> Result<(), DeliverError> {
        // The content goes through a memfd: RAM, never a host file. It is inherited by
        // `pct` (no close-on-exec) and named as /dev/fd/N, which pct opens before it
        // enters the container.
        let fd = memfd_create(c"phx-hook", MFdFlags::empty())
            .map_err(|e| DeliverError::File(format!("memfd_create: {e}")))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(d.content.expose())
            .map_err(|e| DeliverError::File(format!("memfd write: {e}")))?;
        let src = format!("/dev/fd/{}", file.as_raw_fd());
        let vmid = self.vmid.to_string();
        let mode = format!("{:04o}", d.mode);
        let (owner, group) = (d.owner.to_string(), d.group.to_string());
        let bound = self.timeout + Duration::from_secs(d.content.len() as u64 >> 20);
        let mut c = self.pct();
        c.args([
            "push", &vmid, &src, tmp, "--perms", &mode, "--user", &owner, "--group", &group,
        ]);
        let (o, _, err) = run_bounded(&mut c, None, bound)?;
        drop(file);
        let err = String::from_utf8_lossy(&err);
        if !o.success() {
            return Err(DeliverError::File(format!(
                "pct push failed: {}",
                first_line(&err)
            )));
        }
        // pct push exits 0 when the copy inside the container failed (the error is only
        // printed); the commit step verifies the file either way.
        if err.contains("failed") || err.contains("TASK ERROR") {
            return Err(DeliverError::File(format!(
                "pct push reported: {}",
                first_line(&err)
            )));
        }
        Ok(())
    }
}

/// The preparation program's report, one line per file: `None` for a file that may be
/// pushed, else why not (the guest's text, escaped).
pub(crate) fn prepared_results(out: &str, n: usize) -> Vec<Option<Result<Verified, DeliverError>>> {
    let lines: Vec<&str> = out.lines().collect();
    (0..n)
        .map(|i| match lines.get(i) {
            Some(&"ok") => None,
            Some(l) => Some(Err(DeliverError::File(text::guest(
                l.strip_prefix("err ").unwrap_or(l).as_bytes(),
            )))),
            None => Some(Err(DeliverError::File(
                "the container did not answer for this file".into(),
            ))),
        })
        .collect()
}

/// The commit program's report, one line per pushed file.
pub(crate) fn commit_results(out: &str, n: usize) -> Vec<Result<Verified, DeliverError>> {
    let lines: Vec<&str> = out.lines().collect();
    (0..n)
        .map(|k| match lines.get(k) {
            Some(&"ok sha256") => Ok(Verified::Digest),
            Some(&"ok size") => Ok(Verified::Size),
            Some(l) => Err(DeliverError::File(text::guest(
                l.strip_prefix("err ").unwrap_or(l).as_bytes(),
            ))),
            None => Err(DeliverError::File(
                "the container did not confirm this file".into(),
            )),
        })
        .collect()
}

/// The first non-empty line of a tool's (or the guest's) output, bounded and escaped.
fn first_line(s: &str) -> String {
    text::guest(
        s.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message")
            .as_bytes(),
    )
}

impl Transport for PctTransport {
    fn name(&self) -> &'static str {
        "pct"
    }

    fn calls(&self) -> u32 {
        self.invocations
    }

    fn deliver_all(&mut self, files: &[Delivery]) -> Vec<Result<Verified, DeliverError>> {
        super::with_ram(self, files)
    }

    fn run(&mut self, argv: &[String]) -> Result<CommandOutcome, DeliverError> {
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let vmid = self.vmid.to_string();
        let mut c = self.pct();
        c.args(["exec", &vmid, "--keep-env", "0", "--"]).args(&args);
        run_bounded(&mut c, None, self.timeout.max(Duration::from_secs(30))).map(|(o, _, _)| o)
    }
}

impl super::Steps for PctTransport {
    fn ram_check(&mut self) -> Result<(), DeliverError> {
        let input = guest::ram_dir_input();
        let (_, out, _) = self.exec(
            &["/bin/sh", "-c", &guest::RAM_DIR, "phx-hook"],
            Some(input.as_bytes()),
        )?;
        guest::ram_dir_result(&out).map_err(DeliverError::File)
    }

    fn link(
        &mut self,
        links: &[(usize, &crate::types::GuestPath, &crate::types::GuestPath)],
    ) -> Vec<Result<(), String>> {
        let input = guest::link_input(links);
        match self.exec(
            &["/bin/sh", "-c", &guest::LINK, "phx-hook"],
            Some(input.as_bytes()),
        ) {
            Ok((_, out, _)) => guest::link_results(&out, links.len()),
            Err(e) => links.iter().map(|_| Err(e.to_string())).collect(),
        }
    }

    fn write_files(&mut self, files: &[Delivery]) -> Vec<Result<Verified, DeliverError>> {
        let fail_all = |e: DeliverError| files.iter().map(|_| Err(e.clone())).collect::<Vec<_>>();
        // 1. Parents, and the check that only root can write on the way, in one `pct exec`.
        let mut input = Vec::new();
        for d in files {
            input.extend_from_slice(
                format!("{}\n{}\n", d.dest.parent(), d.dest.file_name()).as_bytes(),
            );
        }
        let (o, out, err) =
            match self.exec(&["/bin/sh", "-c", &PCT_PREPARE, "phx-hook"], Some(&input)) {
                Ok(r) => r,
                Err(e) => return fail_all(e),
            };
        if !o.success() {
            let why = first_line(&err);
            let hint = if why.contains("/bin/sh")
                || o.exitcode == Some(127)
                || o.exitcode == Some(126)
            {
                format!(
                    "the container has no usable /bin/sh, which the pct transport needs ({why}); use `lxc_transport: native`"
                )
            } else {
                format!("`pct exec` into CT {} failed: {why}", self.vmid)
            };
            return fail_all(DeliverError::Unreachable(hint));
        }
        let mut results = prepared_results(&out, files.len());
        // 2. One `pct push` per file, once the start task has released the lock.
        if let Err(e) = self.wait_for_lock() {
            return fail_all(e);
        }
        let mut commit = Vec::new();
        let mut committed = Vec::new();
        for (i, d) in files.iter().enumerate() {
            if results[i].is_some() {
                continue;
            }
            let name = guest::temp_name(&d.dest);
            let dir = d.dest.parent();
            let tmp = format!("{}/{name}", dir.trim_end_matches('/'));
            match self.push(d, &tmp) {
                Ok(()) => {
                    commit.extend_from_slice(
                        format!(
                            "{dir}\n{}\n{name}\n{}\n{}\n",
                            d.dest.file_name(),
                            crate::types::hex(&Sha256::digest(d.content.expose())),
                            d.content.len()
                        )
                        .as_bytes(),
                    );
                    committed.push(i);
                }
                Err(e) => {
                    // Remove whatever a failed push left (best effort, one exec).
                    let _ = self.exec(&["rm", "-f", "--", &tmp], None);
                    results[i] = Some(Err(e));
                }
            }
        }
        // 3. Verify and rename, in one `pct exec`, digests on stdin.
        if !committed.is_empty() {
            match self.exec(&["/bin/sh", "-c", &PCT_COMMIT, "phx-hook"], Some(&commit)) {
                Ok((_, out, _)) => {
                    for (k, r) in commit_results(&out, committed.len())
                        .into_iter()
                        .enumerate()
                    {
                        results[committed[k]] = Some(r);
                    }
                }
                Err(e) => {
                    for &i in &committed {
                        results[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(DeliverError::File("not attempted".into()))))
            .collect()
    }
}
