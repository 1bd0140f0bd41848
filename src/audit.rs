//! The audit trail (DESIGN §5.7): one JSON object per line, appended in one write under
//! an exclusive lock so concurrent hooks never interleave, each line carrying the SHA-256 of the line
//! before it (`prev`), so an edited, reordered or deleted line breaks the chain. This is
//! the only writer of the audit log. Lines hold key names, destinations, sizes and
//! outcomes, never a value or a digest of one.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::time::SystemTime;

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::types::Vmid;

/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit log.
#[derive(Clone, Debug)]
pub struct Audit {
    path: Utf8PathBuf,
    /// Where lines go when `path` cannot be written (a log on pmxcfs, read-only while the
    /// node has no quorum): each such line says why in `audit_fallback`.
    fallback: Option<Utf8PathBuf>,
}

/// One event to record: an action, its outcome and its details.
#[derive(Clone, Debug)]
pub struct Event {
    /// The guest, if any.
    pub vmid: Option<Vmid>,
    /// The hook phase or the command (`inject`, `check`, ...).
    pub phase: String,
    /// What happened: `decrypt`, `deliver`, `after`, `skip`, ...
    pub action: &'static str,
    /// `ok`, `failed`, `skipped`, ...
    pub outcome: &'static str,
    /// Other fields (keys, dest, size, error, vault digest, ...). Never a value.
    pub details: Map<String, Value>,
}

impl Event {
    /// A new event with no details.
    pub fn new(
        vmid: Option<Vmid>,
        phase: &str,
        action: &'static str,
        outcome: &'static str,
    ) -> Event {
        Event {
            vmid,
            phase: phase.to_string(),
            action,
            outcome,
            details: Map::new(),
        }
    }

    /// Add a detail.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Event {
        self.details.insert(key.to_string(), value.into());
        self
    }
}

impl Audit {
    /// The audit log at `path`, attributing events to this node and the invoking user.
    pub fn new(path: &Utf8Path) -> Audit {
        Audit {
            path: path.to_owned(),
            fallback: None,
        }
    }

    /// The audit log of `cfg` (`audit_log`, else `audit_fallback`).
    pub fn of(cfg: &crate::config::Config) -> Audit {
        Audit {
            path: cfg.audit_log.clone(),
            fallback: Some(cfg.audit_fallback.clone()).filter(|f| *f != cfg.audit_log),
        }
    }

    /// Where the log is.
    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    /// Append `events` as consecutive lines, atomically with respect to other writers; to
    /// the fallback log, saying why, when the log cannot be written.
    pub fn record(&self, events: &[Event]) -> std::io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let e = match append(&self.path, events) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let Some(fallback) = &self.fallback else {
            return Err(e);
        };
        let why = format!("{}: {e}", self.path);
        let marked: Vec<Event> = events
            .iter()
            .cloned()
            .map(|ev| ev.with("audit_fallback", why.clone()))
            .collect();
        append(fallback, &marked)?;
        log::warn!(
            "cannot write the audit log `{}` ({e}); these events went to `{fallback}`",
            self.path
        );
        Ok(())
    }
}

/// Append `events` to the log at `path`.
fn append(path: &Utf8Path, events: &[Event]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    f.lock()?;
    let mut prev = last_line_hash(&mut f)?;
    let mut out = Vec::new();
    let time = now_rfc3339();
    // Looked up here, not in `new`: a hook with nothing to record reads nothing.
    let (node, actor) = (node_name(), actor());
    for e in events {
        let mut m = Map::new();
        m.insert("time".into(), json!(time));
        m.insert("node".into(), json!(node));
        m.insert(
            "vmid".into(),
            e.vmid.map_or(Value::Null, |v| json!(v.get())),
        );
        m.insert("phase".into(), json!(e.phase));
        m.insert("actor".into(), json!(actor));
        m.insert("action".into(), json!(e.action));
        m.insert("outcome".into(), json!(e.outcome));
        for (k, v) in &e.details {
            m.insert(k.clone(), v.clone());
        }
        m.insert("prev".into(), json!(prev));
        let line = serde_json::to_vec(&Value::Object(m)).map_err(std::io::Error::other)?;
        prev = crate::types::hex(&Sha256::digest(&line));
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    // One write(2) under the exclusive lock: other writers never see half a batch.
    // No fsync: every hook writes here, and on a boot storm (or a node on spinning
    // disks) a per-event fsync would serialise the starts behind the disk. The kernel
    // writes the lines back within seconds; a power cut can lose the last of them,
    // which `audit --verify` cannot tell from a shorter log, and never breaks the chain.
    f.write_all(&out)?;
    f.unlock()
}

/// Record `events`, logging (never failing) when the log cannot be written; whether it
/// was. Hooks must not fail a start because the audit log's disk is full.
pub fn write(audit: &Audit, events: &[Event]) -> bool {
    match audit.record(events) {
        Ok(()) => true,
        Err(e) => {
            log::error!("failed to write the audit log `{}`: {e}", audit.path());
            false
        }
    }
}

/// The hash of the last line of an open log (or [`GENESIS`] for an empty one).
fn last_line_hash(f: &mut File) -> std::io::Result<String> {
    let len = f.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(GENESIS.to_string());
    }
    let mut back = 4096u64;
    loop {
        let start = len.saturating_sub(back);
        f.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        Read::by_ref(f).take(len - start).read_to_end(&mut tail)?;
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if let Some(i) = body.iter().rposition(|&b| b == b'\n') {
            return Ok(crate::types::hex(&Sha256::digest(&body[i + 1..])));
        }
        if start == 0 {
            return Ok(crate::types::hex(&Sha256::digest(body)));
        }
        back *= 4;
    }
}

/// The hash `prev` of the line after `line` must carry.
pub fn line_hash(line: &[u8]) -> String {
    crate::types::hex(&Sha256::digest(line))
}

fn node_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Who ran this: `SUDO_USER` if set, else the login uid (the user behind `su`), else the
/// effective uid.
fn actor() -> String {
    if let Ok(u) = std::env::var("SUDO_USER")
        && !u.is_empty()
    {
        return format!("sudo:{u}");
    }
    match fs::read_to_string("/proc/self/loginuid")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        Some(uid) if uid != u32::MAX => format!("loginuid:{uid}"),
        _ => format!("uid:{}", nix::unistd::geteuid()),
    }
}

/// UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// A break in the hash chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    /// 1-based line number of the line whose `prev` does not match.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Check every line's `prev` against the hash of the line before it. Returns the number
/// of lines and every break. (Cutting lines off the end cannot be told from a shorter
/// log by the chain alone.)
pub fn verify(text: &str) -> (usize, Vec<ChainBreak>) {
    let mut prev = GENESIS.to_string();
    let mut breaks = Vec::new();
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        n = i + 1;
        let v: Result<Value, _> = serde_json::from_str(line);
        match v.as_ref().ok().and_then(|v| v.get("prev")).and_then(Value::as_str) {
            None => breaks.push(ChainBreak { line: n, reason: "not an audit line (no `prev`, or not JSON)".into() }),
            Some(p) if p != prev => breaks.push(ChainBreak {
                line: n,
                reason: if n == 1 {
                    "the first line does not start the chain (lines were deleted before it)".into()
                } else {
                    format!(
                        "its `prev` does not match line {}: line {} was edited, or a line was deleted, inserted or moved here",
                        n - 1,
                        n - 1
                    )
                },
            }),
            Some(_) => {}
        }
        prev = line_hash(line.as_bytes());
    }
    (n, breaks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_chain_by_hash() {
        let t = tempfile::tempdir().unwrap();
        let p = Utf8PathBuf::from_path_buf(t.path().join("sub/audit.jsonl")).unwrap();
        let a = Audit::new(&p);
        let v: Vmid = "101".parse().unwrap();
        a.record(&[Event::new(Some(v), "inject", "decrypt", "ok").with("keys", json!(["a/b"]))])
            .unwrap();
        a.record(&[
            Event::new(Some(v), "inject", "deliver", "ok"),
            Event::new(None, "check", "x", "ok"),
        ])
        .unwrap();
        let text = fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let mut prev = GENESIS.to_string();
        for l in &lines {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["prev"], prev);
            prev = line_hash(l.as_bytes());
        }
        let first: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["vmid"], 101);
        assert_eq!(first["keys"][0], "a/b");
        assert!(first["time"].as_str().unwrap().ends_with('Z'));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn rfc3339_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20"), "{t}");
    }

    #[test]
    fn edits_deletions_and_reorders_are_found() {
        let t = tempfile::tempdir().unwrap();
        let p = Utf8PathBuf::from_path_buf(t.path().join("a.jsonl")).unwrap();
        let a = Audit::new(&p);
        for i in 0..5 {
            a.record(&[Event::new(None, "t", "x", "ok").with("i", i)])
                .unwrap();
        }
        let text = fs::read_to_string(&p).unwrap();
        assert_eq!(verify(&text), (5, vec![]));
        let lines: Vec<&str> = text.lines().collect();
        let edited = text.replace("\"i\":2", "\"i\":9");
        assert_eq!(
            verify(&edited).1.iter().map(|b| b.line).collect::<Vec<_>>(),
            vec![4]
        );
        let deleted: String = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        assert_eq!(verify(&deleted).1[0].line, 2);
        let mut swapped = lines.clone();
        swapped.swap(2, 3);
        let swapped: String = swapped.iter().map(|l| format!("{l}\n")).collect();
        assert!(!verify(&swapped).1.is_empty());
    }
}
