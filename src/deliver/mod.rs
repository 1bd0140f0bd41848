//! Delivery: executing a [`Plan`] through a [`Transport`] (the guest agent for VMs;
//! `pct` or the container's namespaces for containers). This module owns the order of
//! work and the per-file outcome; transports own how bytes reach a guest. Core types
//! (config, manifest, vault, plan) know nothing of this module.
//!
//! Every transport keeps DESIGN §4: the file exists with its final owner and mode before
//! the first secret byte is written, it replaces the destination atomically (temporary
//! name in the same directory, then rename), and the result is verified in the guest.

pub(crate) mod guest;
pub mod lxc;
pub mod pct;
pub mod qga;

use std::time::{Duration, Instant};

use crate::plan::{Delivery, Plan};

/// How a delivered file was verified in the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verified {
    /// SHA-256 of the file in the guest matched.
    Digest,
    /// Only the size could be compared (the guest has no `sha256sum`).
    Size,
}

/// A delivery failure. Messages never hold a value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DeliverError {
    /// The guest cannot be reached at all (agent down, container stopped, ...): no
    /// further file is tried.
    #[error("{0}")]
    Unreachable(String),
    /// This file failed; others may still succeed.
    #[error("{0}")]
    File(String),
}

/// The result of one `after` command.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CommandOutcome {
    /// Exit code, if it exited.
    pub exitcode: Option<i32>,
    /// Signal, if it was killed.
    pub signal: Option<i32>,
}

impl CommandOutcome {
    /// Exit 0.
    pub fn success(&self) -> bool {
        self.exitcode == Some(0) && self.signal.is_none()
    }
}

/// A way to put files into a guest and run commands there.
pub trait Transport {
    /// The transport's name, for messages and audit lines.
    fn name(&self) -> &'static str;

    /// Write every file, in order; one result per file. Each file is written the same
    /// way: parents, temporary file with final owner and mode, content, verification,
    /// rename, so on error nothing is left at its destination that was not there before.
    /// Once the guest is unreachable the remaining files fail with that error untried.
    fn deliver_all(&mut self, files: &[Delivery]) -> Vec<Result<Verified, DeliverError>>;

    /// Run `argv` in the guest (no shell) and wait for it, bounded.
    fn run(&mut self, argv: &[String]) -> Result<CommandOutcome, DeliverError>;

    /// How much work reached the guest so far: agent requests (qga), `pct` invocations
    /// (pct) or processes started (native). Reported by benchmarks and `inject --json`.
    fn calls(&self) -> u32;
}

/// What happened to one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileResult {
    /// Destination in the guest.
    pub dest: String,
    /// Bytes written.
    pub size: usize,
    /// Vault keys in the file.
    pub keys: Vec<String>,
    /// `Ok(how verified)` or the reason it failed.
    #[serde(serialize_with = "ser_outcome")]
    pub outcome: Result<Verified, String>,
}

fn ser_outcome<S: serde::Serializer>(
    o: &Result<Verified, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(2))?;
    match o {
        Ok(v) => {
            m.serialize_entry("ok", &true)?;
            m.serialize_entry("verified", v)?;
        }
        Err(e) => {
            m.serialize_entry("ok", &false)?;
            m.serialize_entry("error", e)?;
        }
    }
    m.end()
}

/// What happened to one `after` command.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AfterResult {
    /// The argv.
    pub argv: Vec<String>,
    /// Its outcome or why it could not run.
    pub outcome: Result<CommandOutcome, String>,
}

/// The result of executing a plan.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    /// Per file, in plan order.
    pub files: Vec<FileResult>,
    /// Per `after` command.
    pub after: Vec<AfterResult>,
    /// The transport's [`Transport::calls`] for this delivery.
    pub transport_calls: u32,
}

impl Report {
    /// Every file was delivered and verified.
    pub fn files_ok(&self) -> bool {
        self.files.iter().all(|f| f.outcome.is_ok())
    }

    /// Every `after` command ran and exited 0.
    pub fn after_ok(&self) -> bool {
        self.after
            .iter()
            .all(|a| matches!(&a.outcome, Ok(o) if o.success()))
    }
}

/// Progress events, for the caller to print or log.
pub enum Event<'a> {
    /// A file is done (either way).
    File(&'a FileResult),
    /// An `after` command is done.
    After(&'a AfterResult),
}

/// Deliver every file of `plan`, then, if all of them succeeded, run the `after`
/// commands. An unreachable guest stops the run; the remaining files are reported as
/// not attempted. A failed `after` command does not undo the files.
pub fn execute(plan: &Plan, t: &mut dyn Transport, progress: &mut dyn FnMut(Event<'_>)) -> Report {
    let results = t.deliver_all(&plan.deliveries);
    let mut report = Report::default();
    for (d, outcome) in plan.deliveries.iter().zip(results) {
        let r = FileResult {
            dest: d.dest.to_string(),
            size: d.content.len(),
            keys: d.keys.iter().map(ToString::to_string).collect(),
            outcome: outcome.map_err(|e| e.to_string()),
        };
        progress(Event::File(&r));
        report.files.push(r);
    }
    if report.files_ok() {
        for argv in &plan.after {
            let r = AfterResult {
                argv: argv.clone(),
                outcome: t.run(argv).map_err(|e| e.to_string()),
            };
            progress(Event::After(&r));
            report.after.push(r);
        }
    }
    report.transport_calls = t.calls();
    report
}

/// Run `cmd` with `input` on stdin (or none), capturing stdout and stderr, killing it if
/// it runs longer than `bound`. Stdin carries secrets where a caller passes them; they
/// never go in argv.
pub(crate) fn run_bounded(
    cmd: &mut std::process::Command,
    input: Option<&[u8]>,
    bound: Duration,
) -> Result<(CommandOutcome, Vec<u8>, Vec<u8>), DeliverError> {
    use std::io::{Read, Write};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let prog = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| DeliverError::Unreachable(format!("failed to run `{prog}`: {e}")))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // A child that exits early closes the pipe; its status tells what happened.
        let _ = stdin.write_all(input);
    }
    let deadline = Instant::now() + bound;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DeliverError::File(format!(
                    "`{prog}` did not finish within {:.0}s",
                    bound.as_secs_f64()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(DeliverError::File(format!("waiting for `{prog}`: {e}"))),
        }
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_end(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_end(&mut err);
    }
    Ok((
        CommandOutcome {
            exitcode: status.code(),
            signal: status.signal(),
        },
        out,
        err,
    ))
}
