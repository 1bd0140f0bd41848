//! What phx-hook does at each Proxmox phase (DESIGN §3), without printing: `prepare`
//! validates everything `pre-start` must check and yields either the plan or one line
//! naming guest, file and problem; `skip_reason` says when `post-start` must not deliver
//! (live-migration target, backup of a stopped VM); `deliver` is the detached worker's job.
//! The CLI (`cli::hook`) turns these into exit codes, task-log lines and the worker process.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

use crate::audit::Event;
use crate::config::{Config, LxcTransport};
use crate::deliver::lxc::NativeTransport;
use crate::deliver::pct::PctTransport;
use crate::deliver::qga::QgaTransport;
use crate::deliver::{self, Report, Transport};
use crate::manifest::{self, Manifest};
use crate::plan::{self, Plan, Problem};
use crate::pve::{self, GuestConfig};
use crate::types::{GuestKind, Vmid};
use crate::vault::{Vault, VaultInfo};

/// Everything needed to deliver to one guest.
pub struct Prepared {
    /// VM or container.
    pub kind: GuestKind,
    /// The decrypted vault.
    pub vault: Vault,
    /// What resolved.
    pub plan: Plan,
    /// What did not (only with `required: false`).
    pub problems: Vec<Problem>,
}

/// The outcome of validation.
pub enum Check {
    /// The guest has no manifest: phx-hook has nothing to do.
    NoManifest,
    /// Ready to deliver.
    Ready(Box<Prepared>),
    /// Something is wrong.
    Failed {
        /// Whether the manifest requires its secrets (`required: true`, the default).
        required: bool,
        /// One line: guest, file, problem.
        line: String,
        /// How many problems there are.
        count: usize,
    },
}

/// Why a guest is not ready: whether its manifest requires its secrets, and every problem.
type Unready = (bool, Vec<String>);

/// The one task-log line for `problems`: the first, and how many more.
fn failure_line(vmid: Vmid, problems: &[String]) -> String {
    let mut line = format!(
        "guest {vmid}: {}",
        problems.first().map_or("unknown problem", String::as_str)
    );
    if problems.len() > 1 {
        line.push_str(&format!(
            " (and {} more; run `phx-hook check {vmid}`)",
            problems.len() - 1
        ));
    }
    line
}

fn failed(vmid: Vmid, (required, problems): Unready) -> Check {
    Check::Failed {
        required,
        line: failure_line(vmid, &problems),
        count: problems.len(),
    }
}

/// Validate everything for `vmid`: manifest, guest config (exists; agent enabled for a
/// VM), vault and signature policy, every key and template.
pub fn prepare(cfg: &Config, vmid: Vmid) -> Check {
    let (m, kind) = match guest_checks(cfg, vmid) {
        Ok(Some(ready)) => ready,
        Ok(None) => return Check::NoManifest,
        Err(u) => return failed(vmid, u),
    };
    let wanted = crate::vault::Wanted::new(m.files.iter().flat_map(|f| f.content.keys()));
    let vault = match Vault::open_for(cfg, &wanted) {
        Ok(v) => v,
        Err(e) => return failed(vmid, (m.required, vec![e.to_string()])),
    };
    match resolve(&m, &vault) {
        Ok((plan, problems)) => Check::Ready(Box::new(Prepared {
            kind,
            vault,
            plan,
            problems,
        })),
        Err(u) => failed(vmid, u),
    }
}

/// What [`prepare`] decides for `vmid`, against a vault that is already open, so that
/// `doctor` checks every guest with one decryption. `Err` is `prepare`'s one line.
pub fn validate_with(cfg: &Config, vmid: Vmid, vault: &Vault) -> Result<(), String> {
    match guest_checks(cfg, vmid) {
        Ok(Some((m, _))) => resolve(&m, vault).map(drop),
        Ok(None) => Ok(()),
        Err(u) => Err(u),
    }
    .map_err(|(_, problems)| failure_line(vmid, &problems))
}

/// The manifest and the guest's Proxmox config, checked against each other: `None`
/// when the guest has no manifest.
fn guest_checks(cfg: &Config, vmid: Vmid) -> Result<Option<(Manifest, GuestKind)>, Unready> {
    let m = match manifest::load(&cfg.manifests, vmid) {
        Ok(None) => return Ok(None),
        Ok(Some(m)) => m,
        Err(e) => return Err((true, e.problems.iter().map(ToString::to_string).collect())),
    };
    let required = m.required;
    let g =
        pve::find_guest(&cfg.pve.config_dir, vmid).map_err(|e| (required, vec![e.to_string()]))?;
    let kind = g.kind;
    if let Some(k) = m.guest
        && k != kind
    {
        return Err((
            required,
            vec![format!(
                "{}: the manifest says `guest: {k}`, but `{}` is a {kind} config",
                m.path, g.path
            )],
        ));
    }
    if kind == GuestKind::Qemu && !g.agent_enabled() {
        return Err((
            required,
            vec![format!(
                "{}: the QEMU guest agent is not enabled, so secrets cannot be delivered (enable it: `qm set {vmid} --agent enabled=1`)",
                g.path
            )],
        ));
    }
    Ok(Some((m, kind)))
}

/// Every key and template of `m` against `vault`: what resolved, and what did not when
/// the manifest allows that (`required: false`).
fn resolve(m: &Manifest, vault: &Vault) -> Result<(Plan, Vec<Problem>), Unready> {
    let (plan, problems) = plan::build_partial(m, vault);
    if !problems.is_empty() && m.required {
        return Err((true, problems.iter().map(ToString::to_string).collect()));
    }
    Ok((plan, problems))
}

/// Why `post-start` must not deliver, if it must not.
pub fn skip_reason(guest: Option<&GuestConfig>, migrated_from: Option<&str>) -> Option<String> {
    if let Some(node) = migrated_from.filter(|n| !n.is_empty()) {
        return Some(format!(
            "live-migration target (migrated from {node}): the guest already has its secrets"
        ));
    }
    if guest.and_then(|g| g.get("lock")).as_deref() == Some("backup") {
        return Some(
            "the guest is locked for a backup (`lock: backup`): it is started only to be backed up"
                .into(),
        );
    }
    None
}

/// Poll a VM's guest agent (on the socket Proxmox uses) until it answers or `bound`
/// passes; how long it took.
pub fn wait_for_agent(
    cfg: &Config,
    vmid: Vmid,
    bound: std::time::Duration,
) -> Result<std::time::Duration, crate::deliver::DeliverError> {
    let socket = cfg.pve.qga_socket_dir.join(format!("{vmid}.qga"));
    QgaTransport::new(vmid, socket.into(), cfg.agent.timeout).wait(bound)
}

/// The transport for a guest, as the config says.
pub fn transport_for(cfg: &Config, vmid: Vmid, kind: GuestKind) -> Box<dyn Transport> {
    match kind {
        GuestKind::Qemu => Box::new(QgaTransport::new(
            vmid,
            cfg.pve.qga_socket_dir.join(format!("{vmid}.qga")).into(),
            cfg.agent.timeout,
        )),
        GuestKind::Lxc => match cfg.pve.lxc_transport {
            LxcTransport::Pct => Box::new(PctTransport::new(
                vmid,
                &cfg.pve.pct,
                cfg.pve.lock_dir_lxc.join(format!("pve-config-{vmid}.lock")),
                cfg.pve.lock_wait,
                cfg.agent.timeout,
            )),
            LxcTransport::Native => Box::new(NativeTransport::new(
                vmid,
                &cfg.pve.lxc_info,
                &cfg.pve.lxc_attach,
                cfg.agent.timeout,
            )),
        },
    }
}

/// A held per-guest worker lock (released on drop).
pub struct WorkerLock {
    _file: fs::File,
}

/// Take the per-guest worker lock without waiting; `Ok(None)` when another worker for
/// this guest holds it (a second start while the first delivery still runs).
pub fn worker_lock(cfg: &Config, vmid: Vmid) -> std::io::Result<Option<WorkerLock>> {
    fs::create_dir_all(&cfg.state_dir)?;
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(cfg.state_dir.join(format!("worker-{vmid}.lock")))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(WorkerLock { _file: f })),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The worker's job: wait for the guest (a VM's agent, up to `agent.wait`; a container's
/// config lock, inside the pct transport), deliver, run `after`. Progress goes to `log`;
/// audit events are returned for the caller to record with the rest.
pub fn deliver(
    cfg: &Config,
    p: &Prepared,
    log: &mut dyn FnMut(bool, String),
) -> (Report, Vec<Event>) {
    let vmid = p.plan.vmid;
    let mut events = Vec::new();
    for prob in &p.problems {
        log(
            false,
            format!("guest {vmid}: skipped (required: false): {prob}"),
        );
    }
    if p.kind == GuestKind::Qemu {
        match wait_for_agent(cfg, vmid, cfg.agent.wait) {
            Ok(took) => log(
                true,
                format!(
                    "guest {vmid}: the guest agent answered after {:.1}s",
                    took.as_secs_f64()
                ),
            ),
            Err(e) => {
                log(false, format!("guest {vmid}: {e}"));
                events.push(
                    Event::new(Some(vmid), "post-start", "deliver", "failed")
                        .with("transport", "qga")
                        .with("error", e.to_string()),
                );
                return (Report::default(), events);
            }
        }
    }
    let mut t = transport_for(cfg, vmid, p.kind);
    let report = deliver::execute(&p.plan, t.as_mut(), &mut |e| match e {
        deliver::Event::File(f) => match &f.outcome {
            Ok(_) => log(
                true,
                format!("guest {vmid}: delivered {} ({} bytes)", f.dest, f.size),
            ),
            Err(why) => log(
                false,
                format!("guest {vmid}: failed to deliver {}: {why}", f.dest),
            ),
        },
        deliver::Event::After(a) => match &a.outcome {
            Ok(o) if o.success() => log(true, format!("guest {vmid}: ran {}", a.argv.join(" "))),
            Ok(o) => log(
                false,
                format!(
                    "guest {vmid}: {} failed (exit {:?}, signal {:?})",
                    a.argv.join(" "),
                    o.exitcode,
                    o.signal
                ),
            ),
            Err(why) => log(
                false,
                format!("guest {vmid}: {} failed: {why}", a.argv.join(" ")),
            ),
        },
    });
    events.extend(delivery_events(
        vmid,
        "post-start",
        t.name(),
        &report,
        &p.vault.info,
    ));
    (report, events)
}

/// The audit event for a decrypt not tied to a guest (`run`).
pub fn decrypt_event_nohost(phase: &str, vault: &VaultInfo) -> Event {
    Event::new(None, phase, "decrypt", "ok")
        .with("vault", vault.path.as_str())
        .with("vault_digest", vault.digest.as_str())
        .with("vault_version", vault.version)
        .with("signer", vault.signer.clone())
}

/// The audit event for a successful decrypt for a guest.
pub fn decrypt_event(vmid: Vmid, phase: &str, vault: &VaultInfo) -> Event {
    let mut e = decrypt_event_nohost(phase, vault);
    e.vmid = Some(vmid);
    e
}

/// One audit event per file and per `after` command.
pub fn delivery_events(
    vmid: Vmid,
    phase: &str,
    transport: &str,
    r: &Report,
    vault: &VaultInfo,
) -> Vec<Event> {
    let mut out = Vec::new();
    for f in &r.files {
        let e = Event::new(
            Some(vmid),
            phase,
            "deliver",
            if f.outcome.is_ok() { "ok" } else { "failed" },
        )
        .with("transport", transport)
        .with("dest", f.dest.as_str())
        .with("keys", f.keys.clone())
        .with("size", f.size)
        .with("vault_digest", vault.digest.as_str());
        out.push(match &f.outcome {
            Ok(v) => e.with("verified", serde_json::to_value(v).unwrap_or_default()),
            Err(why) => e.with("error", why.as_str()),
        });
    }
    for a in &r.after {
        let ok = matches!(&a.outcome, Ok(o) if o.success());
        let e = Event::new(Some(vmid), phase, "after", if ok { "ok" } else { "failed" })
            .with("argv", a.argv.clone());
        out.push(match &a.outcome {
            Ok(o) => e.with("exitcode", o.exitcode).with("signal", o.signal),
            Err(why) => e.with("error", why.as_str()),
        });
    }
    out
}
