//! Hook mode, `phx-hook <vmid> <phase>`, as Proxmox VE runs a hookscript
//! (docs/PROXMOX.md §1): argv `[path, vmid, phase]`, stdin empty, stdout and stderr
//! copied into the task log that the user who started the guest can read, a non-zero
//! `pre-start` aborts the start, and the start task waits until both pipes are closed.
//! So: `pre-start` validates and fails closed with one line (but only warns on a
//! migration target or a backup's start, which must not be broken); `post-start` hands
//! delivery to a detached worker (a session of its own from before exec, stdio on
//! /dev/null, no inherited descriptors) and returns at once; `pre-stop` and `post-stop`
//! retire a worker that still waits; every phase is audited and unknown phases exit 0.
//! Nothing here prints a value.

use std::process::{Command, Stdio};

use camino::Utf8Path;

use super::Exit;
use crate::audit::{Audit, Event, write as write_audit};
use crate::config::{CONFIG_ENV, Config};
use crate::hook::{self, Check, Start, generation};
use crate::logging::{Level, Logger};
use crate::types::{GuestKind, Phase, Vmid};

/// The hidden subcommand the worker runs as.
pub(crate) const WORKER: &str = "__worker";

fn load(explicit: Option<&Utf8Path>) -> Result<Config, String> {
    let env = std::env::var(CONFIG_ENV).ok();
    Config::discover(explicit, env.as_deref()).map_err(|e| e.to_string())
}

/// Run one phase.
pub(crate) fn run(vmid: Vmid, phase: &str, config: Option<&Utf8Path>) -> Exit {
    let phase: Phase = match phase.parse() {
        Ok(p) => p,
        Err(never) => match never {},
    };
    let cfg = match load(config) {
        Ok(c) => c,
        Err(e) => {
            // Without a config nothing can be checked: a start fails closed, the other
            // phases only warn.
            eprintln!("phx-hook: guest {vmid}: {e}");
            return if phase == Phase::PreStart {
                Exit::Failed
            } else {
                Exit::Ok
            };
        }
    };
    let audit = Audit::of(&cfg);
    let code = match &phase {
        Phase::PreStart => pre_start(&cfg, &audit, vmid),
        Phase::PostStart => post_start(&cfg, &audit, vmid, config),
        Phase::PreStop | Phase::PostStop => {
            // What a container's mount hook did at a start that failed after it (its
            // staging directory goes too), and credentials a start that failed after
            // pre-start left behind.
            if let Some(report) = crate::early::collect(&cfg, vmid) {
                early_report(&audit, vmid, &report, &phase.to_string());
            }
            crate::credentials::remove(&cfg, vmid);
            if crate::manifest::path_for(&cfg.manifests, vmid).exists() {
                // A worker still waiting for this guest must not deliver to it any more
                // (docs/PROXMOX.md §9, §12: a backup of a stopped VM starts it paused and
                // stops it again; `qm reboot` stops before it starts).
                let _ = generation::stop(&cfg, vmid);
                write_audit(
                    &audit,
                    &[Event::new(Some(vmid), &phase.to_string(), "phase", "ok")
                        .with("task", hook::parent_task())],
                );
            }
            Exit::Ok
        }
        Phase::Other(p) => {
            log::debug!("guest {vmid}: ignoring unknown phase `{p}`");
            Exit::Ok
        }
    };
    let code = chain(&cfg, vmid, &phase, code);
    if phase == Phase::PreStart
        && code == Exit::Ok
        && let Some(args) = crate::pve::find_guest(&cfg.pve.config_dir, vmid)
            .ok()
            .filter(|g| g.kind == GuestKind::Qemu)
            .and_then(|g| g.get("args"))
    {
        let n = crate::credentials::placeholders(&cfg, vmid, &args);
        if n > 0 {
            eprintln!(
                "phx-hook: warning: guest {vmid}: {n} credential(s) its args pass to QEMU are empty for this start (QEMU would not start without the files)"
            );
        }
    }
    if phase == Phase::PreStart && code != Exit::Ok {
        // The start is aborted: nothing may wait in host RAM for a QEMU or a mount hook
        // that will not run.
        crate::credentials::remove(&cfg, vmid);
    }
    code
}

fn pre_start(cfg: &Config, audit: &Audit, vmid: Vmid) -> Exit {
    let check = hook::prepare(cfg, vmid);
    if matches!(check, Check::NoManifest) {
        return no_manifest(cfg, audit, vmid);
    }
    let guest = crate::pve::find_guest(&cfg.pve.config_dir, vmid).ok();
    let start = Start::detect(guest.as_ref());
    match check {
        Check::NoManifest => Exit::Ok,
        Check::Failed {
            required,
            line,
            count,
        } => {
            // A migration target or a backup's start must not be aborted: that would
            // break an HA evacuation or a migration, or fail the backup and leave a VM
            // that was running stopped. The guest keeps (or gets at its next start) its
            // secrets; the task log and the audit say why not now.
            let tolerated = start.migration().or_else(|| start.backup());
            let outcome = match (&tolerated, required) {
                (Some(why), _) => {
                    eprintln!("phx-hook: warning: {line} (not aborting a {why})");
                    "warning"
                }
                (None, true) => {
                    eprintln!("phx-hook: {line}");
                    "failed"
                }
                (None, false) => {
                    eprintln!("phx-hook: warning: {line} (required: false, the start goes on)");
                    "warning"
                }
            };
            write_audit(
                audit,
                &[Event::new(Some(vmid), "pre-start", "validate", outcome)
                    .with("error", line)
                    .with("problems", count)
                    .with("start", tolerated.clone())
                    .with("task", start.task.clone())],
            );
            if required && tolerated.is_none() {
                Exit::Failed
            } else {
                Exit::Ok
            }
        }
        Check::Ready(p) => {
            for prob in &p.problems {
                eprintln!("phx-hook: warning: guest {vmid}: {prob} (required: false)");
            }
            if !p.plan.credentials.is_empty()
                && let Err(why) = credentials_for_qemu(cfg, vmid, &p, guest.as_ref())
            {
                let tolerated = start.migration().or_else(|| start.backup());
                let line = format!("phx-hook: guest {vmid}: {why}");
                write_audit(
                    audit,
                    &[Event::new(Some(vmid), "pre-start", "credentials", "failed")
                        .with("error", why.clone())],
                );
                if tolerated.is_none() && p.plan.required {
                    eprintln!("{line}");
                    return Exit::Failed;
                }
                eprintln!("phx-hook: warning: {why}");
            } else if !p.plan.credentials.is_empty() {
                eprintln!(
                    "phx-hook: guest {vmid}: {} credential(s) handed to QEMU (fw_cfg); removed from the host after start",
                    p.plan.credentials.len()
                );
                write_audit(
                    audit,
                    &[
                        Event::new(Some(vmid), "pre-start", "credentials", "ok").with(
                            "credentials",
                            p.plan
                                .credentials
                                .iter()
                                .map(|c| c.name.clone())
                                .collect::<Vec<_>>(),
                        ),
                    ],
                );
            }
            let n = p.plan.deliveries.len();
            let files = format!("{n} file{}", if n == 1 { "" } else { "s" });
            match guest.as_ref().filter(|g| is_early_container(cfg, vmid, g)) {
                Some(g) => {
                    if let Err(why) =
                        crate::early::stage(cfg, vmid, g, &p.plan.deliveries, p.plan.required)
                    {
                        let tolerated = start.migration().or_else(|| start.backup());
                        write_audit(
                            audit,
                            &[Event::new(Some(vmid), "pre-start", "stage", "failed")
                                .with("error", why.clone())],
                        );
                        if tolerated.is_none() && p.plan.required {
                            eprintln!("phx-hook: guest {vmid}: {why}");
                            return Exit::Failed;
                        }
                        eprintln!(
                            "phx-hook: warning: guest {vmid}: {why}; the files follow after start"
                        );
                    } else {
                        eprintln!(
                            "phx-hook: guest {vmid}: {files} staged in host RAM for the container's mount hook (in place before its init starts)"
                        );
                    }
                }
                None => eprintln!("phx-hook: guest {vmid}: {files} ready for delivery after start"),
            }
            write_audit(
                audit,
                &[
                    hook::decrypt_event(vmid, "pre-start", &p.vault),
                    Event::new(Some(vmid), "pre-start", "validate", "ok")
                        .with("files", p.plan.deliveries.len())
                        .with(
                            "keys",
                            p.plan
                                .deliveries
                                .iter()
                                .flat_map(|d| d.keys.iter().map(ToString::to_string))
                                .collect::<Vec<_>>(),
                        )
                        .with("start", start.migration().or_else(|| start.backup()))
                        .with("task", start.task.clone()),
                ],
            );
            Exit::Ok
        }
    }
}

/// Whether container `g` runs phx-hook's mount hook for itself (`register --early`).
/// A line another container's config was copied with (a clone, a restore) is named in
/// a warning: it delivers nothing here.
fn is_early_container(cfg: &Config, vmid: Vmid, g: &crate::pve::GuestConfig) -> bool {
    if g.kind != GuestKind::Lxc {
        return false;
    }
    let Some(text) = g.text() else { return false };
    let ours = crate::early::staging(cfg, vmid);
    if crate::early::is_early(&text, &ours) {
        return true;
    }
    if !crate::early::hook_stagings(&text).is_empty() {
        eprintln!(
            "phx-hook: warning: guest {vmid}: its config has another container's phx-hook mount hook (copied by a clone or restore?); it delivers nothing here. Run `phx-hook register {vmid} --early` (or unregister) to fix the line."
        );
    }
    false
}

/// A VM's systemd credentials, for QEMU to read at start-up: the VM's `args` must pass
/// each to QEMU (`register --early` puts them there), and they are written to the host's
/// RAM (see [`crate::credentials`]).
fn credentials_for_qemu(
    cfg: &Config,
    vmid: Vmid,
    p: &hook::Prepared,
    guest: Option<&crate::pve::GuestConfig>,
) -> Result<(), String> {
    if p.kind != GuestKind::Qemu {
        return Err(
            "`credential` entries are for VMs (QEMU's fw_cfg); a container gets files".into(),
        );
    }
    let names: Vec<&str> = p.plan.credentials.iter().map(|c| c.name.as_str()).collect();
    let args = guest.and_then(|g| g.get("args"));
    let missing = crate::credentials::missing(cfg, vmid, args.as_deref(), &names);
    if !missing.is_empty() {
        return Err(format!(
            "the VM's `args` do not pass credential(s) {} to QEMU; run `phx-hook register {vmid} --early`",
            missing.join(", ")
        ));
    }
    crate::credentials::write(cfg, vmid, &p.plan.credentials)
}

/// pre-start of a guest without a manifest. A guest registered with `phx-hook register`
/// expects its secrets: a missing manifest (a node-local manifests directory on the node
/// HA or a migration moved it to, say) fails the start, instead of booting it without
/// them. Any other guest (a clone that inherited the hookscript) starts, with a warning.
fn no_manifest(cfg: &Config, audit: &Audit, vmid: Vmid) -> Exit {
    let path = crate::manifest::path_for(&cfg.manifests, vmid);
    if !crate::register::is_registered(cfg, vmid) {
        let ours = crate::pve::find_guest(&cfg.pve.config_dir, vmid)
            .ok()
            .and_then(|g| g.get("hookscript"))
            .is_some_and(|h| crate::register::is_ours(&h));
        if ours {
            eprintln!(
                "phx-hook: warning: guest {vmid} has phx-hook as its hookscript but was not registered (a clone?) and has no manifest (`{path}`): nothing to deliver"
            );
        }
        return Exit::Ok;
    }
    let local = if crate::config::is_pmxcfs(&cfg.pve.config_dir)
        && crate::files::pmxcfs_root(&cfg.manifests).is_none()
    {
        format!(
            "; the manifests are node-local, so every node needs them (or move them to {}/phx-hook/manifests, which every node sees)",
            cfg.pve.config_dir
        )
    } else {
        String::new()
    };
    eprintln!(
        "phx-hook: guest {vmid} is registered with phx-hook but this node has no manifest for it: `{path}` is missing{local}. Restore it, or `phx-hook unregister {vmid}`."
    );
    write_audit(
        audit,
        &[Event::new(Some(vmid), "pre-start", "validate", "failed")
            .with("error", format!("no manifest at {path}"))],
    );
    Exit::Failed
}

/// Why post-start must not start a worker, if it must not.
fn skip_reason(cfg: &Config, vmid: Vmid) -> Option<String> {
    let guest = crate::pve::find_guest(&cfg.pve.config_dir, vmid).ok()?;
    let start = Start::detect(Some(&guest));
    // A live-migrated VM keeps its memory, secrets included. Containers migrate only by
    // restart (docs/PROXMOX.md §10), so theirs is a fresh boot: deliver.
    if guest.kind == GuestKind::Qemu
        && let Some(why) = start.migration()
    {
        return Some(format!("{why}: the guest already has its secrets"));
    }
    if guest.kind == GuestKind::Qemu
        && let Some(os) = guest.get("ostype").filter(|o| crate::pve::is_windows(o))
    {
        return Some(format!(
            "a Windows VM (`ostype: {os}`), which phx-hook cannot deliver into yet"
        ));
    }
    None
}

fn post_start(cfg: &Config, audit: &Audit, vmid: Vmid, config: Option<&Utf8Path>) -> Exit {
    // A container's mount hook ran before its init: what it wrote (and its staging
    // directory, gone now).
    let early = crate::early::collect(cfg, vmid);
    if let Some(report) = &early {
        early_report(audit, vmid, report, "post-start");
    }
    // QEMU has read its credentials (fw_cfg files are read at start-up): off the host.
    if crate::credentials::remove(cfg, vmid) > 0 {
        write_audit(
            audit,
            &[Event::new(
                Some(vmid),
                "post-start",
                "credentials-removed",
                "ok",
            )],
        );
    }
    if !crate::manifest::path_for(&cfg.manifests, vmid).exists() {
        return Exit::Ok;
    }
    let task = hook::parent_task();
    if let Some(why) = skip_reason(cfg, vmid) {
        eprintln!("phx-hook: guest {vmid}: not delivering: {why}");
        write_audit(
            audit,
            &[Event::new(Some(vmid), "post-start", "skip", "skipped")
                .with("reason", why)
                .with("task", task)],
        );
        return Exit::Ok;
    }
    let extra: &[&str] = if early.is_some() { &["--early"] } else { &[] };
    match spawn_worker(vmid, config, extra) {
        Ok(()) => {
            eprintln!(
                "phx-hook: guest {vmid}: delivery handed to a background worker (see the journal, identifier phx-hook)"
            );
            write_audit(
                audit,
                &[Event::new(Some(vmid), "post-start", "spawn", "ok").with("task", task)],
            );
        }
        Err(e) => {
            eprintln!("phx-hook: guest {vmid}: failed to start the delivery worker: {e}");
            write_audit(
                audit,
                &[Event::new(Some(vmid), "post-start", "spawn", "failed")
                    .with("error", e.to_string())],
            );
        }
    }
    // post-start never fails the start: the guest is already running.
    Exit::Ok
}

/// The most files of a mount hook's report that are audited.
const MAX_REPORTED: usize = 4096;

/// The mount hook's report, in the task log (one line) and the audit trail (a line per
/// file). Its text came from a process the container's root could have tampered with
/// once its init ran: escaped and cut like any guest text.
fn early_report(audit: &Audit, vmid: Vmid, report: &crate::early::HookReport, phase: &str) {
    let failed = report.files.iter().filter(|f| f.3.is_some()).count();
    let ok = report.files.len() - failed;
    if phase != "post-start" {
        if failed > 0 {
            eprintln!(
                "phx-hook: guest {vmid}: the mount hook could not deliver {failed} file(s); see `phx-hook audit`"
            );
        }
    } else if failed == 0 {
        eprintln!(
            "phx-hook: guest {vmid}: {ok} file(s) delivered by the mount hook, before the container's init started"
        );
    } else {
        eprintln!(
            "phx-hook: guest {vmid}: the mount hook delivered {ok} of {} file(s); the worker tries the rest",
            report.files.len()
        );
    }
    let events: Vec<Event> = report
        .files
        .iter()
        .take(MAX_REPORTED)
        .map(|(dest, keys, size, error)| {
            let e = Event::new(
                Some(vmid),
                phase,
                "deliver",
                if error.is_none() { "ok" } else { "failed" },
            )
            .with("transport", "lxc-mount-hook")
            .with("dest", crate::text::guest(dest.as_bytes()))
            .with(
                "keys",
                keys.iter()
                    .map(|k| crate::text::guest(k.as_bytes()))
                    .collect::<Vec<_>>(),
            )
            .with("size", *size);
            match error {
                Some(why) => e.with("error", crate::text::guest(why.as_bytes())),
                None => e,
            }
        })
        .collect();
    write_audit(audit, &events);
}

/// Start `phx-hook [--config C] __worker <vmid> [extra]` in a session of its own (made
/// before exec: docs/PROXMOX.md §13), with stdio on /dev/null.
fn spawn_worker(vmid: Vmid, config: Option<&Utf8Path>, extra: &[&str]) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let mut c = Command::new(exe);
    if let Some(cfg) = config {
        c.arg("--config").arg(cfg.as_str());
    }
    c.arg(WORKER).arg(vmid.to_string()).args(extra);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Not waited for: stage 1 exits at once and is reaped by init once we exit.
    crate::sys::spawn_in_new_session(&mut c).map(drop)
}

/// The detached worker. Stage 1 (already in its own session) drops Proxmox's
/// descriptors and starts stage 2, which is no session leader and so can never regain a
/// controlling terminal; stage 2 takes the guest's generation and delivers.
pub(crate) fn worker(vmid: Vmid, stage2: bool, early: bool, config: Option<&Utf8Path>) -> Exit {
    if !stage2 {
        crate::sys::close_inherited_fds();
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(_) => return Exit::Failed,
        };
        let mut c = Command::new(exe);
        if let Some(cfg) = config {
            c.arg("--config").arg(cfg.as_str());
        }
        c.arg(WORKER).arg(vmid.to_string()).arg("--stage2");
        if early {
            c.arg("--early");
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        return match c.spawn() {
            Ok(_) => Exit::Ok,
            Err(_) => Exit::Failed,
        };
    }
    let cfg = match load(config) {
        Ok(c) => c,
        Err(_) => return Exit::Failed,
    };
    let sys = Logger::for_guest(&cfg, vmid, "post-start");
    let audit = Audit::of(&cfg);
    // This start owns the guest from now on: a worker of an earlier start that still
    // waits gives up (it checks between waits) and releases the lock.
    let token = match generation::claim(&cfg, vmid) {
        Ok(t) => t,
        Err(e) => {
            sys.log(
                Level::Err,
                &format!(
                    "guest {vmid}: cannot write the worker state in {}: {e}",
                    cfg.state_dir
                ),
            );
            return Exit::Failed;
        }
    };
    let _lock = match hook::worker_lock_wait(&cfg, vmid, cfg.pve.lock_wait) {
        Ok(Some(l)) => l,
        Ok(None) => {
            sys.log(
                Level::Warning,
                &format!(
                    "guest {vmid}: an earlier delivery is still running; not starting another"
                ),
            );
            write_audit(
                &audit,
                &[Event::new(Some(vmid), "post-start", "skip", "skipped")
                    .with("reason", "an earlier delivery is still running")],
            );
            return Exit::Ok;
        }
        Err(e) => {
            sys.log(
                Level::Err,
                &format!(
                    "guest {vmid}: cannot take the worker lock in {}: {e}",
                    cfg.state_dir
                ),
            );
            return Exit::Failed;
        }
    };
    let cancel = || generation::superseded(&cfg, vmid, &token);
    if let Some(why) = cancel() {
        sys.log(Level::Info, &format!("guest {vmid}: not delivering: {why}"));
        write_audit(
            &audit,
            &[Event::new(Some(vmid), "post-start", "deliver", "cancelled").with("reason", why)],
        );
        return Exit::Ok;
    }
    let p = match hook::prepare(&cfg, vmid) {
        Check::NoManifest => return Exit::Ok,
        Check::Failed { line, count, .. } => {
            sys.log(Level::Err, &format!("not delivering: {line}"));
            write_audit(
                &audit,
                &[Event::new(Some(vmid), "post-start", "validate", "failed")
                    .with("error", line)
                    .with("problems", count)],
            );
            return Exit::Failed;
        }
        Check::Ready(p) => p,
    };
    if p.plan.deliveries.is_empty() {
        // Only credentials, which QEMU had at start-up.
        return Exit::Ok;
    }
    if early {
        return after_early(&cfg, &p, &sys, &audit, &cancel);
    }
    sys.log(
        Level::Info,
        &format!(
            "guest {vmid}: delivering {} file(s)",
            p.plan.deliveries.len()
        ),
    );
    let synced = crate::engine::sync(
        &cfg,
        &p,
        crate::engine::Mode::Full { wait: true },
        "post-start",
        crate::engine::Progress {
            log: &mut |ok, msg| sys.log(if ok { Level::Info } else { Level::Err }, &msg),
            event: &mut |e| log_event(&sys, vmid, &e),
            cancel: &cancel,
        },
    );
    let (report, events) = (synced.report, synced.events);
    let cancelled = events.iter().any(|e| e.outcome == "cancelled");
    let mut all = vec![hook::decrypt_event(vmid, "post-start", &p.vault)];
    all.extend(events);
    write_audit(&audit, &all);
    if cancelled {
        return Exit::Ok;
    }
    let ok = !report.files.is_empty() && report.files_ok() && report.after_ok();
    sys.log(
        if ok { Level::Info } else { Level::Warning },
        &format!(
            "guest {vmid}: {} of {} file(s) delivered",
            report.files.iter().filter(|f| f.outcome.is_ok()).count(),
            p.plan.deliveries.len()
        ),
    );
    if ok { Exit::Ok } else { Exit::Failed }
}

/// The worker after a container's mount hook delivered: wait for the container, record
/// what the hook wrote (as `pre-start` staged it), then deliver only what differs (what
/// the hook could not write, or a vault that changed since). `after` runs only if
/// something was delivered now: the services started with their files in place.
fn after_early(
    cfg: &Config,
    p: &hook::Prepared,
    sys: &Logger,
    audit: &Audit,
    cancel: &dyn Fn() -> Option<String>,
) -> Exit {
    let vmid = p.plan.vmid;
    let delivered = crate::early::take_delivered(cfg, vmid);
    let mut log = |ok: bool, msg: String| sys.log(if ok { Level::Info } else { Level::Err }, &msg);
    if let Err(events) = hook::wait_for_guest(cfg, p, &mut log, cancel) {
        write_audit(audit, &events);
        return Exit::Ok;
    }
    if let Err(e) = crate::engine::adopt(cfg, p, &delivered) {
        sys.log(Level::Warning, &format!("guest {vmid}: {e}"));
    }
    let synced = crate::engine::sync(
        cfg,
        p,
        crate::engine::Mode::Diff,
        "post-start",
        crate::engine::Progress {
            log: &mut log,
            event: &mut |e| log_event(sys, vmid, &e),
            cancel,
        },
    );
    let mut events = vec![hook::decrypt_event(vmid, "post-start", &p.vault)];
    events.extend(synced.events);
    write_audit(audit, &events);
    match synced.state {
        crate::engine::State::InSync => {
            sys.log(
                Level::Info,
                &format!(
                    "guest {vmid}: {} file(s) delivered before the container's init started; in sync",
                    delivered.len()
                ),
            );
            Exit::Ok
        }
        crate::engine::State::Repaired | crate::engine::State::Cancelled(_) => Exit::Ok,
        crate::engine::State::Failed(why) | crate::engine::State::Unreachable(why) => {
            sys.log(Level::Err, &format!("guest {vmid}: {why}"));
            Exit::Failed
        }
    }
}

/// One journal line for a file or `after` command that is done; whether it went well.
pub(crate) fn log_event(sys: &Logger, vmid: Vmid, e: &crate::deliver::Event<'_>) {
    let (ok, line) = event_line(vmid, e);
    let event = match e {
        crate::deliver::Event::File(_) => "deliver",
        crate::deliver::Event::After(_) => "after",
    };
    let (level, outcome) = if ok {
        (Level::Info, "ok")
    } else {
        (Level::Err, "failed")
    };
    sys.event(level, &line, event, outcome, &[]);
}

pub(crate) fn event_line(vmid: Vmid, e: &crate::deliver::Event<'_>) -> (bool, String) {
    use crate::deliver::Event;
    match e {
        Event::File(f) => match &f.outcome {
            Ok(_) => (
                true,
                format!("guest {vmid}: delivered {} ({} bytes)", f.dest, f.size),
            ),
            Err(why) => (
                false,
                format!("guest {vmid}: failed to deliver {}: {why}", f.dest),
            ),
        },
        Event::After(a) => match &a.outcome {
            Ok(o) if o.success() => (true, format!("guest {vmid}: ran {}", a.argv.join(" "))),
            Ok(o) => (
                false,
                format!(
                    "guest {vmid}: {} failed (exit {:?}, signal {:?})",
                    a.argv.join(" "),
                    o.exitcode,
                    o.signal
                ),
            ),
            Err(why) => (
                false,
                format!("guest {vmid}: {} failed: {why}", a.argv.join(" ")),
            ),
        },
    }
}

/// Run the hookscript phx-hook replaced (registered with `--chain`), after phx-hook's own
/// work, for every phase. For `pre-start` its exit status counts; phx-hook's failure
/// already aborts the start, so the old hook is not run then. A chained hook that
/// cannot be found is an error, as Proxmox's own `check_hookscript` makes it: it aborts
/// a start and is a warning in every other phase, never silently skipped.
fn chain(cfg: &Config, vmid: Vmid, phase: &Phase, ours: Exit) -> Exit {
    let path = match crate::register::chained_hook(cfg, vmid) {
        Ok(None) => return ours,
        Ok(Some(p)) => p,
        Err(why) => {
            eprintln!("phx-hook: guest {vmid}: the chained hookscript cannot be run: {why}");
            return if *phase == Phase::PreStart {
                Exit::Failed
            } else {
                ours
            };
        }
    };
    if *phase == Phase::PreStart && ours != Exit::Ok {
        return ours;
    }
    match Command::new(path.as_str())
        .arg(vmid.to_string())
        .arg(phase.to_string())
        .stdin(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => ours,
        Ok(s) => {
            eprintln!(
                "phx-hook: guest {vmid}: the chained hookscript `{path}` failed on {phase} ({s})"
            );
            if *phase == Phase::PreStart {
                Exit::Failed
            } else {
                ours
            }
        }
        Err(e) => {
            eprintln!("phx-hook: guest {vmid}: cannot run the chained hookscript `{path}`: {e}");
            if *phase == Phase::PreStart {
                Exit::Failed
            } else {
                ours
            }
        }
    }
}
