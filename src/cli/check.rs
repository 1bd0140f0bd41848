//! `phx-hook check [<vmid>...] [--json]`: validate the config (already loaded), the
//! vault, and every manifest (or the ones named), resolving every key and template, and
//! report every problem. Exit 1 if there is any.

use std::io::Write;

use serde::Serialize;

use super::{Context, Exit};
use crate::error::Error;
use crate::manifest;
use crate::plan;
use crate::types::{GuestKind, Vmid};
use crate::vault::{Vault, VaultInfo};

/// Arguments of `check`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  phx-hook check\n  phx-hook check 101 102 --json")]
pub(crate) struct CheckArgs {
    /// Guests to check (default: every manifest in the manifests directory).
    #[arg(value_name = "VMID")]
    vmids: Vec<Vmid>,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    ok: bool,
    vault: VaultReport,
    guests: Vec<GuestReport>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct VaultReport {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<VaultInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

#[derive(Serialize)]
struct GuestReport {
    vmid: Vmid,
    manifest: String,
    guest: Option<GuestKind>,
    required: bool,
    files: usize,
    problems: Vec<String>,
}

pub(crate) fn run(args: CheckArgs, ctx: &Context) -> Result<Exit, Error> {
    let cfg = &ctx.config;
    let mut warnings = Vec::new();
    let vmids = if args.vmids.is_empty() {
        let (vmids, odd) = manifest::list(&cfg.manifests)?;
        for name in odd {
            warnings.push(format!(
                "ignoring `{}/{name}`: manifests are named `<vmid>.yaml`",
                cfg.manifests
            ));
        }
        if vmids.is_empty() {
            warnings.push(format!("no manifests in `{}`", cfg.manifests));
        }
        vmids
    } else {
        let mut v = args.vmids.clone();
        v.sort();
        v.dedup();
        v
    };

    let vault = Vault::open(cfg);
    let vault_report = match &vault {
        Ok(v) => VaultReport {
            path: cfg.vault.to_string(),
            info: Some(v.info.clone()),
            error: None,
            hint: None,
        },
        Err(e) => VaultReport {
            path: cfg.vault.to_string(),
            info: None,
            error: Some(e.to_string()),
            hint: e.hint(),
        },
    };

    let mut guests = Vec::new();
    for vmid in vmids {
        let path = manifest::path_for(&cfg.manifests, vmid);
        let mut g = GuestReport {
            vmid,
            manifest: path.to_string(),
            guest: None,
            required: true,
            files: 0,
            problems: Vec::new(),
        };
        match manifest::load(&cfg.manifests, vmid) {
            Ok(None) => g.problems.push(format!(
                "guest {vmid} has no manifest (`{path}` does not exist)"
            )),
            Err(e) => g
                .problems
                .extend(e.problems.iter().map(ToString::to_string)),
            Ok(Some(m)) => {
                g.guest = m.guest;
                g.required = m.required;
                g.files = m.files.len();
                match &vault {
                    Ok(v) => {
                        if let Err(probs) = plan::build(&m, v) {
                            g.problems.extend(probs.iter().map(ToString::to_string));
                        }
                    }
                    Err(_) => g
                        .problems
                        .push("cannot resolve keys: the vault did not open".into()),
                }
            }
        }
        guests.push(g);
    }

    let ok = vault.is_ok() && guests.iter().all(|g| g.problems.is_empty());
    let report = Report {
        ok,
        vault: vault_report,
        guests,
        warnings,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report).map_err(|e| Error::Other(e.to_string()))?;
        let _ = writeln!(out);
    } else {
        print_text(&mut out, &report);
    }
    Ok(if ok { Exit::Ok } else { Exit::Failed })
}

fn print_text(out: &mut impl Write, r: &Report) {
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    match (&r.vault.info, &r.vault.error) {
        (Some(i), _) => {
            let version = i
                .version
                .map_or("no version".into(), |v| format!("version {v}"));
            let signer = i
                .signer
                .as_deref()
                .map_or("unsigned".into(), |s| format!("signed by {s}"));
            let _ = writeln!(
                out,
                "ok      vault {} ({version}, {} secrets, {signer})",
                i.path, i.secrets
            );
        }
        (None, Some(e)) => {
            let _ = writeln!(out, "FAILED  vault: {e}");
            if let Some(h) = &r.vault.hint {
                let _ = writeln!(out, "        hint: {h}");
            }
        }
        (None, None) => {}
    }
    let mut bad = 0;
    for g in &r.guests {
        let kind = g.guest.map_or(String::new(), |k| format!(" {k}"));
        if g.problems.is_empty() {
            let _ = writeln!(
                out,
                "ok      {}{kind}: {} file{} ({})",
                g.vmid,
                g.files,
                plural(g.files),
                g.manifest
            );
        } else {
            bad += 1;
            let note = if g.required {
                ""
            } else {
                " (required: false, so a start would only warn)"
            };
            let _ = writeln!(
                out,
                "FAILED  {}{kind}: {} problem{}{note}",
                g.vmid,
                g.problems.len(),
                plural(g.problems.len())
            );
            for p in &g.problems {
                let _ = writeln!(out, "        {p}");
            }
        }
    }
    let _ = writeln!(
        out,
        "checked {} guest{}: {} ok, {bad} with problems{}",
        r.guests.len(),
        plural(r.guests.len()),
        r.guests.len() - bad,
        if r.vault.error.is_some() {
            "; the vault did not open"
        } else {
            ""
        }
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
