//! `phx-hook inject <vmid> [--dry-run] [--json] [--wait SECS]`: deliver one guest's
//! secrets by hand, synchronously, with a progress line per file on stderr and a summary.
//! With `--dry-run` it prints the plan (destination, keys, format, mode, owner, size)
//! and touches nothing. It never prints a value or a digest of one.

use std::io::Write;

use serde::Serialize;

use super::{Context, Exit};
use crate::audit::{Audit, Event as AuditEvent, write as write_audit};
use crate::deliver::{self, Event};
use crate::error::Error;
use crate::hook::{decrypt_event, wait_for_agent};
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

    /// Print the plan (or the delivery report) as JSON.
    #[arg(long)]
    json: bool,

    /// VMs: wait up to SECS for the guest agent to answer before delivering.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(0..=86400))]
    wait: Option<u32>,
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
        return deliver_now(&args, ctx, plan, guest, vault);
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

/// Deliver `plan` now, reporting progress on stderr, and audit every step.
fn deliver_now(
    args: &InjectArgs,
    ctx: &Context,
    plan: Plan,
    guest: Option<GuestKind>,
    vault: Vault,
) -> Result<Exit, Error> {
    let cfg = &ctx.config;
    let vmid = args.vmid;
    let audit = Audit::of(cfg);
    let mut events = vec![decrypt_event(vmid, "inject", &vault.info)];
    let Some(kind) = guest else {
        return Err(Error::Other(format!(
            "cannot tell whether guest {vmid} is a VM or a container: set `guest:` in its manifest, or check `{}`",
            cfg.pve.config_dir
        )));
    };
    if kind == GuestKind::Qemu
        && let Some(secs) = args.wait
    {
        eprintln!("phx-hook: {vmid}: waiting up to {secs}s for the guest agent");
        match wait_for_agent(cfg, vmid, std::time::Duration::from_secs(u64::from(secs))) {
            Ok(took) => eprintln!(
                "phx-hook: {vmid}: the guest agent answered after {:.1}s",
                took.as_secs_f64()
            ),
            Err(e) => {
                events.push(
                    AuditEvent::new(Some(vmid), "inject", "deliver", "failed")
                        .with("error", e.to_string()),
                );
                write_audit(&audit, &events);
                return Err(Error::Other(e.to_string()));
            }
        }
    }
    // The same engine as the post-start worker: every file, then `after`, then a record
    // of what the guest holds (for `reconcile` and `status`).
    let name = match kind {
        GuestKind::Qemu => "qga",
        GuestKind::Lxc => match cfg.pve.lxc_transport {
            crate::config::LxcTransport::Pct => "pct",
            crate::config::LxcTransport::Native => "native",
        },
    };
    let p = crate::hook::Prepared {
        kind,
        vault: vault.info,
        plan,
        problems: Vec::new(),
    };
    let synced = crate::engine::sync(
        cfg,
        &p,
        crate::engine::Mode::Full { wait: false },
        "inject",
        crate::engine::Progress {
            log: &mut |_, msg| eprintln!("phx-hook: {msg}"),
            event: &mut |e| progress(vmid, e),
            cancel: &|| None,
        },
    );
    let report = synced.report;
    let plan = &p.plan;
    events.extend(synced.events);
    let audited = write_audit(&audit, &events);
    let delivered = report.files.iter().filter(|f| f.outcome.is_ok()).count();
    if args.json {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut out, &report);
        let _ = writeln!(out);
    }
    let after_ok = report
        .after
        .iter()
        .filter(|a| matches!(&a.outcome, Ok(o) if o.success()))
        .count();
    eprintln!(
        "phx-hook: {vmid}: {delivered} of {} file{} delivered through {name}{}",
        report.files.len(),
        if report.files.len() == 1 { "" } else { "s" },
        if plan.after.is_empty() {
            String::new()
        } else if report.after.is_empty() {
            format!(
                "; {} after-command(s) not run because a file failed",
                plan.after.len()
            )
        } else {
            format!(
                "; {after_ok} of {} after-command(s) succeeded",
                report.after.len()
            )
        }
    );
    Ok(if report.files_ok() && report.after_ok() && audited {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

fn progress(vmid: Vmid, e: Event<'_>) {
    match e {
        Event::File(f) => match &f.outcome {
            Ok(v) => eprintln!(
                "phx-hook: {vmid}: {} ({} bytes): ok, verified by {}",
                f.dest,
                f.size,
                match v {
                    deliver::Verified::Digest => "sha256",
                    deliver::Verified::Size => "size only (no sha256sum in the guest)",
                }
            ),
            Err(why) => eprintln!(
                "phx-hook: {vmid}: {} ({} bytes): FAILED: {why}",
                f.dest, f.size
            ),
        },
        Event::After(a) => match &a.outcome {
            Ok(o) if o.success() => eprintln!("phx-hook: {vmid}: after: {}: ok", a.argv.join(" ")),
            Ok(o) => eprintln!(
                "phx-hook: {vmid}: after: {}: FAILED ({}); the delivered files stay in place",
                a.argv.join(" "),
                match (o.exitcode, o.signal) {
                    (_, Some(s)) => format!("killed by signal {s}"),
                    (c, None) => format!("exit {}", c.unwrap_or(-1)),
                }
            ),
            Err(why) => eprintln!(
                "phx-hook: {vmid}: after: {}: FAILED: {why}",
                a.argv.join(" ")
            ),
        },
    }
}
