//! `phx-hook reconcile [--vmid N]... [--dry-run] [--json] [--watch]`: make every running
//! guest of this node hold exactly what its manifest says, between starts (a reboot from
//! inside the guest, a rotated value, a file deleted or edited in the guest, a delivery
//! that was missed). One pass: decrypt the vault once, look at each guest without reading
//! any file (`engine::observe`), and have each guest that differs repaired by a child
//! process of its own (`--one`), which runs the same engine as the post-start worker
//! (`engine::sync`, `Mode::Diff`) and delivers only the difference. With `--watch` it
//! passes again whenever the vault, the config or a manifest changes, and every
//! `--interval`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Context, Exit};
use crate::audit::{Audit, Event, write as write_audit};
use crate::config::Config;
use crate::engine::{self, Change, Mode, Progress, State};
use crate::error::Error;
use crate::hook::{self, Prepared};
use crate::logging::{Level, Logger};
use crate::types::{GuestKind, Vmid};

/// Arguments of `reconcile`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  phx-hook reconcile                 one pass over every running guest of this node\n  phx-hook reconcile --vmid 101 --dry-run\n  phx-hook reconcile --watch          pass again on every vault or manifest change, and every minute\n\nExit status: 0 every guest in sync or repaired (skipped guests do not count), 1 a guest could not be repaired."
)]
pub(crate) struct ReconcileArgs {
    /// Only this guest (repeat for more).
    #[arg(long = "vmid", value_name = "VMID")]
    vmids: Vec<Vmid>,

    /// Show what would change and why; deliver nothing.
    #[arg(long)]
    dry_run: bool,

    /// Print the result as JSON.
    #[arg(long)]
    json: bool,

    /// Keep running: pass again when the vault, the config or a manifest changes, and every
    /// --interval.
    #[arg(long)]
    watch: bool,

    /// With --watch: the time between passes when nothing changes.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::config::parse_duration)]
    interval: Duration,

    /// How many guests are repaired at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    concurrency: u32,

    /// Repair the one guest given with --vmid in this process (what a pass runs per guest).
    #[arg(long, hide = true)]
    one: bool,
}

/// One guest's result.
#[derive(Serialize, Clone, Debug)]
struct GuestResult {
    vmid: Vmid,
    /// `in_sync`, `repaired`, `would_repair`, `skipped`, `failed`, `unreachable`.
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    changes: Vec<Change>,
    /// Whether `after` commands ran.
    after: bool,
    /// Agent requests or processes spent on this guest.
    calls: u32,
}

impl GuestResult {
    fn new(vmid: Vmid, state: &str, detail: Option<String>) -> GuestResult {
        GuestResult {
            vmid,
            state: state.into(),
            detail,
            changes: Vec::new(),
            after: false,
            calls: 0,
        }
    }

    fn failed(&self) -> bool {
        matches!(self.state.as_str(), "failed" | "unreachable")
    }
}

pub(crate) fn run(
    args: ReconcileArgs,
    ctx: &Context,
    config: Option<&camino::Utf8Path>,
) -> Result<Exit, Error> {
    let cfg = &ctx.config;
    if args.one {
        let [vmid] = args.vmids[..] else {
            return Err(Error::Other("--one takes exactly one --vmid".into()));
        };
        let r = repair_one(cfg, vmid);
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
        return Ok(if r.failed() { Exit::Failed } else { Exit::Ok });
    }
    if !args.watch {
        return pass(cfg, &args, config);
    }
    watch(cfg, &args, config)
}

/// How old a staging directory in `pve.credentials_dir` must be to be left over.
const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(600);

/// One pass, under the node's reconcile lock.
fn pass(
    cfg: &Config,
    args: &ReconcileArgs,
    config: Option<&camino::Utf8Path>,
) -> Result<Exit, Error> {
    let _lock = match node_lock(cfg) {
        Ok(Some(l)) => l,
        Ok(None) => {
            eprintln!("phx-hook: another reconcile is running on this node; not starting a second");
            return Ok(Exit::Ok);
        }
        Err(e) => {
            return Err(Error::Other(format!(
                "cannot take the reconcile lock in `{}`: {e}",
                cfg.state_dir
            )));
        }
    };
    if !args.dry_run {
        // Secrets staged for a start that never came (a start that failed before QEMU or
        // LXC read them) do not stay in host RAM.
        let swept = crate::credentials::sweep(cfg, STALE_STAGING);
        if swept > 0 {
            log::info!(
                "removed {swept} stale staging director(ies) in {}",
                cfg.pve.credentials_dir
            );
        }
    }
    let results = survey(cfg, args, config);
    report(args, &results);
    Ok(if results.iter().any(GuestResult::failed) {
        Exit::Failed
    } else {
        Exit::Ok
    })
}

fn node_lock(cfg: &Config) -> std::io::Result<Option<std::fs::File>> {
    std::fs::create_dir_all(&cfg.state_dir)?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cfg.state_dir.join("reconcile.lock"))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Why a guest is not looked at in this pass, if it is not.
fn skip_reason(
    cfg: &Config,
    vmid: Vmid,
    local: &str,
    containers: Option<&std::collections::BTreeSet<u32>>,
) -> Result<GuestKind, String> {
    let g = crate::pve::find_guest(&cfg.pve.config_dir, vmid).map_err(|e| e.to_string())?;
    if !g.is_on(local) {
        return Err(format!("on node `{}`", g.node.as_deref().unwrap_or("?")));
    }
    if !g
        .get("hookscript")
        .is_some_and(|h| crate::register::is_ours(&h))
    {
        return Err("phx-hook is not its hookscript".into());
    }
    if let Some(lock) = g.get("lock") {
        // backup, migrate, snapshot, rollback, ...: Proxmox is busy with it.
        return Err(format!("locked (`lock: {lock}`)"));
    }
    match g.kind {
        GuestKind::Qemu => {
            if hook::qemu_running(cfg, vmid) != Some(true) {
                return Err("not running".into());
            }
            match hook::vm_run_state(cfg, vmid) {
                Some(s) if s != "running" => {
                    return Err(format!("not running a guest (QEMU is `{s}`)"));
                }
                _ => {}
            }
        }
        GuestKind::Lxc => {
            // Unknown (no /proc/net/unix): the probe will say.
            if containers.is_some_and(|c| !c.contains(&vmid.get())) {
                return Err("not running".into());
            }
        }
    }
    if hook::worker_busy(cfg, vmid) {
        return Err("a delivery is running".into());
    }
    Ok(g.kind)
}

/// What one look found: the guest's record, and what it holds (with the requests spent).
type Look = (
    Option<engine::Record>,
    Result<(crate::deliver::Observed, u32), crate::deliver::DeliverError>,
);

/// Look at the guests of `chunk` in parallel, each in a thread of its own. Each look is
/// bounded by itself (a VM's by its requests' timeouts, a container's walk by
/// `deliver::lxc::probe`); three `agent.timeout`s is the backstop.
fn look_at(
    cfg: &std::sync::Arc<Config>,
    chunk: &[(Vmid, GuestKind, crate::plan::Plan)],
) -> Vec<Option<Look>> {
    use crate::deliver::DeliverError;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut out: Vec<Option<Look>> = Vec::new();
    let mut waiting = 0;
    for (i, (vmid, kind, plan)) in chunk.iter().enumerate() {
        out.push(None);
        let (cfg, tx, vmid, kind) = (std::sync::Arc::clone(cfg), tx.clone(), *vmid, *kind);
        let looks: Vec<crate::deliver::Look> = plan
            .deliveries
            .iter()
            .map(crate::deliver::Look::of)
            .collect();
        let spawned = std::thread::Builder::new()
            .name(format!("look-{vmid}"))
            .spawn(move || {
                let record = engine::load_record(&cfg, vmid);
                let known = record.as_ref().and_then(|r| r.boot.clone());
                let seen = engine::observe(&cfg, vmid, kind, known.as_deref(), &looks);
                let _ = tx.send((i, (record, seen)));
            });
        match spawned {
            Ok(_) => waiting += 1,
            Err(e) => {
                out[i] = Some((
                    None,
                    Err(DeliverError::Unreachable(format!(
                        "cannot start a thread: {e}"
                    ))),
                ));
            }
        }
    }
    drop(tx);
    let bound = cfg.agent.timeout * 3;
    let deadline = Instant::now() + bound;
    while waiting > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, look)) => {
                out[i] = Some(look);
                waiting -= 1;
            }
            Err(_) => break,
        }
    }
    for slot in &mut out {
        if slot.is_none() {
            *slot = Some((
                None,
                Err(DeliverError::Unreachable(format!(
                    "looking into it did not finish within {:.0}s",
                    bound.as_secs_f64()
                ))),
            ));
        }
    }
    out
}

/// Look at every guest; repair those that differ (unless --dry-run).
fn survey(
    cfg: &Config,
    args: &ReconcileArgs,
    config: Option<&camino::Utf8Path>,
) -> Vec<GuestResult> {
    let local = crate::pve::local_node(&cfg.pve.config_dir);
    let containers = crate::pve::active_containers(&cfg.pve.lxc_path).ok();
    let ids: Vec<Vmid> = if args.vmids.is_empty() {
        crate::manifest::list(&cfg.manifests)
            .map(|(v, _)| v)
            .unwrap_or_default()
    } else {
        args.vmids.clone()
    };
    let mut results: BTreeMap<Vmid, GuestResult> = BTreeMap::new();
    let mut candidates = Vec::new();
    for vmid in ids {
        if !crate::manifest::path_for(&cfg.manifests, vmid).exists() {
            results.insert(
                vmid,
                GuestResult::new(vmid, "skipped", Some("no manifest".into())),
            );
            continue;
        }
        match skip_reason(cfg, vmid, &local, containers.as_ref()) {
            Ok(kind) => candidates.push((vmid, kind)),
            Err(why) => {
                results.insert(vmid, GuestResult::new(vmid, "skipped", Some(why)));
            }
        }
    }
    if candidates.is_empty() {
        return results.into_values().collect();
    }
    // One decryption for the whole pass.
    let vault = match crate::vault::Vault::open(cfg) {
        Ok(v) => v,
        Err(e) => {
            for (vmid, _) in candidates {
                results.insert(vmid, GuestResult::new(vmid, "failed", Some(e.to_string())));
            }
            return results.into_values().collect();
        }
    };
    let digester = match engine::Digester::new(cfg) {
        Ok(d) => d,
        Err(e) => {
            for (vmid, _) in candidates {
                results.insert(vmid, GuestResult::new(vmid, "failed", Some(e.to_string())));
            }
            return results.into_values().collect();
        }
    };
    // Plans, then a look at every guest (agent requests in parallel; containers from the
    // host, without a process), then the comparison.
    let mut looks = Vec::new();
    for (vmid, kind) in candidates {
        match plan_for(cfg, vmid, &vault) {
            Ok(plan) => looks.push((vmid, kind, plan)),
            Err(why) => {
                results.insert(vmid, GuestResult::new(vmid, "failed", Some(why)));
            }
        }
    }
    let width = args.concurrency as usize * 2;
    let mut need = Vec::new();
    let shared = std::sync::Arc::new(cfg.clone());
    for chunk in looks.chunks(width) {
        let seen = look_at(&shared, chunk);
        for ((vmid, _, plan), seen) in chunk.iter().zip(seen) {
            let Some((record, seen)) = seen else {
                results.insert(
                    *vmid,
                    GuestResult::new(*vmid, "failed", Some("internal error".into())),
                );
                continue;
            };
            match seen {
                Err(e) => {
                    if !args.dry_run {
                        let record = record.or_else(|| engine::load_record(cfg, *vmid));
                        engine::note_checked(cfg, *vmid, record, Err(e.to_string()));
                    }
                    results.insert(
                        *vmid,
                        GuestResult::new(*vmid, "unreachable", Some(e.to_string())),
                    );
                }
                Ok((seen, calls)) => {
                    let digests: Vec<String> =
                        plan.deliveries.iter().map(|d| digester.digest(d)).collect();
                    let changes = engine::compare(plan, &digests, record.as_ref(), &seen);
                    if changes.is_empty() && !args.dry_run {
                        engine::note_checked(cfg, *vmid, record, Ok(&seen));
                    }
                    let mut r = GuestResult::new(
                        *vmid,
                        if changes.is_empty() {
                            "in_sync"
                        } else {
                            "would_repair"
                        },
                        None,
                    );
                    r.calls = calls;
                    r.changes = changes;
                    if !r.changes.is_empty() {
                        need.push(*vmid);
                    }
                    results.insert(*vmid, r);
                }
            }
        }
    }
    if args.dry_run || need.is_empty() {
        return results.into_values().collect();
    }
    // Repairs: one child process per guest (the native transport forks a single-threaded
    // writer, which a process with threads must not do), a few at a time, each bounded:
    // `agent.timeout` per file and per `after` command, and a few more for the looks.
    let exe = std::env::current_exe().ok();
    let bounds: BTreeMap<Vmid, Duration> = looks
        .iter()
        .map(|(vmid, _, plan)| {
            let steps = 4 + plan.deliveries.len() + plan.after.len();
            (
                *vmid,
                cfg.agent.timeout * u32::try_from(steps).unwrap_or(u32::MAX),
            )
        })
        .collect();
    for batch in need.chunks(args.concurrency as usize) {
        let done: Vec<GuestResult> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|vmid| {
                    let bound = bounds.get(vmid).copied().unwrap_or(cfg.agent.timeout * 4);
                    let exe = exe.as_deref();
                    s.spawn(move || repair_in_child(exe, config, *vmid, bound))
                })
                .collect();
            handles
                .into_iter()
                .zip(batch)
                .map(|(h, vmid)| {
                    h.join().unwrap_or_else(|_| {
                        GuestResult::new(*vmid, "failed", Some("internal error".into()))
                    })
                })
                .collect()
        });
        for r in done {
            results.insert(r.vmid, r);
        }
    }
    results.into_values().collect()
}

/// `reconcile --one --vmid N` in a child process, killed (with its process group) after
/// `bound`; its one-line JSON result.
fn repair_in_child(
    exe: Option<&std::path::Path>,
    config: Option<&camino::Utf8Path>,
    vmid: Vmid,
    bound: Duration,
) -> GuestResult {
    let Some(exe) = exe else {
        return GuestResult::new(
            vmid,
            "failed",
            Some("cannot find phx-hook's own binary".into()),
        );
    };
    let mut c = Command::new(exe);
    if let Some(cfg) = config {
        c.arg("--config").arg(cfg.as_str());
    }
    c.args(["reconcile", "--one", "--vmid", &vmid.to_string()]);
    let out = match crate::deliver::run_bounded(&mut c, None, bound) {
        Ok((_, out, err)) => {
            // Its warnings (an audit log it could not write, say) are the pass's.
            let _ = std::io::stderr().write_all(&err);
            out
        }
        Err(e) => {
            return GuestResult::new(vmid, "failed", Some(format!("the repair: {e}")));
        }
    };
    serde_json::from_slice::<serde_json::Value>(&out)
        .ok()
        .map(|v| GuestResult {
            vmid,
            state: v["state"].as_str().unwrap_or("failed").to_string(),
            detail: v["detail"].as_str().map(str::to_string),
            changes: serde_json::from_value::<Vec<ChangeIn>>(v["changes"].clone())
                .unwrap_or_default()
                .into_iter()
                .map(|c| Change {
                    dest: c.dest,
                    reason: c.reason,
                    index: 0,
                })
                .collect(),
            after: v["after"].as_bool().unwrap_or(false),
            calls: v["calls"]
                .as_u64()
                .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        })
        .unwrap_or_else(|| {
            GuestResult::new(vmid, "failed", Some("the repair process failed".into()))
        })
}

#[derive(serde::Deserialize)]
struct ChangeIn {
    dest: String,
    reason: engine::Reason,
}

/// The plan of guest `vmid` against the pass's vault (problems with `required: false`
/// leave the files that resolved).
fn plan_for(
    cfg: &Config,
    vmid: Vmid,
    vault: &crate::vault::Vault,
) -> Result<crate::plan::Plan, String> {
    let m = crate::manifest::load(&cfg.manifests, vmid)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no manifest".to_string())?;
    let (plan, problems) = crate::plan::build_partial(&m, vault);
    if m.required && !problems.is_empty() {
        return Err(problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "));
    }
    Ok(plan)
}

/// Repair one guest, in this process: the engine's `Mode::Diff`.
fn repair_one(cfg: &Config, vmid: Vmid) -> GuestResult {
    let sys = Logger::for_guest(cfg, vmid, "reconcile");
    let audit = Audit::of(cfg);
    let _lock = match hook::worker_lock_wait(cfg, vmid, Duration::ZERO) {
        Ok(Some(l)) => l,
        _ => return GuestResult::new(vmid, "skipped", Some("a delivery is running".into())),
    };
    let p: Box<Prepared> = match hook::prepare(cfg, vmid) {
        hook::Check::Ready(p) => p,
        hook::Check::NoManifest => {
            return GuestResult::new(vmid, "skipped", Some("no manifest".into()));
        }
        hook::Check::Failed { line, .. } => return GuestResult::new(vmid, "failed", Some(line)),
    };
    if p.kind == GuestKind::Lxc && container_frozen(cfg, vmid) {
        return GuestResult::new(vmid, "skipped", Some("frozen (a backup?)".into()));
    }
    let synced = engine::sync(
        cfg,
        &p,
        Mode::Diff,
        "reconcile",
        Progress {
            log: &mut |ok, msg| sys.log(if ok { Level::Info } else { Level::Err }, &msg),
            event: &mut |e| super::hook::log_event(&sys, vmid, &e),
            cancel: &|| None,
        },
    );
    let delivered = |dest: &str| {
        synced
            .report
            .files
            .iter()
            .any(|f| f.dest == dest && f.outcome.is_ok())
    };
    for c in synced.changes.iter().filter(|c| delivered(&c.dest)) {
        sys.event(
            Level::Info,
            &format!(
                "guest {vmid}: {} re-delivered ({})",
                c.dest,
                c.reason.as_str()
            ),
            "redeliver",
            "ok",
            &[("REASON", c.reason.as_str())],
        );
    }
    if !synced.events.is_empty() {
        let mut all = vec![hook::decrypt_event(vmid, "reconcile", &p.vault)];
        all.extend(synced.events.clone());
        write_audit(&audit, &all);
    }
    let (state, detail) = match &synced.state {
        State::InSync => ("in_sync", None),
        State::Repaired => ("repaired", None),
        State::Failed(d) => ("failed", Some(d.clone())),
        State::Unreachable(d) => ("unreachable", Some(d.clone())),
        State::Cancelled(d) => ("skipped", Some(d.clone())),
    };
    if let State::Unreachable(d) = &synced.state {
        write_audit(
            &audit,
            &[Event::new(Some(vmid), "reconcile", "check", "unreachable")
                .with("error", d.as_str())],
        );
    }
    let mut r = GuestResult::new(vmid, state, detail);
    r.after = !synced.report.after.is_empty();
    r.calls = synced.calls;
    r.changes = synced.changes;
    r
}

fn container_frozen(cfg: &Config, vmid: Vmid) -> bool {
    let mut words = cfg.pve.lxc_info.split_whitespace();
    let mut cmd = Command::new(words.next().unwrap_or("lxc-info"));
    cmd.args(words).args(["-n", &vmid.to_string(), "-s"]);
    crate::deliver::run_bounded(&mut cmd, None, cfg.agent.timeout)
        .map(|(_, out, _)| String::from_utf8_lossy(&out).contains("FROZEN"))
        .unwrap_or(false)
}

fn report(args: &ReconcileArgs, results: &[GuestResult]) {
    let mut out = std::io::stdout().lock();
    if args.json {
        let _ = serde_json::to_writer_pretty(&mut out, results);
        let _ = writeln!(out);
        return;
    }
    for r in results {
        let changes = r
            .changes
            .iter()
            .map(|c| format!("{} ({})", c.dest, c.reason.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let line = match r.state.as_str() {
            "in_sync" => "in sync".to_string(),
            "would_repair" => format!("would deliver {changes}"),
            "repaired" => format!(
                "repaired: {changes}{}",
                if r.after { "; after-commands ran" } else { "" }
            ),
            s => format!(
                "{}: {}",
                s.replace('_', " "),
                r.detail.as_deref().unwrap_or("-")
            ),
        };
        let _ = writeln!(out, "{:>6}  {line}", r.vmid);
    }
    let count = |s: &str| results.iter().filter(|r| r.state == s).count();
    let _ = writeln!(
        out,
        "{} guest(s): {} in sync, {} repaired, {} to repair, {} skipped, {} failed or unreachable",
        results.len(),
        count("in_sync"),
        count("repaired"),
        count("would_repair"),
        count("skipped"),
        count("failed") + count("unreachable")
    );
}

/// `--watch`: a pass now, then again on every change to the vault, the config or a
/// manifest (inotify on their directories, changes gathered for 300 ms), and every
/// `--interval`.
fn watch(
    cfg: &Config,
    args: &ReconcileArgs,
    config: Option<&camino::Utf8Path>,
) -> Result<Exit, Error> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let sys = Logger::new(cfg);
    // Without inotify (the user's instances used up, say) the interval still holds.
    let ino = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
        .inspect_err(|e| {
            let line = format!(
                "reconcile: cannot watch for changes ({e}); passing every {:.0}s only",
                args.interval.as_secs_f64()
            );
            eprintln!("phx-hook: warning: {line}");
            sys.log(Level::Warning, &line);
        })
        .ok();
    let mask = AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_ATTRIB;
    let mut dirs = vec![cfg.manifests.clone(), cfg.manifests.join("templates")];
    if let Some(d) = cfg.vault.parent() {
        dirs.push(d.to_owned());
    }
    if let Some(d) = cfg.source.as_ref().and_then(|s| s.parent()) {
        dirs.push(d.to_owned());
    }
    dirs.sort();
    dirs.dedup();
    if let Some(ino) = &ino {
        for d in &dirs {
            let _ = ino.add_watch(d.as_std_path(), mask);
        }
    }
    sys.log(
        Level::Info,
        &format!(
            "reconcile: watching {} and every {:.0}s",
            dirs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            args.interval.as_secs_f64()
        ),
    );
    loop {
        // Each pass reads the config afresh: it may be what changed.
        let cfg_now = match Config::discover(
            config,
            std::env::var(crate::config::CONFIG_ENV).ok().as_deref(),
        ) {
            Ok(c) => c,
            Err(e) => {
                sys.log(Level::Err, &format!("reconcile: {e}"));
                cfg.clone()
            }
        };
        let _ = pass(&cfg_now, args, config);
        let _ = std::io::stdout().flush();
        let deadline = Instant::now() + args.interval;
        let mut changed = false;
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(ino) = &ino else {
                std::thread::sleep(left.min(Duration::from_secs(1)));
                continue;
            };
            let ms = u16::try_from(left.as_millis().min(1000)).unwrap_or(1000);
            let mut fds = [nix::poll::PollFd::new(
                ino.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
            if let Ok(evs) = ino.read_events()
                && !evs.is_empty()
            {
                changed = true;
            }
            if changed {
                // Gather the rest of a burst (an editor, a `git pull`).
                std::thread::sleep(Duration::from_millis(300));
                while ino.read_events().is_ok_and(|e| !e.is_empty()) {}
                break;
            }
        }
        if changed {
            sys.log(
                Level::Info,
                "reconcile: the vault, the config or a manifest changed",
            );
        }
    }
}

use std::os::fd::AsFd;
