//! `phx-hook scan [PATH...]`: find hardcoded secrets (text, JSON or SARIF), suppress known
//! ones with a baseline or an inline `phx-hook: allow`, and with `--migrate` propose (and
//! with `--write` apply) the move of each into the vault.

use std::collections::BTreeSet;
use std::io::Write;

use camino::Utf8PathBuf;

use super::vault::KeyArgs;
use super::{Context, Exit};
use crate::audit::write as write_audit;
use crate::audit::{Audit, Event};
use crate::error::Error;
use crate::scan::{self, Finding, Severity, migrate, report};
use crate::vault::Secret;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// `file:line:col: rule [severity] name = value-redacted`
    Text,
    /// A JSON array.
    Json,
    /// SARIF 2.1.0 (code-scanning UIs).
    Sarif,
}

/// `--fail-on` levels (the core `Severity` knows nothing of clap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FailOn {
    /// Public hashes and above.
    Info,
    /// Weak defaults (`changeme`) and above.
    Low,
    /// Any literal secret.
    Medium,
    /// Random-looking secrets, tool credentials, tokens, keys.
    High,
    /// Private keys and live tokens only.
    Critical,
}

impl From<FailOn> for Severity {
    fn from(f: FailOn) -> Severity {
        match f {
            FailOn::Info => Severity::Info,
            FailOn::Low => Severity::Low,
            FailOn::Medium => Severity::Medium,
            FailOn::High => Severity::High,
            FailOn::Critical => Severity::Critical,
        }
    }
}

/// Arguments of `scan`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  phx-hook scan .\n  phx-hook scan --format sarif . > phx-hook.sarif\n  phx-hook scan --history .\n  phx-hook scan --staged                      # in .git/hooks/pre-commit\n  phx-hook scan --write-baseline .phx-hook-baseline.json .\n  phx-hook scan --baseline .phx-hook-baseline.json --fail-on medium .\n  phx-hook scan --migrate scripts/            # show the diffs\n  phx-hook scan --migrate --write --host scripts/\n\nExit status: 1 when a finding at or above --fail-on remains."
)]
pub(crate) struct ScanArgs {
    /// Files or directories (default: the current directory).
    #[arg(value_name = "PATH")]
    paths: Vec<Utf8PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,

    /// Exit 1 when a finding at or above this severity remains.
    #[arg(long, value_enum, default_value = "low")]
    fail_on: FailOn,

    /// Suppress the findings listed in this baseline file.
    #[arg(long, value_name = "FILE")]
    baseline: Option<Utf8PathBuf>,

    /// Write the current findings as a baseline (fingerprints only, no values) and exit 0.
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<Utf8PathBuf>,

    /// Scan every blob in the git history of each PATH (a repository).
    #[arg(long)]
    history: bool,

    /// Scan what is staged for the next commit (git's index) in the repository at PATH
    /// (default: the current directory), for a pre-commit hook.
    #[arg(long, conflicts_with_all = ["history", "migrate"])]
    staged: bool,

    /// Do not honour .gitignore and .ignore files.
    #[arg(long)]
    no_ignore: bool,

    /// Propose, per finding, a vault key and the source change (unified diffs).
    #[arg(long)]
    migrate: bool,

    /// With --migrate: store the values in the vault and rewrite the files.
    #[arg(long, requires = "migrate")]
    write: bool,

    /// With --write: the vault to store into (default: `vault` from the config).
    #[arg(long, value_name = "PATH")]
    vault: Option<Utf8PathBuf>,

    #[command(flatten)]
    keys: KeyArgs,
}

pub(crate) fn run(args: ScanArgs, ctx: &Context) -> Result<Exit, Error> {
    let paths = if args.paths.is_empty() {
        vec![Utf8PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let (mut findings, stats) = if args.staged {
        let mut all = Vec::new();
        let mut st = scan::Stats::default();
        for p in &paths {
            let (f, s) = scan::scan_staged(p).map_err(Error::Other)?;
            all.extend(f);
            st.files += s.files;
            st.bytes += s.bytes;
            st.skipped += s.skipped;
        }
        (all, st)
    } else if args.history {
        let mut all = Vec::new();
        let mut st = scan::Stats::default();
        for p in &paths {
            let (f, s) = scan::scan_history(p).map_err(Error::Other)?;
            all.extend(f);
            st.files += s.files;
            st.bytes += s.bytes;
            st.skipped += s.skipped;
        }
        (all, st)
    } else {
        scan::scan_paths(&paths, args.no_ignore)
    };
    if let Some(b) = &args.write_baseline {
        scan::write_baseline(b, &findings).map_err(Error::Other)?;
        eprintln!(
            "phx-hook scan: wrote {} finding(s) to the baseline {b}",
            findings.len()
        );
        return Ok(Exit::Ok);
    }
    let mut suppressed = 0;
    if let Some(b) = &args.baseline {
        let known: BTreeSet<String> = scan::read_baseline(b).map_err(Error::Other)?;
        let before = findings.len();
        findings.retain(|f| !known.contains(&f.fingerprint));
        suppressed = before - findings.len();
    }
    if args.migrate {
        return migrate_findings(&args, ctx, &findings);
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Text => {
            let _ = out.write_all(report::text(&findings).as_bytes());
        }
        Format::Json => {
            let _ = serde_json::to_writer_pretty(&mut out, &report::json(&findings));
            let _ = writeln!(out);
        }
        Format::Sarif => {
            let _ = serde_json::to_writer_pretty(&mut out, &report::sarif(&findings));
            let _ = writeln!(out);
        }
    }
    let fail_on = Severity::from(args.fail_on);
    let failing = findings.iter().filter(|f| f.severity >= fail_on).count();
    eprintln!(
        "phx-hook scan: {} finding(s), {failing} at or above {}{}; {} file(s), {} bytes scanned, {} skipped",
        findings.len(),
        fail_on.as_str(),
        if suppressed > 0 {
            format!(" ({suppressed} suppressed by the baseline)")
        } else {
            String::new()
        },
        stats.files,
        stats.bytes,
        stats.skipped
    );
    if args.history {
        let rotate: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.severity > Severity::Info)
            .collect();
        let in_head = rotate
            .iter()
            .filter(|f| f.history.as_ref().is_some_and(|h| h.in_head))
            .count();
        eprintln!(
            "phx-hook scan: {} distinct secret(s) in the history must be rotated ({in_head} still in HEAD, {} only in earlier commits): removing a secret from the files does not remove it from the history",
            rotate.len(),
            rotate.len() - in_head
        );
    }
    Ok(if failing > 0 { Exit::Failed } else { Exit::Ok })
}

fn migrate_findings(args: &ScanArgs, ctx: &Context, findings: &[Finding]) -> Result<Exit, Error> {
    if args.history {
        return Err(Error::Other(
            "--migrate works on the current files, not on --history".into(),
        ));
    }
    let m = migrate::plan(findings);
    let secrets: Vec<&str> = m.proposals.iter().map(|p| p.value.as_str()).collect();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "# vault keys to create ({}):", m.proposals.len());
    for p in &m.proposals {
        let _ = writeln!(out, "#   {}", p.key);
    }
    for c in &m.changes {
        let _ = writeln!(out);
        let _ = out
            .write_all(migrate::unified_diff(c.path.as_str(), &c.old, &c.new, &secrets).as_bytes());
        match c.style {
            migrate::Style::Shell => {
                let envs: Vec<String> = c
                    .needs
                    .iter()
                    .map(|(n, k)| format!("--env {n}={k}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "# run it as: phx-hook run {} -- {}",
                    envs.join(" "),
                    c.path
                );
            }
            migrate::Style::Template => {
                let _ = writeln!(
                    out,
                    "# it is now a template; deliver it with a manifest entry:\n#   - dest: /path/in/the/guest/{}\n#     template: {}",
                    c.path.file_name().unwrap_or(""),
                    c.path.file_name().unwrap_or("")
                );
            }
        }
    }
    for s in &m.skipped {
        let _ = writeln!(out, "# not migrated: {s}");
    }
    if !args.write {
        eprintln!(
            "phx-hook scan --migrate: nothing written; add --write to store the values and rewrite {} file(s)",
            m.changes.len()
        );
        return Ok(Exit::Ok);
    }
    // The values go into the vault first, so that nothing is lost if a rewrite fails.
    let cfg = &ctx.config;
    let (vault, recipients) = super::vault::vault_paths(args.vault.as_deref(), None, cfg);
    let author = super::vault::author_for(&vault, &recipients, &args.keys, cfg)?;
    let mut doc = author.read().map_err(|e| Error::Other(e.to_string()))?;
    for p in &m.proposals {
        doc.set(&p.key, Secret::copy_from(p.value.as_bytes()))
            .map_err(|e| Error::Other(e.to_string()))?;
    }
    let v = author
        .write(&mut doc)
        .map_err(|e| Error::Other(e.to_string()))?;
    eprintln!(
        "stored {} value(s) in {vault} (version {v})",
        m.proposals.len()
    );
    for c in &m.changes {
        let mode = std::fs::metadata(&c.path)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0o644);
        crate::vault::author::atomic_write(&c.path, c.new.as_bytes(), mode)
            .map_err(|e| Error::Other(e.to_string()))?;
        eprintln!("rewrote {}", c.path);
    }
    write_audit(
        &Audit::of(cfg),
        &[Event::new(None, "scan", "migrate", "ok")
            .with(
                "keys",
                m.proposals
                    .iter()
                    .map(|p| p.key.to_string())
                    .collect::<Vec<_>>(),
            )
            .with(
                "files",
                m.changes
                    .iter()
                    .map(|c| c.path.to_string())
                    .collect::<Vec<_>>(),
            )
            .with("vault_version", v)],
    );
    Ok(Exit::Ok)
}
