//! The QEMU guest-agent transport: files reach a VM through the agent socket Proxmox
//! itself uses (`<qga_socket_dir>/<vmid>.qga`), each call on a short connection: sync,
//! `guest-exec` of one of the guest programs (`deliver::guest`, POSIX `sh`, busybox
//! included) with names and content on stdin (never argv, which the agent logs; never
//! `guest-file-open`, which creates files 0666), and a bounded poll of
//! `guest-exec-status`. Small files go many to one `guest-exec`; a large one goes in
//! pieces through a private staging directory. Every file is verified in the guest
//! (sha256, or its size without `sha256sum`) and the report checked here too.

pub(crate) mod proto;
pub(crate) mod socket;

use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::guest::{self, AGENT_BATCH, AGENT_CHUNK};
use super::{CommandOutcome, DeliverError, Transport, Verified};
use crate::plan::Delivery;
use crate::text;
use crate::types::Vmid;
use serde::de::{self, DeserializeOwned};
use socket::{Conn, QgaError};

/// The largest piece of content sent in one `guest-exec` (one agent message is bounded,
/// and a VM's virtio-serial is slow; PROXMOX.md §4 and TESTLAB A2).
pub const CHUNK: usize = 1024 * 1024;

/// Files up to this size go into one `guest-exec` together (at most [`CHUNK`] bytes per
/// batch): one connection and a handful of agent requests for all of them, instead of a
/// round of requests per file.
pub const BATCH_FILE_MAX: usize = 64 * 1024;

/// The guest-agent transport for one VM.
pub struct QgaTransport {
    vmid: Vmid,
    socket: PathBuf,
    timeout: Duration,
    /// Agent requests so far: commands, each on a connection of its own opened with a
    /// `guest-sync-delimited` handshake (not counted). For benchmarks and tests.
    pub requests: u32,
}

impl QgaTransport {
    /// A transport for `vmid` whose agent socket is `socket`; `timeout` bounds each command.
    pub fn new(vmid: Vmid, socket: PathBuf, timeout: Duration) -> QgaTransport {
        QgaTransport {
            vmid,
            socket,
            timeout,
            requests: 0,
        }
    }

    /// Poll `guest-ping` with backoff until the agent answers or `bound` passes.
    /// Returns how long it took. Each attempt holds the socket at most [`SHORT`]: QEMU
    /// serves one client at a time, and Proxmox's own agent calls (`qm shutdown`, a
    /// backup's fs-freeze, the GUI) give up after 3 to 5 seconds.
    pub fn wait(&mut self, bound: Duration) -> Result<Duration, DeliverError> {
        self.wait_unless(bound, &|| None)
    }

    /// [`QgaTransport::wait`], giving up (with [`DeliverError::Cancelled`]) as soon as
    /// `cancel` gives a reason: the VM's QEMU is gone, a newer start took over.
    pub fn wait_unless(
        &mut self,
        bound: Duration,
        cancel: &dyn Fn() -> Option<String>,
    ) -> Result<Duration, DeliverError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            if let Some(why) = cancel() {
                return Err(DeliverError::Cancelled(why));
            }
            let left = bound.saturating_sub(start.elapsed());
            let short = left.min(SHORT).max(Duration::from_millis(100));
            let attempt = Conn::open(&self.socket, short).and_then(|mut c| {
                let r = c.call::<de::IgnoredAny>("guest-ping", &proto::ping(), short);
                self.requests += c.requests;
                r.map(drop)
            });
            match attempt {
                Ok(()) => return Ok(start.elapsed()),
                Err(e) if start.elapsed() + pause >= bound => {
                    return Err(DeliverError::Unreachable(format!(
                        "the guest agent of VM {} did not answer within {:.0}s ({})",
                        self.vmid,
                        bound.as_secs_f64(),
                        self.describe(&e)
                    )));
                }
                Err(_) => {
                    sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// One request on a connection of its own, closed right after: the socket is never
    /// held while a command runs in the guest.
    fn request<T: DeserializeOwned>(
        &mut self,
        what: &str,
        req: &[u8],
        timeout: Duration,
    ) -> Result<T, QgaError> {
        let mut c = Conn::open(&self.socket, self.timeout)?;
        let r = c.call(what, req, timeout);
        self.requests += c.requests;
        r
    }

    fn describe(&self, e: &QgaError) -> String {
        match e {
            QgaError::NoSocket(_) | QgaError::Refused(_) => {
                format!(
                    "agent not running or not enabled for VM {} ({e})",
                    self.vmid
                )
            }
            _ => e.to_string(),
        }
    }

    fn classify(&self, e: QgaError) -> DeliverError {
        if e.is_frozen() {
            return DeliverError::Unreachable(format!(
                "the guest's filesystems stayed frozen (a backup's fs-freeze) for more than {:.0}s",
                FROZEN_WAIT.as_secs_f64()
            ));
        }
        if e.is_command_forbidden() {
            return DeliverError::Unreachable(format!(
                "the guest agent of VM {} forbids guest-exec ({}); enable it in the guest's qemu-ga configuration",
                self.vmid,
                match &e {
                    QgaError::Agent { desc, .. } => desc.as_str(),
                    _ => "",
                }
            ));
        }
        if e.is_unreachable() {
            return DeliverError::Unreachable(self.describe(&e));
        }
        DeliverError::File(e.to_string())
    }

    /// Whether a refused `guest-exec` is a freeze: say so in the reply (QEMU since 2020),
    /// or, for an older agent that only says "has been disabled for this instance",
    /// ask `guest-fsfreeze-status`, which stays allowed while frozen.
    fn frozen(&mut self, e: &QgaError) -> bool {
        if e.is_frozen() {
            return true;
        }
        if !e.is_command_forbidden() {
            return false;
        }
        let req = b"{\"execute\":\"guest-fsfreeze-status\"}\n";
        matches!(
            self.request::<String>("guest-fsfreeze-status", req, SHORT)
                .as_deref(),
            Ok("frozen")
        )
    }

    /// Run one `guest-exec` and wait (bounded) for it to exit, with a fresh short
    /// connection for the start and for every poll. While the guest's filesystems are
    /// frozen the agent refuses `guest-exec`; that passes (a backup thaws them within
    /// minutes), so it is retried for up to [`FROZEN_WAIT`].
    fn exec_wait(
        &mut self,
        path: &str,
        args: &[&str],
        input: Option<&[u8]>,
        capture: bool,
        bound: Duration,
    ) -> Result<proto::Exited, DeliverError> {
        let req = proto::exec(path, args, input, capture);
        let first = Instant::now();
        let mut pause = Duration::from_millis(200);
        let started = loop {
            match self.request::<proto::Started>("guest-exec", &req, bound) {
                Ok(s) => break s,
                Err(e) if first.elapsed() + pause < FROZEN_WAIT && self.frozen(&e) => {
                    sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(self.classify(e)),
            }
        };
        drop(req);
        self.poll_until_done(started.pid, bound, Duration::ZERO)
    }

    /// Poll `guest-exec-status` for `pid`, each time on a fresh connection, until the
    /// command exits or `bound` passes; the first poll after `first`, then at doubling
    /// intervals from 1 ms: at most 20 ms apart for the first second (a delivery script
    /// takes tens of milliseconds, and a poll costs the agent a fraction of one), at most
    /// 100 ms apart after that (an `after` command that restarts a service).
    fn poll_until_done(
        &mut self,
        pid: i64,
        bound: Duration,
        first: Duration,
    ) -> Result<proto::Exited, DeliverError> {
        let started = Instant::now();
        let deadline = started + bound;
        sleep(first);
        let mut pause = Duration::from_millis(1).max(first);
        loop {
            let status = self
                .request::<proto::Status>(
                    "guest-exec-status",
                    &proto::exec_status(pid),
                    self.timeout,
                )
                .map_err(|e| self.classify(e))?;
            if let Some(done) = proto::exited(status) {
                return Ok(done);
            }
            if Instant::now() + pause > deadline {
                return Err(DeliverError::File(format!(
                    "the command in VM {} did not finish within {:.0}s",
                    self.vmid,
                    bound.as_secs_f64()
                )));
            }
            sleep(pause);
            let cap = if started.elapsed() < Duration::from_secs(1) {
                Duration::from_millis(20)
            } else {
                Duration::from_millis(100)
            };
            pause = (pause * 2).min(cap);
        }
    }
}

impl QgaTransport {
    /// What the VM holds at `dests`, with the standalone probe program (`stat`, no file
    /// read) and the guest's boot id: the reconciler's check of a guest in sync, in two
    /// agent requests (`guest-exec`, then one `guest-exec-status` 10 ms later) when the
    /// program is done by then, which it is on an idle guest. Each request has a
    /// connection of its own, like every other command: the socket is never held.
    pub fn probe(&mut self, looks: &[super::Look]) -> Result<super::Observed, DeliverError> {
        let input = guest::probe_input(looks);
        let args = ["-c", guest::AGENT_PROBE.as_str(), "phx-hook"];
        let req = proto::exec("/bin/sh", &args, Some(input.as_bytes()), true);
        let started = match self.request::<proto::Started>("guest-exec", &req, self.timeout) {
            Ok(s) => s,
            // A freeze outside a backup (a backup is skipped earlier, by its lock): look
            // again on the next pass rather than wait here.
            Err(e) if self.frozen(&e) => {
                return Err(DeliverError::Unreachable(
                    "the guest's filesystems are frozen".into(),
                ));
            }
            Err(e) => return Err(no_shell(self.classify(e))),
        };
        let done = self.poll_until_done(started.pid, self.timeout, PROBE_FIRST_POLL)?;
        Ok(parse_probe(&done.out, looks.len()))
    }
}

/// How long the probe program is given before its first `guest-exec-status`: an idle
/// guest's agent forks a shell that runs one `stat` in a few milliseconds.
const PROBE_FIRST_POLL: Duration = Duration::from_millis(10);

/// The probe program's report: `boot ID`, then per destination `ok INO SIZE MTIME CTIME
/// MODE UID GID`, `missing` or `nostat`. Anything malformed counts as unknown.
pub(crate) fn parse_probe(out: &[u8], n: usize) -> super::Observed {
    let text = String::from_utf8_lossy(out);
    let mut lines = text.lines();
    let boot = lines
        .next()
        .and_then(|l| l.strip_prefix("boot "))
        .filter(|b| *b != "-" && b.len() <= 64)
        .map(|b| text::shown(b.as_bytes(), 64));
    let mut files: Vec<super::Seen> = lines
        .take(n)
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            match f.as_slice() {
                ["missing"] => super::Seen::Missing,
                ["ok", ino, size, mtime, ctime, mode, uid, gid] => (|| {
                    Some(super::Seen::File(super::FileSig {
                        ino: ino.parse().ok()?,
                        size: size.parse().ok()?,
                        mtime: mtime.parse().ok()?,
                        ctime: ctime.parse().ok()?,
                        mode: u32::from_str_radix(mode, 8).ok()?,
                        uid: uid.parse().ok()?,
                        gid: gid.parse().ok()?,
                    }))
                })()
                .unwrap_or(super::Seen::Unknown),
                _ => super::Seen::Unknown,
            }
        })
        .collect();
    files.resize(n, super::Seen::Unknown);
    super::Observed { boot, files }
}

/// How long one attempt to reach the agent may hold its socket while phx-hook waits for
/// the agent to come up (Proxmox's own `guest-ping` gives up after 3 s).
pub const SHORT: Duration = Duration::from_secs(1);

/// How long a frozen guest (a backup's fs-freeze, which Proxmox thaws within 3 minutes
/// at most: `guest-fsfreeze-thaw` has a 3 min timeout in PVE::QemuServer::Monitor) is
/// waited for before a delivery gives up.
pub const FROZEN_WAIT: Duration = Duration::from_secs(200);

/// Check the chunk program's `phx-ok <how> <size> <sum>` line against what was sent.
pub(crate) fn check_report(out: &[u8], d: &Delivery) -> Result<Verified, DeliverError> {
    let text = String::from_utf8_lossy(out);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("phx-ok "))
        .unwrap_or("");
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.get(2).and_then(|s| s.parse::<usize>().ok()) != Some(d.content.len()) {
        return Err(DeliverError::File(
            "verification failed: the guest reported a different size than was sent".into(),
        ));
    }
    check_proof(d, f.get(1).copied(), f.get(3).copied())
}

impl QgaTransport {
    /// Run `argv` in the guest and return its outcome and standard output (for checks
    /// and diagnostics; never used for anything that could print a secret).
    pub fn capture(&mut self, argv: &[String]) -> Result<(CommandOutcome, Vec<u8>), DeliverError> {
        let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
        let done = self.exec_wait(&argv[0], &args, None, true, self.timeout)?;
        Ok((
            CommandOutcome {
                exitcode: done.exitcode,
                signal: done.signal,
            },
            done.out,
        ))
    }
}

impl QgaTransport {
    /// Deliver `idx` (small files) with one `guest-exec` of the batch program.
    fn deliver_batch(
        &mut self,
        files: &[Delivery],
        idx: &[usize],
    ) -> Result<Vec<Result<Verified, DeliverError>>, DeliverError> {
        let total: usize = idx.iter().map(|&i| files[i].content.len()).sum();
        let mut input = Zeroizing::new(Vec::with_capacity(256 * idx.len() + total));
        input.extend_from_slice(format!("{}\n", idx.len()).as_bytes());
        for &i in idx {
            let d = &files[i];
            input.extend_from_slice(header(d, &[&guest::temp_name(&d.dest)]).as_bytes());
            input.extend_from_slice(d.content.expose());
        }
        let args = ["-c", AGENT_BATCH.as_str(), "phx-hook"];
        let bound = self.timeout
            + Duration::from_millis(20 * idx.len() as u64)
            + Duration::from_secs((total as u64) >> 16);
        let done = self
            .exec_wait("/bin/sh", &args, Some(&input), true, bound)
            .map_err(no_shell)?;
        Ok(batch_results(&done, files, idx))
    }

    /// One large file, in pieces of at most [`CHUNK`] bytes.
    fn deliver_one(&mut self, d: &Delivery) -> Result<Verified, DeliverError> {
        let stage = guest::temp_name(&d.dest);
        let token = guest::token();
        let r = self.deliver_pieces(d, &stage, &token);
        if matches!(r, Err(DeliverError::File(_))) && d.content.len() > CHUNK {
            // Pieces may be left in the staging directory: remove them (best effort).
            let input = piece_header("abort", d, &stage, &token, 0);
            let args = ["-c", AGENT_CHUNK.as_str(), "phx-hook"];
            let _ = self.exec_wait("/bin/sh", &args, Some(input.as_bytes()), true, self.timeout);
        }
        r
    }

    fn deliver_pieces(
        &mut self,
        d: &Delivery,
        stage: &str,
        token: &str,
    ) -> Result<Verified, DeliverError> {
        let content = d.content.expose();
        let pieces: Vec<&[u8]> = if content.is_empty() {
            vec![&[][..]]
        } else {
            content.chunks(CHUNK).collect()
        };
        let last = pieces.len() - 1;
        let tmp = guest::temp_name(&d.dest);
        for (i, piece) in pieces.iter().enumerate() {
            let op = match (i, last) {
                (0, 0) => "whole",
                (0, _) => "first",
                (i, l) if i == l => "last",
                _ => "append",
            };
            let mut head = piece_header(op, d, stage, token, i);
            if op == "whole" || op == "last" {
                head.push_str(&header_tail(d, &tmp));
            }
            let mut input = Zeroizing::new(Vec::with_capacity(head.len() + piece.len()));
            input.extend_from_slice(head.as_bytes());
            input.extend_from_slice(piece);
            let args = ["-c", AGENT_CHUNK.as_str(), "phx-hook"];
            let bound =
                self.timeout + Duration::from_secs(2 * (piece.len() as u64).div_ceil(CHUNK as u64));
            let done = self
                .exec_wait("/bin/sh", &args, Some(&input), true, bound)
                .map_err(no_shell)?;
            if done.exitcode != Some(0) || done.signal.is_some() {
                let msg = text::guest(String::from_utf8_lossy(&done.err).trim().as_bytes());
                return Err(DeliverError::File(match (done.exitcode, done.signal) {
                    (_, Some(s)) => format!("the write program was killed by signal {s}"),
                    _ if msg.is_empty() => {
                        format!("the write program exited {}", done.exitcode.unwrap_or(-1))
                    }
                    _ => msg,
                }));
            }
            if op == "whole" || op == "last" {
                return check_report(&done.out, d);
            }
        }
        Err(DeliverError::File("internal error: no final piece".into()))
    }
}

/// The batch program's report (`ok N HOW PROOF`, `err N WHY`, `fatal WHY`) for the
/// files `idx` of `files`: one result each, the guest's text escaped. The first result
/// for a file counts; a file without one gets the program's fatal reason or exit status.
pub(crate) fn batch_results(
    done: &proto::Exited,
    files: &[Delivery],
    idx: &[usize],
) -> Vec<Result<Verified, DeliverError>> {
    let out = String::from_utf8_lossy(&done.out);
    let mut results: Vec<Option<Result<Verified, DeliverError>>> =
        idx.iter().map(|_| None).collect();
    let mut fatal = None;
    for line in out.lines() {
        if let Some(f) = line.strip_prefix("fatal ") {
            fatal.get_or_insert_with(|| text::guest(f.as_bytes()));
            continue;
        }
        let mut f = line.splitn(3, ' ');
        let (kind, n, rest) = (
            f.next(),
            f.next().and_then(|n| n.parse::<usize>().ok()),
            f.next().unwrap_or(""),
        );
        let Some(n) = n.filter(|n| (1..=idx.len()).contains(n) && results[n - 1].is_none()) else {
            continue;
        };
        let d = &files[idx[n - 1]];
        results[n - 1] = match kind {
            Some("ok") => {
                let mut w = rest.split(' ');
                Some(check_proof(d, w.next(), w.next()))
            }
            Some("err") => Some(Err(DeliverError::File(text::guest(rest.as_bytes())))),
            _ => None,
        };
    }
    let status = match (fatal, done.exitcode, done.signal) {
        (Some(f), _, _) => f,
        (None, _, Some(s)) => format!("the write program was killed by signal {s}"),
        (None, c, None) => format!(
            "the write program ended (exit {}) without a result for this file",
            c.unwrap_or(-1)
        ),
    };
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(DeliverError::File(status.clone()))))
        .collect()
}

/// The lines the guest programs read for one file: directory, name, mode, owner, group,
/// then `extra` (the batch program's temporary name), size and sha256.
fn header(d: &Delivery, extra: &[&str]) -> String {
    let mut h = format!(
        "{}\n{}\n{:04o}\n{}\n{}\n",
        d.dest.parent(),
        d.dest.file_name(),
        d.mode,
        d.owner,
        d.group
    );
    for e in extra {
        h.push_str(e);
        h.push('\n');
    }
    h.push_str(&format!(
        "{}\n{}\n",
        d.content.len(),
        crate::types::hex(&Sha256::digest(d.content.expose()))
    ));
    h
}

/// The chunk program's first lines.
fn piece_header(op: &str, d: &Delivery, stage: &str, token: &str, piece: usize) -> String {
    format!(
        "{op}\n{}\n{}\n{stage}\n{token}\n{piece}\n",
        d.dest.parent(),
        d.dest.file_name()
    )
}

/// The chunk program's lines for `whole` and `last`.
fn header_tail(d: &Delivery, tmp: &str) -> String {
    format!(
        "{:04o}\n{}\n{}\n{tmp}\n{}\n{}\n",
        d.mode,
        d.owner,
        d.group,
        d.content.len(),
        crate::types::hex(&Sha256::digest(d.content.expose()))
    )
}

/// A guest without /bin/sh cannot run the programs.
fn no_shell(e: DeliverError) -> DeliverError {
    match e {
        DeliverError::File(m) if m.contains("Failed to execute child process") => {
            DeliverError::Unreachable("the guest has no /bin/sh".into())
        }
        other => other,
    }
}

/// The guest's proof (`sha256 DIGEST` or `size -`) against what was sent.
fn check_proof(
    d: &Delivery,
    how: Option<&str>,
    proof: Option<&str>,
) -> Result<Verified, DeliverError> {
    match (how, proof) {
        (Some("sha256"), Some(p))
            if p == crate::types::hex(&Sha256::digest(d.content.expose())) =>
        {
            Ok(Verified::Digest)
        }
        (Some("size"), Some("-")) => Ok(Verified::Size),
        _ => Err(DeliverError::File(
            "verification failed: the guest reported different content than was sent".into(),
        )),
    }
}

impl Transport for QgaTransport {
    fn name(&self) -> &'static str {
        "qga"
    }

    fn deliver_all(&mut self, files: &[Delivery]) -> Vec<Result<Verified, DeliverError>> {
        super::with_ram(self, files)
    }

    fn calls(&self) -> u32 {
        self.requests
    }

    fn run(&mut self, argv: &[String]) -> Result<CommandOutcome, DeliverError> {
        let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
        let bound = self.timeout.max(Duration::from_secs(30));
        let done = self.exec_wait(&argv[0], &args, None, false, bound)?;
        Ok(CommandOutcome {
            exitcode: done.exitcode,
            signal: done.signal,
        })
    }
}

impl super::Steps for QgaTransport {
    fn ram_check(&mut self) -> Result<(), DeliverError> {
        let args = ["-c", guest::RAM_DIR.as_str(), "phx-hook"];
        let input = guest::ram_dir_input();
        let done = self
            .exec_wait("/bin/sh", &args, Some(input.as_bytes()), true, self.timeout)
            .map_err(no_shell)?;
        guest::ram_dir_result(&String::from_utf8_lossy(&done.out)).map_err(DeliverError::File)
    }

    fn link(
        &mut self,
        links: &[(usize, &crate::types::GuestPath, &crate::types::GuestPath)],
    ) -> Vec<Result<(), String>> {
        let args = ["-c", guest::LINK.as_str(), "phx-hook"];
        let input = guest::link_input(links);
        match self.exec_wait("/bin/sh", &args, Some(input.as_bytes()), true, self.timeout) {
            Ok(done) => guest::link_results(&String::from_utf8_lossy(&done.out), links.len()),
            Err(e) => links.iter().map(|_| Err(e.to_string())).collect(),
        }
    }

    fn write_files(&mut self, files: &[Delivery]) -> Vec<Result<Verified, DeliverError>> {
        let mut results: Vec<Option<Result<Verified, DeliverError>>> =
            files.iter().map(|_| None).collect();
        // Small files in batches of at most CHUNK bytes; large ones one by one, chunked.
        let mut batches: Vec<Vec<usize>> = Vec::new();
        let mut size = 0;
        for (i, d) in files
            .iter()
            .enumerate()
            .filter(|(_, d)| d.content.len() <= BATCH_FILE_MAX)
        {
            match batches.last_mut() {
                Some(b) if size + d.content.len() <= CHUNK => b.push(i),
                _ => {
                    batches.push(vec![i]);
                    size = 0;
                }
            }
            size += d.content.len();
        }
        let mut unreachable: Option<DeliverError> = None;
        for b in batches {
            let r = match &unreachable {
                Some(e) => Err(e.clone()),
                None => self.deliver_batch(files, &b),
            };
            match r {
                Ok(rs) => {
                    for (&i, r) in b.iter().zip(rs) {
                        results[i] = Some(r);
                    }
                }
                Err(e) => {
                    if matches!(e, DeliverError::Unreachable(_)) {
                        unreachable = Some(e.clone());
                    }
                    for &i in &b {
                        results[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        for (i, d) in files
            .iter()
            .enumerate()
            .filter(|(_, d)| d.content.len() > BATCH_FILE_MAX)
        {
            let r = match &unreachable {
                Some(e) => Err(e.clone()),
                None => self.deliver_one(d),
            };
            if let Err(e @ DeliverError::Unreachable(_)) = &r {
                unreachable = Some(e.clone());
            }
            results[i] = Some(r);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(DeliverError::File("not attempted".into()))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(content: &[u8]) -> Delivery {
        Delivery {
            dest: "/etc/x".parse().unwrap(),
            format: "raw",
            keys: Vec::new(),
            mode: 0o600,
            owner: crate::manifest::Owner::Name("root".into()),
            group: crate::manifest::Owner::Id(0),
            content: crate::vault::Secret::copy_from(content),
            store: None,
        }
    }

    #[test]
    fn report_lines() {
        let d = delivery(b"hello");
        let want = crate::types::hex(&Sha256::digest(b"hello"));
        assert_eq!(
            check_report(format!("phx-ok sha256 5 {want}\n").as_bytes(), &d).unwrap(),
            Verified::Digest
        );
        assert_eq!(
            check_report(b"phx-ok size 5 -\n", &d).unwrap(),
            Verified::Size
        );
        assert!(check_report(b"phx-ok size 4 -\n", &d).is_err());
        let other = "cd".repeat(32);
        assert!(check_report(format!("phx-ok sha256 5 {other}\n").as_bytes(), &d).is_err());
        assert!(check_report(b"", &d).is_err());
        assert_eq!(
            header(&d, &["tmpname"]),
            format!("/etc\nx\n0600\nroot\n0\ntmpname\n5\n{want}\n")
        );
    }
}
