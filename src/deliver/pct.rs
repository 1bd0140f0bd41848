//! The `pct` container transport, built on Proxmox's own tools and their real behaviour
//! (PROXMOX.md §3): `pct push` creates no parent directories, creates files `0666 &
//! ~umask` unless given `--perms`, truncates an existing file in place, takes the
//! guest's config lock (which the start task holds during post-start), and can exit 0
//! when the copy failed. So, per guest: one `pct exec` creates the parents; one
//! `pct push --perms --user --group` per file writes a new temporary name beside the
//! destination, reading the content from a memfd (`/dev/fd/N`), never a host file; one
//! `pct exec` verifies every temporary file's digest (or size) and renames it into place.
//! Expected digests travel on stdin, never in argv.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use nix::sys::memfd::{MFdFlags, memfd_create};
use sha2::{Digest, Sha256};

use super::{CommandOutcome, DeliverError, Transport, Verified, run_bounded};
use crate::plan::Delivery;
use crate::types::Vmid;

/// Creates the parents of every destination (argv: the destinations, which are not
/// secret) and prints `ok` or `err <why>` per destination.
const PREPARE: &str = r#"umask 022
for dest in "$@"; do
  dir=${dest%/*}; [ -n "$dir" ] || dir=/
  if [ -e "$dir" ] && [ ! -d "$dir" ]; then echo "err $dir exists and is not a directory"; continue; fi
  mkdir -p "$dir" 2>/dev/null
  if [ ! -d "$dir" ]; then echo "err cannot create directory $dir"; continue; fi
  if [ -d "$dest" ] && [ ! -L "$dest" ]; then echo "err $dest is a directory"; continue; fi
  if [ ! -w "$dir" ]; then echo "err cannot write in $dir"; continue; fi
  echo ok
done
"#;

/// Reads `tmp dest sha256 size` lines on stdin; for each, checks the pushed temporary
/// file (regular, right size, right digest when `sha256sum` exists), renames it over the
/// destination, and prints `ok sha256|size` or `err <why>` (removing the temporary file).
const COMMIT: &str = r#"while read -r tmp dest want_sum want_size; do
  if [ ! -f "$tmp" ] || [ -L "$tmp" ]; then echo "err the pushed file is missing (pct push failed)"; continue; fi
  size=$(wc -c < "$tmp"); size=$((size + 0))
  if [ "$size" != "$want_size" ]; then rm -f "$tmp"; echo "err verification failed: $size bytes in the container instead of $want_size"; continue; fi
  how=size
  if command -v sha256sum >/dev/null 2>&1; then
    sum=$(sha256sum < "$tmp"); sum=${sum%% *}
    if [ "$sum" != "$want_sum" ]; then rm -f "$tmp"; echo "err verification failed: the content in the container differs (sha256)"; continue; fi
    how=sha256
  fi
  if mv -f "$tmp" "$dest" 2>/dev/null; then echo "ok $how"; else rm -f "$tmp"; echo "err cannot rename into $dest"; fi
done
"#;

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

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
        .chars()
        .take(300)
        .collect()
}

impl Transport for PctTransport {
    fn name(&self) -> &'static str {
        "pct"
    }

    fn calls(&self) -> u32 {
        self.invocations
    }

    fn deliver_all(&mut self, files: &[Delivery]) -> Vec<Result<Verified, DeliverError>> {
        let fail_all = |e: DeliverError| files.iter().map(|_| Err(e.clone())).collect::<Vec<_>>();
        // 1. Parents, in one `pct exec`.
        let mut argv = vec!["/bin/sh", "-c", PREPARE, "phx-hook"];
        argv.extend(files.iter().map(|d| d.dest.as_str()));
        let (o, out, err) = match self.exec(&argv, None) {
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
        let prepared: Vec<&str> = out.lines().collect();
        let mut results: Vec<Option<Result<Verified, DeliverError>>> = files
            .iter()
            .enumerate()
            .map(|(i, _)| match prepared.get(i) {
                Some(&"ok") => None,
                Some(l) => Some(Err(DeliverError::File(
                    l.strip_prefix("err ").unwrap_or(l).to_string(),
                ))),
                None => Some(Err(DeliverError::File(
                    "the container did not answer for this file".into(),
                ))),
            })
            .collect();
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
            let tmp = super::temp_name(&d.dest, i);
            match self.push(d, &tmp) {
                Ok(()) => {
                    commit.extend_from_slice(
                        format!(
                            "{tmp} {} {} {}\n",
                            d.dest,
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
            match self.exec(&["/bin/sh", "-c", COMMIT, "phx-hook"], Some(&commit)) {
                Ok((_, out, _)) => {
                    let lines: Vec<&str> = out.lines().collect();
                    for (k, &i) in committed.iter().enumerate() {
                        results[i] = Some(match lines.get(k) {
                            Some(&"ok sha256") => Ok(Verified::Digest),
                            Some(&"ok size") => Ok(Verified::Size),
                            Some(l) => Err(DeliverError::File(
                                l.strip_prefix("err ").unwrap_or(l).to_string(),
                            )),
                            None => Err(DeliverError::File(
                                "the container did not confirm this file".into(),
                            )),
                        });
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

    fn run(&mut self, argv: &[String]) -> Result<CommandOutcome, DeliverError> {
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let vmid = self.vmid.to_string();
        let mut c = self.pct();
        c.args(["exec", &vmid, "--keep-env", "0", "--"]).args(&args);
        run_bounded(&mut c, None, self.timeout.max(Duration::from_secs(30))).map(|(o, _, _)| o)
    }
}
