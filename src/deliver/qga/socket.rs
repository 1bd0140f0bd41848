//! One short connection to a QEMU guest agent socket, with `guest-sync-delimited`
//! framing: `0xFF` plus a sync request resets the agent's parser; everything up to the
//! `0xFF` the agent puts before its reply is discarded, and replies are read until the
//! one with our id (a VM's virtio-serial delivers stale replies of an earlier client
//! first). Every read and write has a deadline, and the agent is hostile until proven
//! otherwise: a reply line is at most [`MAX_REPLY`] bytes, it is parsed into the small
//! typed reply phx-hook expects (never a generic JSON tree: a line of `[1,1,1,...]`
//! would cost 16 times its size), and any text from it is escaped and truncated.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// The most a single reply line may hold. phx-hook's own programs print a line per file,
/// and `after` commands run without captured output, so real replies are small.
pub(crate) const MAX_REPLY: usize = 4 << 20;

/// A reply: `{"return": ...}` or `{"error": {...}}`; anything else on a line is noise.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "return", borrow, default)]
    ret: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<AgentError>,
}

#[derive(Deserialize)]
struct AgentError {
    #[serde(default)]
    class: String,
    #[serde(default)]
    desc: String,
}

/// A guest-agent protocol failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QgaError {
    #[error("no agent socket at `{0}`")]
    NoSocket(String),
    #[error("the agent socket `{0}` refuses connections")]
    Refused(String),
    #[error("failed to connect to `{path}`: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("the guest agent did not answer {what} within {secs:.1}s")]
    Timeout { what: String, secs: f64 },
    #[error("the guest agent closed the connection during {0}")]
    Closed(String),
    #[error("I/O error talking to the guest agent: {0}")]
    Io(std::io::Error),
    /// `class` and `desc` are the agent's text, escaped and truncated.
    #[error("the guest agent answered {what} with {class}: {desc}")]
    Agent {
        what: String,
        class: String,
        desc: String,
    },
    #[error("unexpected reply from the guest agent to {what}: {detail}")]
    Protocol { what: String, detail: String },
}

impl QgaError {
    /// The agent exists but refuses a command (blocked with `-b`/`--block-rpcs`, or unknown).
    pub(crate) fn is_command_forbidden(&self) -> bool {
        matches!(self, QgaError::Agent { class, desc, .. }
            if class == "CommandNotFound" || desc.contains("has been disabled"))
    }

    /// The agent refuses the command because the guest's filesystems are frozen (a
    /// backup's fs-freeze): transient. QEMU's `ga_set_frozen` disables every command but
    /// ping, info, sync and fsfreeze-status/thaw "with the reason "the agent is in frozen
    /// state" (qga/main.c; `qmp_dispatch` prints "Command X has been disabled: REASON").
    pub(crate) fn is_frozen(&self) -> bool {
        matches!(self, QgaError::Agent { desc, .. } if desc.contains("frozen state"))
    }

    /// Nothing answers on the socket (not running / not enabled / not up yet).
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(
            self,
            QgaError::NoSocket(_)
                | QgaError::Refused(_)
                | QgaError::Connect { .. }
                | QgaError::Closed(_)
        ) || matches!(self, QgaError::Timeout { what, .. } if what == "guest-sync-delimited")
    }
}

/// An open, synchronised connection.
pub(crate) struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    timeout: Duration,
    /// Commands sent on this connection (its sync handshake not counted).
    pub(crate) requests: u32,
}

impl Conn {
    /// Connect and synchronise, within `timeout`.
    pub(crate) fn open(path: &Path, timeout: Duration) -> Result<Conn, QgaError> {
        let shown = path.display().to_string();
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => QgaError::NoSocket(shown.clone()),
            std::io::ErrorKind::ConnectionRefused => QgaError::Refused(shown.clone()),
            _ => QgaError::Connect {
                path: shown.clone(),
                source: e,
            },
        })?;
        let mut c = Conn {
            stream,
            buf: Vec::new(),
            timeout,
            requests: 0,
        };
        c.sync()?;
        Ok(c)
    }

    fn sync(&mut self) -> Result<(), QgaError> {
        let id = sync_id();
        let what = "guest-sync-delimited";
        let deadline = Instant::now() + self.timeout;
        let mut req = vec![0xFFu8];
        req.extend_from_slice(
            format!("{{\"execute\":\"{what}\",\"arguments\":{{\"id\":{id}}}}}\n").as_bytes(),
        );
        self.send(&req, deadline, what)?;
        loop {
            // Discard everything up to and including the agent's 0xFF marker.
            loop {
                if let Some(i) = self.buf.iter().position(|&b| b == 0xFF) {
                    self.buf.drain(..=i);
                    break;
                }
                self.buf.clear();
                self.fill(deadline, what)?;
            }
            let line = self.line(deadline, what)?;
            // A stale reply to an earlier client's sync, or garbage: keep looking.
            if let Ok(Envelope { ret: Some(r), .. }) = serde_json::from_slice(&line)
                && serde_json::from_str::<u64>(r.get()).ok() == Some(id)
            {
                return Ok(());
            }
        }
    }

    /// Send one command (a JSON object followed by a newline, built by the caller) and
    /// return its `return` value as `T`. Lines that are not a reply (garbage) are skipped;
    /// a reply of the wrong shape is an error.
    pub(crate) fn call<T: DeserializeOwned>(
        &mut self,
        what: &str,
        request: &[u8],
        timeout: Duration,
    ) -> Result<T, QgaError> {
        let deadline = Instant::now() + timeout;
        self.requests += 1;
        self.send(request, deadline, what)?;
        loop {
            let line = self.line(deadline, what)?;
            if let Some(r) = reply(what, &line) {
                return r;
            }
        }
    }

    fn send(&mut self, bytes: &[u8], deadline: Instant, what: &str) -> Result<(), QgaError> {
        let mut off = 0;
        while off < bytes.len() {
            let left = remaining(deadline, what, self.timeout)?;
            self.stream
                .set_write_timeout(Some(left))
                .map_err(QgaError::Io)?;
            match self.stream.write(&bytes[off..]) {
                Ok(0) => return Err(QgaError::Closed(what.to_string())),
                Ok(n) => off += n,
                Err(e) if is_timeout(&e) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Err(QgaError::Closed(what.to_string()));
                }
                Err(e) => return Err(QgaError::Io(e)),
            }
        }
        Ok(())
    }

    fn line(&mut self, deadline: Instant, what: &str) -> Result<Vec<u8>, QgaError> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                return Ok(line);
            }
            if self.buf.len() > MAX_REPLY {
                return Err(QgaError::Protocol {
                    what: what.to_string(),
                    detail: format!("a reply line is longer than {MAX_REPLY} bytes"),
                });
            }
            self.fill(deadline, what)?;
        }
    }

    fn fill(&mut self, deadline: Instant, what: &str) -> Result<(), QgaError> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let left = remaining(deadline, what, self.timeout)?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(QgaError::Io)?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(QgaError::Closed(what.to_string())),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if is_timeout(&e) || e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(QgaError::Io(e)),
            }
        }
    }
}

/// One line from the agent as a reply to `what`: `None` for a line that is no reply
/// (garbage, or a stale reply phx-hook skips), else the typed value or the agent's error.
pub(crate) fn reply<T: DeserializeOwned>(what: &str, line: &[u8]) -> Option<Result<T, QgaError>> {
    let env = serde_json::from_slice::<Envelope<'_>>(line).ok()?;
    if let Some(r) = env.ret {
        return Some(
            serde_json::from_str(r.get()).map_err(|e| QgaError::Protocol {
                what: what.to_string(),
                detail: format!(
                    "its reply does not have the expected shape ({})",
                    e.classify_text()
                ),
            }),
        );
    }
    env.error.map(|e| {
        Err(QgaError::Agent {
            what: what.to_string(),
            class: crate::text::shown(e.class.as_bytes(), 60),
            desc: crate::text::guest(e.desc.as_bytes()),
        })
    })
}

/// The kind of a JSON error, without serde_json's text (which can quote the input).
trait ClassifyText {
    fn classify_text(&self) -> &'static str;
}

impl ClassifyText for serde_json::Error {
    fn classify_text(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Data => "wrong types",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Eof => "cut short",
            serde_json::error::Category::Io => "unreadable",
        }
    }
}

fn remaining(deadline: Instant, what: &str, timeout: Duration) -> Result<Duration, QgaError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(QgaError::Timeout {
            what: what.to_string(),
            secs: timeout.as_secs_f64(),
        });
    }
    Ok(left)
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// A sync id unlikely to match a stale reply: time and pid mixed, kept below 2^53 so
/// every JSON parser reads it exactly.
fn sync_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = nanos ^ (u64::from(std::process::id()) << 20) ^ SEQ.fetch_add(1, Ordering::Relaxed);
    (mixed & ((1 << 53) - 1)).max(1)
}
