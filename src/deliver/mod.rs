//! Delivery: executing a [`Plan`] through a [`Transport`] (the guest agent for VMs;
//! `pct` or the container's namespaces for containers). This module owns the order of
//! work and the per-file outcome; transports own how bytes reach a guest. Core types
//! (config, manifest, vault, plan) know nothing of this module.
//!
//! Every transport keeps DESIGN §4: the file exists with its final owner and mode before
//! the first secret byte is written, it replaces the destination atomically (temporary
//! name in the same directory, then rename), and the result is verified in the guest.

pub(crate) mod guest;
pub mod lxc;
pub mod pct;
pub mod qga;

use std::time::{Duration, Instant};

use crate::plan::{Delivery, Plan};
use crate::types::GuestPath;

/// What a guest holds now at a set of destinations, read without reading any file: the
/// reconciler's cheap check (and what a delivery records afterwards).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Observed {
    /// Which boot of the guest this is: a VM's kernel boot id, a container init's pid and
    /// start time. It changes when the guest reboots, even from inside.
    pub boot: Option<String>,
    /// Per destination, in the order asked: its metadata, or `None` when it is not there
    /// as a regular file. `Unknown` entries are guests that cannot say (no `stat`).
    pub files: Vec<Seen>,
}

/// One destination, as found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seen {
    /// A regular file with this metadata.
    File(FileSig),
    /// Not there, or not a regular file.
    Missing,
    /// The guest could not tell.
    Unknown,
}

/// A file's metadata, enough to notice that it was replaced, edited, re-owned or
/// re-moded since phx-hook wrote it (inode, size, times, mode, owner), without its content.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileSig {
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds).
    pub mtime: i64,
    /// Change time (seconds): any write, chmod, chown or rename updates it.
    pub ctime: i64,
    /// Permission bits.
    pub mode: u32,
    /// Owner (as the prober sees it).
    pub uid: u32,
    /// Group (as the prober sees it).
    pub gid: u32,
}

/// How a delivered file was verified in the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verified {
    /// SHA-256 of the file in the guest matched.
    Digest,
    /// Only the size could be compared (the guest has no `sha256sum`).
    Size,
}

/// A delivery failure. Messages never hold a value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DeliverError {
    /// The guest cannot be reached at all (agent down, container stopped, ...): no
    /// further file is tried.
    #[error("{0}")]
    Unreachable(String),
    /// This file failed; others may still succeed.
    #[error("{0}")]
    File(String),
    /// Delivery was given up on purpose, before anything was written: the guest stopped
    /// (a backup of a stopped VM never boots), or a newer start of the guest took over.
    #[error("{0}")]
    Cancelled(String),
}

/// The result of one `after` command.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CommandOutcome {
    /// Exit code, if it exited.
    pub exitcode: Option<i32>,
    /// Signal, if it was killed.
    pub signal: Option<i32>,
}

impl CommandOutcome {
    /// Exit 0.
    pub fn success(&self) -> bool {
        self.exitcode == Some(0) && self.signal.is_none()
    }
}

/// A way to put files into a guest and run commands there.
pub trait Transport {
    /// The transport's name, for messages and audit lines.
    fn name(&self) -> &'static str;

    /// Write every file, in order; one result per file. Each file is written the same
    /// way: parents, temporary file with final owner and mode, content, verification,
    /// rename, so on error nothing is left at its destination that was not there before.
    /// Once the guest is unreachable the remaining files fail with that error untried.
    fn deliver_all(&mut self, files: &[Delivery]) -> Vec<Result<Verified, DeliverError>>;

    /// Run `argv` in the guest (no shell) and wait for it, bounded.
    fn run(&mut self, argv: &[String]) -> Result<CommandOutcome, DeliverError>;

    /// How much work reached the guest so far: agent requests (qga), `pct` invocations
    /// (pct) or processes started (native). Reported by benchmarks and `inject --json`.
    fn calls(&self) -> u32;
}

/// What happened to one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileResult {
    /// Destination in the guest.
    pub dest: String,
    /// Bytes written.
    pub size: usize,
    /// Vault keys in the file.
    pub keys: Vec<String>,
    /// `Ok(how verified)` or the reason it failed.
    #[serde(serialize_with = "ser_outcome")]
    pub outcome: Result<Verified, String>,
}

fn ser_outcome<S: serde::Serializer>(
    o: &Result<Verified, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(2))?;
    match o {
        Ok(v) => {
            m.serialize_entry("ok", &true)?;
            m.serialize_entry("verified", v)?;
        }
        Err(e) => {
            m.serialize_entry("ok", &false)?;
            m.serialize_entry("error", e)?;
        }
    }
    m.end()
}

/// What happened to one `after` command.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AfterResult {
    /// The argv.
    pub argv: Vec<String>,
    /// Its outcome or why it could not run.
    pub outcome: Result<CommandOutcome, String>,
}

/// The result of executing a plan.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    /// Per file, in plan order.
    pub files: Vec<FileResult>,
    /// Per `after` command.
    pub after: Vec<AfterResult>,
    /// The transport's [`Transport::calls`] for this delivery.
    pub transport_calls: u32,
}

impl Report {
    /// Every file was delivered and verified.
    pub fn files_ok(&self) -> bool {
        self.files.iter().all(|f| f.outcome.is_ok())
    }

    /// Every `after` command ran and exited 0.
    pub fn after_ok(&self) -> bool {
        self.after
            .iter()
            .all(|a| matches!(&a.outcome, Ok(o) if o.success()))
    }
}

/// Progress events, for the caller to print or log.
pub enum Event<'a> {
    /// A file is done (either way).
    File(&'a FileResult),
    /// An `after` command is done.
    After(&'a AfterResult),
}

/// One place the reconciler looks at: the file that holds a delivery's bytes, and, for a
/// RAM-only file, the destination that must be a link to it.
#[derive(Clone, Debug)]
pub struct Look {
    /// Where the bytes are.
    pub file: GuestPath,
    /// The destination that must be a symbolic link to `file` (`storage: ram`).
    pub link: Option<GuestPath>,
}

impl Look {
    /// Where to look for delivery `d`.
    pub fn of(d: &Delivery) -> Look {
        Look {
            file: d.written().clone(),
            link: d.store.as_ref().map(|_| d.dest.clone()),
        }
    }
}

/// The steps of a transport that runs programs in the guest, for [`with_ram`].
pub(crate) trait Steps {
    /// The RAM directory exists, only root can write it, and it is RAM-backed.
    fn ram_check(&mut self) -> Result<(), DeliverError>;
    /// Write `files` at their `dest`.
    fn write_files(&mut self, files: &[Delivery]) -> Vec<Result<Verified, DeliverError>>;
    /// Make each `dest` a link to its `store`; one result per link.
    fn link(&mut self, links: &[(usize, &GuestPath, &GuestPath)]) -> Vec<Result<(), String>>;
}

/// RAM-only files (`storage: ram`) for a transport that runs programs in the guest: check
/// the RAM directory first (`ram_check`; every RAM-only file fails with its error when it
/// fails), write every file at the path it is written to (`write`, given copies whose
/// `dest` is that path), then make each RAM-only file's destination a link to it
/// (`link`, per `(index, dest, store)`). Files without `store` are written as they are.
pub(crate) fn with_ram(
    t: &mut impl Steps,
    files: &[Delivery],
) -> Vec<Result<Verified, DeliverError>> {
    if files.iter().all(|d| d.store.is_none()) {
        return t.write_files(files);
    }
    let ram = t.ram_check();
    let mut out: Vec<Option<Result<Verified, DeliverError>>> = vec![None; files.len()];
    let mut idx = Vec::new();
    let mut writes = Vec::new();
    for (i, d) in files.iter().enumerate() {
        match (&d.store, &ram) {
            (Some(_), Err(e)) => out[i] = Some(Err(ram_error(e))),
            (Some(store), Ok(())) => {
                idx.push(i);
                writes.push(Delivery {
                    dest: store.clone(),
                    ..d.clone()
                });
            }
            (None, _) => {
                idx.push(i);
                writes.push(d.clone());
            }
        }
    }
    for (i, r) in idx.iter().zip(t.write_files(&writes)) {
        out[*i] = Some(r);
    }
    let links: Vec<(usize, &GuestPath, &GuestPath)> = files
        .iter()
        .enumerate()
        .filter_map(|(i, d)| Some((i, &d.dest, d.store.as_ref()?)))
        .filter(|(i, ..)| matches!(out[*i], Some(Ok(_))))
        .collect();
    if !links.is_empty() {
        for ((i, dest, store), r) in links.iter().zip(t.link(&links)) {
            if let Err(why) = r {
                out[*i] = Some(Err(DeliverError::File(format!(
                    "the file is in RAM at {store}, but {dest} could not be made a link to it: {why}"
                ))));
            }
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(DeliverError::File("not attempted".into()))))
        .collect()
}

fn ram_error(e: &DeliverError) -> DeliverError {
    match e {
        DeliverError::File(why) => DeliverError::File(format!(
            "storage: ram, and the guest cannot keep it in RAM: {why}"
        )),
        other => other.clone(),
    }
}

/// Deliver every file of `plan`, then, if all of them succeeded, run the `after`
/// commands. An unreachable guest stops the run; the remaining files are reported as
/// not attempted. A failed `after` command does not undo the files.
pub fn execute(plan: &Plan, t: &mut dyn Transport, progress: &mut dyn FnMut(Event<'_>)) -> Report {
    let results = t.deliver_all(&plan.deliveries);
    let mut report = Report::default();
    for (d, outcome) in plan.deliveries.iter().zip(results) {
        let r = FileResult {
            dest: d.dest.to_string(),
            size: d.content.len(),
            keys: d.keys.iter().map(ToString::to_string).collect(),
            outcome: outcome.map_err(|e| e.to_string()),
        };
        progress(Event::File(&r));
        report.files.push(r);
    }
    if report.files_ok() {
        for argv in &plan.after {
            let r = AfterResult {
                argv: argv.clone(),
                outcome: t.run(argv).map_err(|e| e.to_string()),
            };
            progress(Event::After(&r));
            report.after.push(r);
        }
    }
    report.transport_calls = t.calls();
    report
}

/// The most of a child's stdout or stderr phx-hook keeps (the rest is read and dropped):
/// a container's `sh` or an `after` command can print without end.
pub const MAX_CHILD_OUTPUT: usize = 1 << 20;

/// How long, once a child has exited, its output is still read: a process it left behind
/// (in a container, say) may hold the pipes open for ever.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// Run `cmd` with `input` on stdin (or none), capturing at most [`MAX_CHILD_OUTPUT`]
/// bytes of its stdout and stderr each. Everything is bounded by `bound`: writing stdin
/// (a child that never reads), the child itself (killed, with its whole process group),
/// and reading its output (a grandchild that keeps the pipes open after the child exits
/// is not waited for). Stdin carries secrets where a caller passes them; they never go
/// in argv.
pub(crate) fn run_bounded(
    cmd: &mut std::process::Command,
    input: Option<&[u8]>,
    bound: Duration,
) -> Result<(CommandOutcome, Vec<u8>, Vec<u8>), DeliverError> {
    use std::io::{ErrorKind, Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::Stdio;

    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    let prog = crate::text::guest(cmd.get_program().as_encoded_bytes());
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| DeliverError::Unreachable(format!("failed to run `{prog}`: {e}")))?;
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let nonblock = |fd: std::os::fd::BorrowedFd<'_>| {
        let _ = fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    };
    let file = |fd: std::os::fd::OwnedFd| std::fs::File::from(fd);
    let mut stdin = child.stdin.take().map(|f| file(f.into()));
    let mut stdout = child.stdout.take().map(|f| file(f.into()));
    let mut stderr = child.stderr.take().map(|f| file(f.into()));
    for fd in [
        stdin.as_ref().map(|f| f.as_fd()),
        stdout.as_ref().map(|f| f.as_fd()),
        stderr.as_ref().map(|f| f.as_fd()),
    ]
    .into_iter()
    .flatten()
    {
        nonblock(fd);
    }
    let input = input.unwrap_or_default();
    let mut written = 0;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + bound;
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if exited.is_none()
            && let Ok(Some(s)) = child.try_wait()
        {
            exited = Some((s, Instant::now()));
        }
        if let Some((_, at)) = exited
            && ((stdout.is_none() && stderr.is_none()) || at.elapsed() >= DRAIN_AFTER_EXIT)
        {
            break;
        }
        if Instant::now() >= deadline {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            return Err(DeliverError::File(format!(
                "`{prog}` did not finish within {:.0}s",
                bound.as_secs_f64()
            )));
        }
        if written == input.len() {
            stdin = None; // EOF for the child
        }
        let mut fds = Vec::with_capacity(3);
        if let Some(f) = &stdin {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLOUT));
        }
        if let Some(f) = &stdout {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
        }
        if let Some(f) = &stderr {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
        }
        // Short polls: the child's exit is noticed by try_wait, not by a descriptor.
        let _ = poll(&mut fds, PollTimeout::from(20u8));
        drop(fds);
        if let Some(f) = &mut stdin {
            match f.write(&input[written..]) {
                Ok(n) => written += n,
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
                // The child closed its stdin (exited early): its status tells what happened.
                Err(_) => written = input.len(),
            }
        }
        for (pipe, buf) in [(&mut stdout, &mut out), (&mut stderr, &mut err)] {
            let Some(f) = pipe else { continue };
            match f.read(&mut chunk) {
                Ok(0) => *pipe = None,
                Ok(n) => {
                    let keep = n.min(MAX_CHILD_OUTPUT.saturating_sub(buf.len()));
                    buf.extend_from_slice(&chunk[..keep]);
                }
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
                Err(_) => *pipe = None,
            }
        }
    }
    let Some((status, _)) = exited else {
        return Err(DeliverError::File(format!("`{prog}` vanished")));
    };
    Ok((
        CommandOutcome {
            exitcode: status.code(),
            signal: status.signal(),
        },
        out,
        err,
    ))
}
