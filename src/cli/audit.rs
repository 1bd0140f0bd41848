//! `phx-hook audit [--vmid N] [--since T] [--verify] [--json]`: show the audit log and
//! check its hash chain; an edited, reordered or deleted line is named by line number.

use std::io::Write;

use serde_json::Value;

use super::{Context, Exit};
use crate::audit;
use crate::error::Error;
use crate::types::Vmid;

/// Arguments of `audit`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  phx-hook audit --verify\n  phx-hook audit --vmid 101 --since 2h\n  phx-hook audit --since 2026-11-29 --json"
)]
pub(crate) struct AuditArgs {
    /// Only events of this guest.
    #[arg(long)]
    vmid: Option<Vmid>,

    /// Only events at or after T: a time (`2026-11-29`, `2026-11-29T10:00`) or an age (`2h`, `30m`, `7d`).
    #[arg(long, value_name = "T")]
    since: Option<String>,

    /// Check the hash chain; exit 1 if any line was edited, deleted or reordered.
    #[arg(long)]
    verify: bool,

    /// Print the matching lines as they are (JSON lines).
    #[arg(long)]
    json: bool,
}

fn since_bound(s: &str) -> Result<String, Error> {
    let t = s.trim();
    if let Some(days) = t.strip_suffix('d').and_then(|d| d.parse::<u64>().ok()) {
        return Ok(ago(days * 86_400));
    }
    if let Ok(d) = crate::config::parse_duration(t)
        && t.chars().any(|c| c.is_ascii_alphabetic())
    {
        return Ok(ago(d.as_secs()));
    }
    if t.len() >= 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-' {
        return Ok(t.to_string());
    }
    Err(Error::Other(format!(
        "--since `{s}` is neither a time (2026-11-29T10:00) nor an age (2h, 7d)"
    )))
}

fn ago(secs: u64) -> String {
    // Format now - secs with the same clock the log uses.
    let now = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    audit::rfc3339(now)
}

pub(crate) fn run(args: AuditArgs, ctx: &Context) -> Result<Exit, Error> {
    let path = &ctx.config.audit_log;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::Other(format!("failed to read `{path}`: {e}"))),
    };
    let since = args.since.as_deref().map(since_bound).transpose()?;
    let mut out = std::io::stdout().lock();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(want) = args.vmid
            && v.get("vmid").and_then(Value::as_u64) != Some(u64::from(want.get()))
        {
            continue;
        }
        if let Some(since) = &since
            && v.get("time")
                .and_then(Value::as_str)
                .is_none_or(|t| t < since.as_str())
        {
            continue;
        }
        if args.verify && !args.json && args.vmid.is_none() && since.is_none() {
            continue;
        }
        if args.json {
            let _ = writeln!(out, "{line}");
        } else {
            let _ = writeln!(out, "{}", human(&v));
        }
    }
    if !args.verify {
        return Ok(Exit::Ok);
    }
    let (n, breaks) = audit::verify(&text);
    if breaks.is_empty() {
        let _ = writeln!(out, "audit log `{path}`: {n} lines, hash chain intact");
        return Ok(Exit::Ok);
    }
    for b in &breaks {
        eprintln!("error: {path}:{}: {}", b.line, b.reason);
    }
    eprintln!(
        "error: audit log `{path}`: the hash chain is broken in {} place(s)",
        breaks.len()
    );
    Ok(Exit::Failed)
}

fn human(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let vmid = v
        .get("vmid")
        .and_then(Value::as_u64)
        .map_or("-".to_string(), |n| n.to_string());
    let mut line = format!(
        "{} {} {:>6} {:<10} {:<9} {:<8}",
        s("time"),
        s("node"),
        vmid,
        s("phase"),
        s("action"),
        s("outcome")
    );
    if let Some(d) = v.get("dest").and_then(Value::as_str) {
        line.push_str(&format!(" {d}"));
    }
    if let Some(k) = v.get("keys").and_then(Value::as_array) {
        let keys: Vec<&str> = k.iter().filter_map(Value::as_str).collect();
        line.push_str(&format!(" [{}]", keys.join(", ")));
    }
    for k in ["error", "reason"] {
        if let Some(e) = v.get(k).and_then(Value::as_str) {
            line.push_str(&format!(" -- {e}"));
        }
    }
    // The log is written escaped, but a line edited by hand could hold anything: no
    // control character reaches the terminal.
    crate::text::shown(line.as_bytes(), 4096)
}
