//! `phx-hook inject <vmid> [--dry-run] [--json]`: deliver one guest's secrets by hand.
//! With `--dry-run` it prints the plan (destination, keys, format, mode, owner, size)
//! and touches nothing; it never prints a value or a digest of one.

use std::io::Write;

use serde::Serialize;

use super::{Context, Exit};
use crate::error::Error;
use crate::manifest::{self, Owner};
use crate::plan::{self, Plan};
use crate::pve;
use crate::types::{GuestKind, Vmid};
use crate::vault::{Vault, VaultInfo};

/// Arguments of `inject`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  phx-hook inject 101 --dry-run\n  phx-hook inject 101 --dry-run --json"
)]
pub(crate) struct InjectArgs {
    /// The guest.
    vmid: Vmid,

    /// Show the plan; deliver nothing.
    #[arg(long)]
    dry_run: bool,

    /// Print the plan as JSON (with --dry-run).
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct PlanView<'a> {
    vmid: Vmid,
    guest: Option<GuestKind>,
    required: bool,
    vault: &'a VaultInfo,
    files: Vec<FileView<'a>>,
    after: &'a [Vec<String>],
}

#[derive(Serialize)]
struct FileView<'a> {
    dest: &'a str,
    format: &'a str,
    keys: Vec<&'a str>,
    mode: String,
    owner: String,
    group: String,
    size: usize,
}

pub(crate) fn run(args: InjectArgs, ctx: &Context) -> Result<Exit, Error> {
    let cfg = &ctx.config;
    let Some(m) = manifest::load(&cfg.manifests, args.vmid)? else {
        return Err(Error::Other(format!(
            "guest {} has no manifest (`{}` does not exist)",
            args.vmid,
            manifest::path_for(&cfg.manifests, args.vmid)
        )));
    };
    let guest = match m.guest {
        Some(k) => Some(k),
        None => pve::find_guest(&cfg.pve.config_dir, args.vmid)
            .ok()
            .map(|g| g.kind),
    };
    let vault = Vault::open(cfg)?;
    let plan = plan::build(&m, &vault).map_err(|probs| {
        Error::Other(
            probs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    if !args.dry_run {
        return Err(Error::Other(format!(
            "delivery into guests is not available in this version; `phx-hook inject {} --dry-run` shows the plan",
            args.vmid
        )));
    }
    let view = view(&plan, guest, &vault.info);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &view).map_err(|e| Error::Other(e.to_string()))?;
        let _ = writeln!(out);
    } else {
        print_text(&mut out, &view);
    }
    Ok(Exit::Ok)
}

fn owner(o: &Owner) -> String {
    o.to_string()
}

fn view<'a>(plan: &'a Plan, guest: Option<GuestKind>, vault: &'a VaultInfo) -> PlanView<'a> {
    PlanView {
        vmid: plan.vmid,
        guest,
        required: plan.required,
        vault,
        files: plan
            .deliveries
            .iter()
            .map(|d| FileView {
                dest: d.dest.as_str(),
                format: d.format,
                keys: d.keys.iter().map(|k| k.as_str()).collect(),
                mode: format!("{:04o}", d.mode),
                owner: owner(&d.owner),
                group: owner(&d.group),
                size: d.content.len(),
            })
            .collect(),
        after: &plan.after,
    }
}

fn print_text(out: &mut impl Write, v: &PlanView<'_>) {
    let kind = v
        .guest
        .map_or("unknown kind".to_string(), |k| k.to_string());
    let _ = writeln!(
        out,
        "plan for guest {} ({kind}): {} file{} from {}{} (dry run: nothing is delivered)",
        v.vmid,
        v.files.len(),
        if v.files.len() == 1 { "" } else { "s" },
        v.vault.path,
        v.vault
            .version
            .map_or(String::new(), |n| format!(" version {n}")),
    );
    let w = v.files.iter().map(|f| f.dest.len()).max().unwrap_or(0);
    for f in &v.files {
        let _ = writeln!(
            out,
            "  {:<w$}  {:<8}  {}  {:>16}  {:>8} bytes  <- {}",
            f.dest,
            f.format,
            f.mode,
            format!("{}:{}", f.owner, f.group),
            f.size,
            f.keys.join(", "),
        );
    }
    for cmd in v.after {
        let _ = writeln!(out, "  then run: {}", cmd.join(" "));
    }
}
