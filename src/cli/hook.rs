//! Hook mode, `phx-hook <vmid> <phase>`, as Proxmox VE runs a hookscript (PROXMOX.md §1):
//! argv `[path, vmid, phase]`, stdin empty, stdout and stderr copied into the task log
//! that the user who started the guest can read, a non-zero `pre-start` aborts the start,
//! and the start task waits until both pipes are closed. So: `pre-start` validates and
//! fails closed with one line; `post-start` hands delivery to a detached worker (its own
//! session, stdio on /dev/null, no inherited descriptors) and returns at once; every
//! other phase is audited and exits 0. Nothing here prints a value.

use std::process::{Command, Stdio};

use camino::Utf8Path;

use super::Exit;
use super::inject::write_audit;
use crate::audit::{Audit, Event};
use crate::config::{CONFIG_ENV, Config};
use crate::hook::{self, Check};
use crate::syslog::{Level, Syslog};
use crate::types::{Phase, Vmid};

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
    let audit = Audit::new(&cfg.audit_log);
    let code = match &phase {
        Phase::PreStart => pre_start(&cfg, &audit, vmid),
        Phase::PostStart => post_start(&cfg, &audit, vmid, config),
        Phase::PreStop | Phase::PostStop => {
            if crate::manifest::path_for(&cfg.manifests, vmid).exists() {
                write_audit(
                    &audit,
                    &[Event::new(Some(vmid), &phase.to_string(), "phase", "ok")],
                );
            }
            Exit::Ok
        }
        Phase::Other(p) => {
            log::debug!("guest {vmid}: ignoring unknown phase `{p}`");
            Exit::Ok
        }
    };
    chain(&cfg, vmid, &phase, code)
}

fn pre_start(cfg: &Config, audit: &Audit, vmid: Vmid) -> Exit {
    match hook::prepare(cfg, vmid) {
        Check::NoManifest => Exit::Ok,
        Check::Failed {
            required,
            line,
            count,
        } => {
            let outcome = if required {
                eprintln!("phx-hook: {line}");
                "failed"
            } else {
                eprintln!("phx-hook: warning: {line} (required: false, the start goes on)");
                "warning"
            };
            write_audit(
                audit,
                &[Event::new(Some(vmid), "pre-start", "validate", outcome)
                    .with("error", line)
                    .with("problems", count)],
            );
            if required { Exit::Failed } else { Exit::Ok }
        }
        Check::Ready(p) => {
            for prob in &p.problems {
                eprintln!("phx-hook: warning: guest {vmid}: {prob} (required: false)");
            }
            eprintln!(
                "phx-hook: guest {vmid}: {} file{} ready for delivery after start",
                p.plan.deliveries.len(),
                if p.plan.deliveries.len() == 1 {
                    ""
                } else {
                    "s"
                }
            );
            write_audit(
                audit,
                &[
                    hook::decrypt_event(vmid, "pre-start", &p.vault.info),
                    Event::new(Some(vmid), "pre-start", "validate", "ok")
                        .with("files", p.plan.deliveries.len())
                        .with(
                            "keys",
                            p.plan
                                .deliveries
                                .iter()
                                .flat_map(|d| d.keys.iter().map(ToString::to_string))
                                .collect::<Vec<_>>(),
                        ),
                ],
            );
            Exit::Ok
        }
    }
}

fn post_start(cfg: &Config, audit: &Audit, vmid: Vmid, config: Option<&Utf8Path>) -> Exit {
    if !crate::manifest::path_for(&cfg.manifests, vmid).exists() {
        return Exit::Ok;
    }
    let guest = crate::pve::find_guest(&cfg.pve.config_dir, vmid).ok();
    let migrated = std::env::var("PVE_MIGRATED_FROM").ok();
    if let Some(why) = hook::skip_reason(guest.as_ref(), migrated.as_deref()) {
        eprintln!("phx-hook: guest {vmid}: not delivering: {why}");
        write_audit(
            audit,
            &[Event::new(Some(vmid), "post-start", "skip", "skipped").with("reason", why)],
        );
        return Exit::Ok;
    }
    match spawn_worker(vmid, config, &[]) {
        Ok(()) => {
            eprintln!(
                "phx-hook: guest {vmid}: delivery handed to a background worker (see the journal, identifier phx-hook)"
            );
            write_audit(
                audit,
                &[Event::new(Some(vmid), "post-start", "spawn", "ok")],
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

/// Start `phx-hook [--config C] __worker <vmid> [extra]` with stdio on /dev/null.
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
    c.spawn().map(drop)
}

/// The detached worker. Stage 1 leaves Proxmox's session and descriptors behind and
/// starts stage 2, which delivers.
pub(crate) fn worker(vmid: Vmid, stage2: bool, config: Option<&Utf8Path>) -> Exit {
    if !stage2 {
        crate::sys::close_inherited_fds();
        // Its own session: `qm start` from a shell kills the task's process group when
        // the task ends (PROXMOX.md §1.4).
        let _ = nix::unistd::setsid();
        return match spawn_worker(vmid, config, &["--stage2"]) {
            Ok(()) => Exit::Ok,
            Err(_) => Exit::Failed,
        };
    }
    let cfg = match load(config) {
        Ok(c) => c,
        Err(_) => return Exit::Failed,
    };
    let sys = Syslog::new(&cfg.syslog);
    let audit = Audit::new(&cfg.audit_log);
    let _lock = match hook::worker_lock(&cfg, vmid) {
        Ok(Some(l)) => l,
        Ok(None) => {
            sys.log(
                Level::Info,
                &format!("guest {vmid}: a delivery is already running; not starting another"),
            );
            write_audit(
                &audit,
                &[Event::new(Some(vmid), "post-start", "skip", "skipped")
                    .with("reason", "a delivery is already running")],
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
    sys.log(
        Level::Info,
        &format!(
            "guest {vmid}: delivering {} file(s)",
            p.plan.deliveries.len()
        ),
    );
    let (report, events) = hook::deliver(&cfg, &p, &mut |ok, msg| {
        sys.log(if ok { Level::Info } else { Level::Err }, &msg)
    });
    let mut all = vec![hook::decrypt_event(vmid, "post-start", &p.vault.info)];
    all.extend(events);
    write_audit(&audit, &all);
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

/// Run the hookscript phx-hook replaced (registered with `--chain`), after phx-hook's own
/// work, for every phase. For `pre-start` its exit status counts; phx-hook's failure
/// already aborts the start, so the old hook is not run then.
fn chain(cfg: &Config, vmid: Vmid, phase: &Phase, ours: Exit) -> Exit {
    let Some(path) = crate::register::chained_hook(cfg, vmid) else {
        return ours;
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
