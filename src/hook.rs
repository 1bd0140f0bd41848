//! What phx-hook does at each Proxmox phase (DESIGN §3), without printing: `prepare`
//! validates everything `pre-start` must check and yields either the plan or one line
//! naming guest, file and problem; [`Start`] says what kind of start Proxmox is making
//! (a live-migration target, a backup's start); [`generation`] lets a newer start (or a
//! stop) retire a worker that still waits; `deliver` is the detached worker's job. The
//! CLI (`cli::hook`) turns these into exit codes, task-log lines and the worker process.
//! Every Proxmox behaviour relied on here is cited in docs/PROXMOX.md.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

use crate::audit::Event;
use crate::config::{Config, LxcTransport};
use crate::deliver::lxc::NativeTransport;
use crate::deliver::pct::PctTransport;
use crate::deliver::qga::QgaTransport;
use crate::deliver::{Report, Transport};
use crate::manifest::{self, Manifest};
use crate::plan::{self, Plan, Problem};
use crate::pve::{self, GuestConfig};
use crate::types::{GuestKind, Vmid};
use crate::vault::{Vault, VaultInfo};

/// Everything needed to deliver to one guest.
pub struct Prepared {
    /// VM or container.
    pub kind: GuestKind,
    /// What may be said about the vault it was planned from.
    pub vault: VaultInfo,
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
            vault: vault.info,
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
    if kind == GuestKind::Qemu
        && let Some(os) = g.get("ostype").filter(|o| pve::is_windows(o))
    {
        return Err((
            required,
            vec![format!(
                "{}: guest {vmid} is a Windows VM (`ostype: {os}`): phx-hook cannot deliver into Windows guests yet (remove {}, or set `required: false` to start it without its secrets)",
                g.path, m.path
            )],
        ));
    }
    // Credentials reach the guest through QEMU's fw_cfg: only files need the agent.
    if kind == GuestKind::Qemu && m.files.iter().any(|f| f.to_guest) && !g.agent_enabled() {
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

/// What kind of start Proxmox is making, from what it gives a hookscript: the
/// environment (`PVE_MIGRATED_FROM`), the guest's config (`lock`), and the task the hook
/// runs in (its parent, a Proxmox worker, is titled `task UPID:...:TYPE:...`:
/// pve-common `PVE::RESTEnvironment::fork_worker` sets `$0`, and `run_command` forks
/// the hook from it). docs/PROXMOX.md §7.3, §9, §10 and §13 say which start carries which sign.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Start {
    /// `PVE_MIGRATED_FROM`, when non-empty: the source node of an intra-cluster live
    /// migration (qemu-server `vm_start_nolock`; never set for containers, nor for a
    /// remote migration).
    pub migrated_from: Option<String>,
    /// The config's `lock` (`backup`, `migrate`, ...).
    pub lock: Option<String>,
    /// The type of the Proxmox task the hook runs in (`qmstart`, `vzdump`, `qmtunnel`, ...).
    pub task: Option<String>,
}

impl Start {
    /// The start this process is part of.
    pub fn detect(guest: Option<&GuestConfig>) -> Start {
        Start {
            migrated_from: std::env::var("PVE_MIGRATED_FROM")
                .ok()
                .filter(|n| !n.is_empty()),
            lock: guest.and_then(|g| g.get("lock")),
            task: parent_task(),
        }
    }

    /// Why this is the target of a migration, if it is: `PVE_MIGRATED_FROM` (intra-
    /// cluster), `lock: migrate` (the target's config during an intra-cluster or remote
    /// live migration), or a remote-migration tunnel task (`qmtunnel`, `vzmtunnel`).
    pub fn migration(&self) -> Option<String> {
        if let Some(node) = &self.migrated_from {
            return Some(format!("live-migration target (migrated from {node})"));
        }
        if self.lock.as_deref() == Some("migrate") {
            return Some("incoming migration (`lock: migrate`)".into());
        }
        match self.task.as_deref() {
            Some(t @ ("qmtunnel" | "vzmtunnel")) => {
                Some(format!("remote-migration target (task {t})"))
            }
            _ => None,
        }
    }

    /// Why this is a backup's start, if it is: `lock: backup` (vzdump of a VM: a stopped
    /// VM started paused to be read, or a running one stopped and started again for a
    /// stop-mode backup), or the vzdump task itself (a container's restart after a
    /// stop-mode backup, which comes after vzdump removed the lock).
    pub fn backup(&self) -> Option<String> {
        if self.lock.as_deref() == Some("backup") {
            return Some("backup start (`lock: backup`)".into());
        }
        (self.task.as_deref() == Some("vzdump")).then(|| "restart by a backup (vzdump task)".into())
    }
}

/// The type field of the parent's `task UPID:node:pid:pstart:starttime:TYPE:id:user:`
/// process title (pve-common `PVE::UPID::encode`), when the parent is a Proxmox worker.
pub fn parent_task() -> Option<String> {
    let ppid = std::os::unix::process::parent_id();
    let cmdline = fs::read(format!("/proc/{ppid}/cmdline")).ok()?;
    let first = cmdline.split(|&b| b == 0).next()?;
    let title = std::str::from_utf8(first).ok()?.trim_end();
    let upid = title.strip_prefix("task UPID:")?;
    let kind = upid.split(':').nth(4)?;
    (!kind.is_empty() && kind.len() <= 32 && kind.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| kind.to_string())
}

/// Per-guest generations: the worker of the newest start owns the guest, and a stop
/// retires it. A worker writes a fresh token when it starts; pre-stop and post-stop
/// write `stopped`; a worker that finds another value in the file gives up before it
/// delivers anything, so a worker still waiting from the boot before a `qm reboot`
/// never delivers a stale plan (and leaves the guest to the new start's worker).
pub mod generation {
    use std::fs;

    use crate::config::Config;
    use crate::types::Vmid;

    fn path(cfg: &Config, vmid: Vmid) -> camino::Utf8PathBuf {
        cfg.state_dir.join(format!("gen-{vmid}"))
    }

    fn write(cfg: &Config, vmid: Vmid, value: &str) -> std::io::Result<()> {
        fs::create_dir_all(&cfg.state_dir)?;
        let tmp = cfg
            .state_dir
            .join(format!(".gen-{vmid}.{}", std::process::id()));
        fs::write(&tmp, value)?;
        fs::rename(&tmp, path(cfg, vmid))
    }

    /// Take the guest for a new worker; its token.
    pub fn claim(cfg: &Config, vmid: Vmid) -> std::io::Result<String> {
        let token = crate::types::hex(&rand::random::<[u8; 8]>());
        write(cfg, vmid, &token)?;
        Ok(token)
    }

    /// The guest stopped: any worker still waiting gives up.
    pub fn stop(cfg: &Config, vmid: Vmid) -> std::io::Result<()> {
        write(cfg, vmid, "stopped")
    }

    /// Why the worker holding `token` must give up, if it must.
    pub fn superseded(cfg: &Config, vmid: Vmid, token: &str) -> Option<String> {
        match fs::read_to_string(path(cfg, vmid)) {
            Ok(t) if t == token => None,
            Ok(t) if t == "stopped" => Some(format!("guest {vmid} was stopped")),
            Ok(_) => Some(format!(
                "a newer start of guest {vmid} took over its delivery"
            )),
            // The state directory is gone (a reboot of the node): nothing to compare.
            Err(_) => None,
        }
    }
}

/// Whether a VM's QEMU process runs: `Some(false)` once its pid file
/// (`<qga_socket_dir>/<vmid>.pid`, qemu-server `PVE::QemuServer::Helpers::pidfile_name`)
/// names a process that is gone or the file was removed after it existed; `None` when
/// there is no pid file to tell.
pub fn qemu_running(cfg: &Config, vmid: Vmid) -> Option<bool> {
    let text = fs::read_to_string(cfg.pve.qga_socket_dir.join(format!("{vmid}.pid"))).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    Some(pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// Poll a VM's guest agent (on the socket Proxmox uses) until it answers or `bound`
/// passes; how long it took.
pub fn wait_for_agent(
    cfg: &Config,
    vmid: Vmid,
    bound: std::time::Duration,
) -> Result<std::time::Duration, crate::deliver::DeliverError> {
    wait_for_agent_unless(cfg, vmid, bound, &|| None)
}

fn wait_for_agent_unless(
    cfg: &Config,
    vmid: Vmid,
    bound: std::time::Duration,
    cancel: &dyn Fn() -> Option<String>,
) -> Result<std::time::Duration, crate::deliver::DeliverError> {
    let socket = cfg.pve.qga_socket_dir.join(format!("{vmid}.qga"));
    QgaTransport::new(vmid, socket.into(), cfg.agent.timeout).wait_unless(bound, cancel)
}

/// Wait until a container is RUNNING (`lxc-info -s`), up to `bound`: Proxmox runs
/// post-start even when it did not see the container reach RUNNING (`monitor_start`
/// "continues anyway" after its 10 s alarm, or without a monitor socket at all:
/// pve-container `PVE::LXC::vm_start`, docs/PROXMOX.md §14).
fn wait_for_container(
    cfg: &Config,
    vmid: Vmid,
    bound: std::time::Duration,
    cancel: &dyn Fn() -> Option<String>,
) -> Result<std::time::Duration, crate::deliver::DeliverError> {
    use crate::deliver::DeliverError;
    use std::time::{Duration, Instant};
    let start = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        if let Some(why) = cancel() {
            return Err(DeliverError::Cancelled(why));
        }
        let mut words = cfg.pve.lxc_info.split_whitespace();
        let mut cmd = std::process::Command::new(words.next().unwrap_or("lxc-info"));
        cmd.args(words).args(["-n", &vmid.to_string(), "-s"]);
        let state = crate::deliver::run_bounded(&mut cmd, None, cfg.agent.timeout)
            .map(|(_, out, _)| String::from_utf8_lossy(&out).into_owned())
            .unwrap_or_default();
        if state
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["State:", "RUNNING"])
        {
            return Ok(start.elapsed());
        }
        if start.elapsed() + pause >= bound {
            return Err(DeliverError::Unreachable(format!(
                "container {vmid} was not running {:.0}s after its start",
                bound.as_secs_f64()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(2));
    }
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

/// Whether a worker (or a repair) is delivering to `vmid` right now.
pub fn worker_busy(cfg: &Config, vmid: Vmid) -> bool {
    let Ok(f) = fs::File::open(cfg.state_dir.join(format!("worker-{vmid}.lock"))) else {
        return false;
    };
    matches!(f.try_lock(), Err(fs::TryLockError::WouldBlock))
}

/// QEMU's own run state of a VM (`query-status` on its QMP socket,
/// `<qga_socket_dir>/<vmid>.qmp`, which Proxmox reaches the same way with short
/// connections): `running`, `paused`, `prelaunch`, `inmigrate`, ... `None` when there is
/// no QMP socket or it does not answer within a second.
pub fn vm_run_state(cfg: &Config, vmid: Vmid) -> Option<String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let path = cfg.pve.qga_socket_dir.join(format!("{vmid}.qmp"));
    let s = std::os::unix::net::UnixStream::connect(&path).ok()?;
    let t = Some(std::time::Duration::from_secs(1));
    s.set_read_timeout(t).ok()?;
    s.set_write_timeout(t).ok()?;
    let mut w = s.try_clone().ok()?;
    let mut r = BufReader::new(s.take(64 * 1024));
    let mut line = String::new();
    r.read_line(&mut line).ok()?; // the greeting
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"query-status\"}\n")
        .ok()?;
    for _ in 0..8 {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && let Some(st) = v["return"]["status"].as_str()
        {
            return Some(crate::text::shown(st.as_bytes(), 32));
        }
    }
    None
}

/// Take the per-guest worker lock, waiting up to `bound` for a worker of an earlier
/// start to notice that it was superseded and let go; `Ok(None)` when it did not.
pub fn worker_lock_wait(
    cfg: &Config,
    vmid: Vmid,
    bound: std::time::Duration,
) -> std::io::Result<Option<WorkerLock>> {
    fs::create_dir_all(&cfg.state_dir)?;
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(cfg.state_dir.join(format!("worker-{vmid}.lock")))?;
    let start = std::time::Instant::now();
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(Some(WorkerLock { _file: f })),
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < bound => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Wait for the guest of `p` to be reachable (a VM's agent, a container's RUNNING state,
/// up to `agent.wait`). `cancel` is asked while waiting and once more at the end: when it
/// gives a reason (a newer start took over, the guest stopped) the wait ends with a
/// `cancelled` event. A VM whose QEMU exits while the worker waits (the backup of a
/// stopped VM: started paused, never booted, stopped again) ends the wait too. Failure
/// or cancellation comes back as the audit events that say so.
pub fn wait_for_guest(
    cfg: &Config,
    p: &Prepared,
    log: &mut dyn FnMut(bool, String),
    cancel: &dyn Fn() -> Option<String>,
) -> Result<(), Vec<Event>> {
    use crate::deliver::DeliverError;
    let vmid = p.plan.vmid;
    let had_pid = qemu_running(cfg, vmid).is_some();
    let gone = || {
        match (p.kind, qemu_running(cfg, vmid)) {
        (GuestKind::Qemu, Some(false)) | (GuestKind::Qemu, None) if had_pid => Some(
            "the VM's QEMU process ended before its agent answered (a backup of a stopped VM, or a stop)"
                .to_string(),
        ),
        _ => None,
    }
    };
    let cancel_or_gone = || cancel().or_else(gone);
    let (what, waited) = match p.kind {
        GuestKind::Qemu => (
            "the guest agent answered",
            wait_for_agent_unless(cfg, vmid, cfg.agent.wait, &cancel_or_gone),
        ),
        GuestKind::Lxc => (
            "the container is running",
            wait_for_container(cfg, vmid, cfg.agent.wait, &cancel_or_gone),
        ),
    };
    let waited = waited.and_then(|took| match cancel() {
        Some(why) => Err(DeliverError::Cancelled(why)),
        None => Ok(took),
    });
    match waited {
        Ok(took) => {
            log(
                true,
                format!("guest {vmid}: {what} after {:.1}s", took.as_secs_f64()),
            );
            Ok(())
        }
        Err(e @ DeliverError::Cancelled(_)) => {
            log(true, format!("guest {vmid}: not delivering: {e}"));
            Err(vec![
                Event::new(Some(vmid), "post-start", "deliver", "cancelled")
                    .with("reason", e.to_string()),
            ])
        }
        Err(e) => {
            log(false, format!("guest {vmid}: {e}"));
            Err(vec![
                Event::new(Some(vmid), "post-start", "deliver", "failed")
                    .with(
                        "transport",
                        if p.kind == GuestKind::Qemu {
                            "qga"
                        } else {
                            "lxc"
                        },
                    )
                    .with("error", e.to_string()),
            ])
        }
    }
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
