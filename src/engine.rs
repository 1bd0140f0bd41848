//! The delivery engine: one operation behind every trigger. The post-start worker and
//! `inject` deliver a guest's whole plan (`Mode::Full`); `reconcile` compares the plan
//! with what the guest holds and delivers only the difference (`Mode::Diff`). Both run
//! `after` once when something was delivered, then look at the guest again and record
//! what it holds, so the next pass can tell what changed and why.
//!
//! What the guest should hold is each file's digest: an HMAC-SHA-256 of its content,
//! owner, group and mode under a key derived from the host key (a plain hash of a short
//! password could be brute-forced from the record). What it holds is read without
//! reading any file (`Observed`: inode, size, times, mode, owner, and which boot this
//! is). The record (`<state_dir>/delivered/<vmid>.json`, root-only) says what phx-hook
//! delivered and what it saw afterwards. A file is delivered again when its digest
//! changed (`rotation`), when phx-hook never delivered it (`missed`), when it is gone or
//! changed after a reboot (`reboot`: a VM's boot id or a container's init changed), or
//! when it is gone or changed otherwise (`drift`).

use std::fs;

use camino::Utf8PathBuf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::audit::Event;
use crate::config::Config;
use crate::deliver::qga::QgaTransport;
use crate::deliver::{DeliverError, Look, Observed, Report, Seen};
use crate::hook::{self, Prepared};
use crate::plan::{Delivery, Plan};
use crate::types::{GuestKind, GuestPath, Vmid};

/// How much of a plan to deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every file (a start, or `inject` by hand); with `wait`, after waiting for the
    /// guest to come up (up to `agent.wait`).
    Full {
        /// Wait for the guest first.
        wait: bool,
    },
    /// Only what differs from what the guest holds (`reconcile`); the guest must be
    /// reachable now.
    Diff,
}

/// Why a file is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// The guest started.
    Start,
    /// By hand (`inject`).
    Manual,
    /// phx-hook has no record of delivering it (never delivered, or a delivery was missed).
    Missed,
    /// Its content, owner, group or mode changed in the vault or the manifest.
    Rotation,
    /// The guest rebooted (from inside: no hook phase ran) and the file is gone or changed.
    Reboot,
    /// The file was deleted, replaced, edited, re-owned or re-moded in the guest.
    Drift,
}

impl Reason {
    /// The word audit lines and messages use.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Start => "start",
            Reason::Manual => "manual",
            Reason::Missed => "missed",
            Reason::Rotation => "rotation",
            Reason::Reboot => "reboot",
            Reason::Drift => "drift",
        }
    }
}

/// What phx-hook knows about one guest: what it delivered, what it saw afterwards, and
/// how the last pass went.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Record {
    /// The boot of the guest the files were last seen in.
    pub boot: Option<String>,
    /// Per file: what was delivered and how it looked afterwards.
    pub files: Vec<FileRecord>,
    /// When the guest was last checked or delivered to.
    pub checked: String,
    /// How that went: `in sync`, `repaired`, `failed`, `unreachable`.
    pub state: String,
    /// Why, when it did not go well.
    pub detail: Option<String>,
    /// Since when the guest has been out of sync without being repaired.
    pub stale_since: Option<String>,
}

/// One delivered file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileRecord {
    /// Its destination.
    pub dest: String,
    /// The digest of what was delivered (see the module docs; never a plain hash).
    pub digest: String,
    /// How it looked right after.
    pub seen: Seen,
}

fn record_path(cfg: &Config, vmid: Vmid) -> Utf8PathBuf {
    cfg.state_dir.join("delivered").join(format!("{vmid}.json"))
}

/// The record of `vmid`, if there is one.
pub fn load_record(cfg: &Config, vmid: Vmid) -> Option<Record> {
    let text = fs::read_to_string(record_path(cfg, vmid)).ok()?;
    serde_json::from_str(&text).ok()
}

fn save_record(cfg: &Config, vmid: Vmid, r: &Record) -> std::io::Result<()> {
    fs::create_dir_all(cfg.state_dir.join("delivered"))?;
    let bytes = serde_json::to_vec_pretty(r).map_err(std::io::Error::other)?;
    crate::files::replace_private(&record_path(cfg, vmid), &bytes, false)
}

/// Record that guest `vmid` was looked at: found in sync (`Ok`, with what was seen) or
/// unreachable (`Err`, why). Deliveries are recorded by [`sync`].
pub fn note_checked(
    cfg: &Config,
    vmid: Vmid,
    record: Option<Record>,
    outcome: Result<&Observed, String>,
) {
    let mut r = record.unwrap_or_default();
    r.checked = crate::audit::now_rfc3339();
    match outcome {
        Ok(seen) => {
            r.boot.clone_from(&seen.boot);
            r.state = "in sync".into();
            r.detail = None;
            r.stale_since = None;
        }
        Err(why) => {
            r.state = "unreachable".into();
            r.detail = Some(why);
        }
    }
    if let Err(e) = save_record(cfg, vmid, &r) {
        log::warn!("cannot record the state of guest {vmid}: {e}");
    }
}

/// Keyed digests of what a guest should hold.
pub struct Digester {
    key: Zeroizing<Vec<u8>>,
}

impl Digester {
    /// The key: derived from the host key file, which only root can read, so it stays the
    /// same across reboots and is unknown to anyone who only sees the record.
    pub fn new(cfg: &Config) -> Result<Digester, crate::vault::VaultError> {
        let host = crate::vault::read_host_key_bytes(cfg)?;
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&Sha256::digest(&*host)).map_err(|_| {
                crate::vault::VaultError::BadKey {
                    path: cfg.key.clone(),
                    detail: "cannot derive a digest key".into(),
                }
            })?;
        mac.update(b"phx-hook delivered-state v1");
        Ok(Digester {
            key: Zeroizing::new(mac.finalize().into_bytes().to_vec()),
        })
    }

    /// The digest of one file: content, owner, group and mode.
    pub fn digest(&self, d: &Delivery) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(format!("{}\0{:o}\0{}\0{}\0", d.dest, d.mode, d.owner, d.group).as_bytes());
        // A RAM-only file's digest differs from the same file on disk (switching is a
        // change to deliver); a disk file's digest is what it always was.
        if let Some(store) = &d.store {
            mac.update(format!("ram\0{store}\0").as_bytes());
        }
        mac.update(d.content.expose());
        crate::types::hex(&mac.finalize().into_bytes())
    }
}

/// What guest `vmid` holds at `looks` now (see [`Observed`]).
pub fn observe(
    cfg: &Config,
    vmid: Vmid,
    kind: GuestKind,
    known_boot: Option<&str>,
    looks: &[Look],
) -> Result<(Observed, u32), DeliverError> {
    match kind {
        GuestKind::Qemu => {
            let socket = cfg.pve.qga_socket_dir.join(format!("{vmid}.qga"));
            let mut t = QgaTransport::new(vmid, socket.into(), cfg.agent.timeout);
            let seen = t.probe(looks);
            seen.map(|s| (s, t.requests))
        }
        GuestKind::Lxc => crate::deliver::lxc::probe(
            &cfg.pve.lxc_info,
            vmid,
            cfg.agent.timeout,
            known_boot,
            looks,
        )
        .map(|s| (s, 0)),
    }
}

/// Record files another path delivered (a container's mount hook, before its init ran)
/// as delivered, with the digests they were staged with, if the guest still holds each
/// exactly as it was written (inode, size, times, mode): a file its root or owner
/// changed since is left to be delivered again. A [`sync`] in `Mode::Diff` afterwards
/// delivers what this did not record. How many files were recorded.
pub fn adopt(
    cfg: &Config,
    p: &Prepared,
    delivered: &[crate::early::Pending],
) -> Result<usize, String> {
    let vmid = p.plan.vmid;
    let looks: Vec<Look> = p.plan.deliveries.iter().map(Look::of).collect();
    let (seen, _) = observe(cfg, vmid, p.kind, None, &looks).map_err(|e| e.to_string())?;
    let mut r = Record {
        boot: seen.boot.clone(),
        files: Vec::new(),
        checked: crate::audit::now_rfc3339(),
        state: "in sync".into(),
        detail: None,
        stale_since: None,
    };
    for (i, d) in p.plan.deliveries.iter().enumerate() {
        let dest = d.dest.as_str();
        let Some(pending) = delivered.iter().find(|x| x.dest == dest) else {
            continue;
        };
        let now = seen.files.get(i).cloned().unwrap_or(Seen::Unknown);
        let unchanged = match (&now, &pending.written) {
            (Seen::File(sig), Some(w)) => w.matches(sig),
            _ => false,
        };
        if unchanged {
            r.files.push(FileRecord {
                dest: dest.to_string(),
                digest: pending.digest.clone(),
                seen: now,
            });
        }
    }
    save_record(cfg, vmid, &r)
        .map_err(|e| format!("cannot record the state of guest {vmid}: {e}"))?;
    Ok(r.files.len())
}

/// One file to deliver, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// Its destination.
    pub dest: String,
    /// Why.
    pub reason: Reason,
    /// Its index in the plan.
    #[serde(skip)]
    pub index: usize,
}

/// What differs between the plan (`digests`, in plan order) and what the guest holds.
pub fn compare(
    plan: &Plan,
    digests: &[String],
    record: Option<&Record>,
    seen: &Observed,
) -> Vec<Change> {
    let rebooted = match (record.and_then(|r| r.boot.as_deref()), seen.boot.as_deref()) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    };
    let mut out = Vec::new();
    for (i, d) in plan.deliveries.iter().enumerate() {
        let dest = d.dest.as_str();
        let known = record.and_then(|r| r.files.iter().find(|f| f.dest == dest));
        let now = seen.files.get(i).unwrap_or(&Seen::Unknown);
        let reason = match known {
            None => Some(Reason::Missed),
            Some(k) if k.digest != digests[i] => Some(Reason::Rotation),
            Some(k) => match (now, &k.seen) {
                (Seen::Unknown, _) => None,
                (Seen::Missing, _) => Some(if rebooted {
                    Reason::Reboot
                } else {
                    Reason::Drift
                }),
                (Seen::File(a), Seen::File(b)) if a == b => None,
                (Seen::File(_), Seen::File(_)) => Some(if rebooted {
                    Reason::Reboot
                } else {
                    Reason::Drift
                }),
                // Delivered but never seen afterwards: look again by delivering.
                (Seen::File(_), _) => Some(Reason::Drift),
            },
        };
        if let Some(reason) = reason {
            out.push(Change {
                dest: dest.to_string(),
                reason,
                index: i,
            });
        }
    }
    out
}

/// How a sync ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum State {
    /// Nothing to do.
    InSync,
    /// Something was delivered, and everything that had to be succeeded.
    Repaired,
    /// Something could not be delivered.
    Failed(String),
    /// The guest could not be reached.
    Unreachable(String),
    /// Given up on purpose (a newer start, a stop).
    Cancelled(String),
}

/// The result of [`sync`].
pub struct Synced {
    /// How it ended.
    pub state: State,
    /// The files delivered, and why.
    pub changes: Vec<Change>,
    /// The transport's report (files and `after` commands).
    pub report: Report,
    /// Audit events.
    pub events: Vec<Event>,
    /// Agent requests or processes the check and the delivery cost.
    pub calls: u32,
}

/// What a sync reports as it goes.
pub struct Progress<'a> {
    /// A line about waiting for the guest (`true` when all is well).
    pub log: &'a mut dyn FnMut(bool, String),
    /// Each file and `after` command, when done.
    pub event: &'a mut dyn FnMut(crate::deliver::Event<'_>),
    /// Asked while waiting and before the first write: a reason to give up.
    pub cancel: &'a dyn Fn() -> Option<String>,
}

/// Bring guest `p` to its plan: deliver everything (`Mode::Full`) or only what differs
/// (`Mode::Diff`), run `after` once if anything was delivered, then record what the guest
/// holds. `phase` names the trigger in audit lines (`post-start`, `inject`, `reconcile`).
pub fn sync(cfg: &Config, p: &Prepared, mode: Mode, phase: &str, progress: Progress<'_>) -> Synced {
    let Progress { log, event, cancel } = progress;
    let vmid = p.plan.vmid;
    let mut synced = Synced {
        state: State::InSync,
        changes: Vec::new(),
        report: Report::default(),
        events: Vec::new(),
        calls: 0,
    };
    let digester = match Digester::new(cfg) {
        Ok(d) => d,
        Err(e) => {
            synced.state = State::Failed(e.to_string());
            return synced;
        }
    };
    let digests: Vec<String> = p
        .plan
        .deliveries
        .iter()
        .map(|d| digester.digest(d))
        .collect();
    let dests: Vec<&GuestPath> = p.plan.deliveries.iter().map(|d| &d.dest).collect();
    let looks: Vec<Look> = p.plan.deliveries.iter().map(Look::of).collect();
    let record = load_record(cfg, vmid);
    let now = crate::audit::now_rfc3339();
    match mode {
        Mode::Full { wait } => {
            if !wait {
            } else if let Err(events) = hook::wait_for_guest(cfg, p, log, cancel) {
                synced.state = match events.first().map(|e| e.outcome) {
                    Some("cancelled") => State::Cancelled("cancelled".into()),
                    _ => State::Unreachable("the guest did not come up".into()),
                };
                synced.events = events;
                return synced;
            }
            let reason = if phase == "inject" {
                Reason::Manual
            } else {
                Reason::Start
            };
            synced.changes = dests
                .iter()
                .enumerate()
                .map(|(i, d)| Change {
                    dest: d.to_string(),
                    reason,
                    index: i,
                })
                .collect();
        }
        Mode::Diff => {
            let known = record.as_ref().and_then(|r| r.boot.as_deref());
            let seen = match observe(cfg, vmid, p.kind, known, &looks) {
                Ok((s, n)) => {
                    synced.calls += n;
                    s
                }
                Err(e) => {
                    synced.state = State::Unreachable(e.to_string());
                    note_checked(cfg, vmid, record, Err(e.to_string()));
                    return synced;
                }
            };
            synced.changes = compare(&p.plan, &digests, record.as_ref(), &seen);
            if synced.changes.is_empty() {
                note_checked(cfg, vmid, record, Ok(&seen));
                return synced;
            }
        }
    }
    if let Some(why) = cancel() {
        synced.state = State::Cancelled(why);
        return synced;
    }
    // Deliver the changed files (the whole plan in Full mode), then `after`, once.
    let subset = Plan {
        vmid,
        guest: p.plan.guest,
        required: p.plan.required,
        deliveries: synced
            .changes
            .iter()
            .map(|c| p.plan.deliveries[c.index].clone())
            .collect(),
        after: p.plan.after.clone(),
        credentials: Vec::new(),
    };
    let mut t = hook::transport_for(cfg, vmid, p.kind);
    let report = crate::deliver::execute(&subset, t.as_mut(), event);
    let mut events = hook::delivery_events(vmid, phase, t.name(), &report, &p.vault);
    for e in events.iter_mut().filter(|e| e.action == "deliver") {
        let dest = e
            .details
            .get("dest")
            .and_then(|d| d.as_str())
            .map(str::to_string);
        if let Some(c) = synced
            .changes
            .iter()
            .find(|c| Some(&c.dest) == dest.as_ref())
        {
            e.details.insert("reason".into(), c.reason.as_str().into());
        }
    }
    synced.calls += report.transport_calls;
    synced.events.extend(events);
    // Look again, and record what phx-hook delivered and what the guest holds now.
    let known = record.as_ref().and_then(|r| r.boot.as_deref());
    let seen = observe(cfg, vmid, p.kind, known, &looks).map(|(s, n)| {
        synced.calls += n;
        s
    });
    let mut r = Record {
        boot: seen.as_ref().ok().and_then(|s| s.boot.clone()),
        files: Vec::new(),
        checked: now.clone(),
        state: String::new(),
        detail: None,
        stale_since: None,
    };
    for (i, d) in p.plan.deliveries.iter().enumerate() {
        let dest = d.dest.as_str();
        let delivered = report
            .files
            .iter()
            .any(|f| f.dest == dest && f.outcome.is_ok());
        let changed = synced.changes.iter().any(|c| c.index == i);
        let old = record
            .as_ref()
            .and_then(|r| r.files.iter().find(|f| f.dest == dest));
        // What the guest holds: this plan's version if it was just delivered or was in
        // sync; the old one if delivering failed (so the next pass tries again).
        let digest = if delivered || !changed {
            digests[i].clone()
        } else if let Some(o) = old {
            o.digest.clone()
        } else {
            continue;
        };
        let now_seen = seen
            .as_ref()
            .ok()
            .and_then(|s| s.files.get(i).cloned())
            .unwrap_or(Seen::Unknown);
        r.files.push(FileRecord {
            dest: dest.to_string(),
            digest,
            seen: now_seen,
        });
    }
    let ok = report.files_ok() && report.after_ok();
    synced.state = if ok {
        State::Repaired
    } else {
        let failed: Vec<String> = report
            .files
            .iter()
            .filter_map(|f| f.outcome.as_ref().err().map(|e| format!("{}: {e}", f.dest)))
            .chain(report.after.iter().filter_map(|a| match &a.outcome {
                Ok(o) if o.success() => None,
                Ok(o) => Some(format!("{}: exit {:?}", a.argv.join(" "), o.exitcode)),
                Err(e) => Some(format!("{}: {e}", a.argv.join(" "))),
            }))
            .collect();
        State::Failed(failed.join("; "))
    };
    r.state = if ok {
        "repaired".into()
    } else {
        "failed".into()
    };
    if let State::Failed(d) = &synced.state {
        r.detail = Some(d.clone());
        r.stale_since = record
            .as_ref()
            .and_then(|o| o.stale_since.clone())
            .or(Some(now));
    }
    if let Err(e) = save_record(cfg, vmid, &r) {
        log::warn!("cannot record the state of guest {vmid}: {e}");
    }
    synced.report = report;
    synced
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::FileSig;

    fn plan(dests: &[&str]) -> Plan {
        Plan {
            vmid: "101".parse().unwrap(),
            guest: None,
            required: true,
            deliveries: dests
                .iter()
                .map(|d| Delivery {
                    dest: d.parse().unwrap(),
                    format: "raw",
                    keys: Vec::new(),
                    mode: 0o600,
                    owner: crate::manifest::Owner::Id(0),
                    group: crate::manifest::Owner::Id(0),
                    content: crate::vault::Secret::copy_from(d.as_bytes()),
                    store: None,
                })
                .collect(),
            after: Vec::new(),
            credentials: Vec::new(),
        }
    }

    fn sig(ino: u64) -> Seen {
        Seen::File(FileSig {
            ino,
            size: 1,
            mtime: 1,
            ctime: 1,
            mode: 0o600,
            uid: 0,
            gid: 0,
        })
    }

    #[test]
    fn every_difference_has_its_reason() {
        let p = plan(&["/a", "/b", "/c", "/d", "/e"]);
        let digests: Vec<String> = ["A", "B2", "C", "D", "E"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rec = |d: &str, dig: &str, s: Seen| FileRecord {
            dest: d.into(),
            digest: dig.into(),
            seen: s,
        };
        let record = Record {
            boot: Some("boot-1".into()),
            files: vec![
                rec("/a", "A", sig(1)),
                rec("/b", "B", sig(2)),
                rec("/c", "C", sig(3)),
                rec("/d", "D", sig(4)),
            ],
            ..Default::default()
        };
        let same_boot = Observed {
            boot: Some("boot-1".into()),
            files: vec![sig(1), sig(2), Seen::Missing, sig(9), Seen::Missing],
        };
        let got: Vec<(String, Reason)> = compare(&p, &digests, Some(&record), &same_boot)
            .into_iter()
            .map(|c| (c.dest, c.reason))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/b".into(), Reason::Rotation),
                ("/c".into(), Reason::Drift),
                ("/d".into(), Reason::Drift),
                ("/e".into(), Reason::Missed),
            ]
        );
        let rebooted = Observed {
            boot: Some("boot-2".into()),
            files: vec![sig(1), Seen::Unknown, Seen::Missing, sig(4), sig(5)],
        };
        let got: Vec<Reason> = compare(&p, &digests, Some(&record), &rebooted)
            .into_iter()
            .map(|c| c.reason)
            .collect();
        assert_eq!(got, vec![Reason::Rotation, Reason::Reboot, Reason::Missed]);
        // Everything as recorded: nothing to do.
        let fine = Observed {
            boot: Some("boot-1".into()),
            files: vec![sig(1), sig(2), sig(3), sig(4)],
        };
        let p4 = plan(&["/a", "/b", "/c", "/d"]);
        let d4: Vec<String> = ["A", "B", "C", "D"].iter().map(|s| s.to_string()).collect();
        assert!(compare(&p4, &d4, Some(&record), &fine).is_empty());
    }
}
