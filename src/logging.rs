//! Logging for the detached delivery worker and `reconcile` (their stdout and stderr are
//! /dev/null when the hook or a systemd unit runs them): to the systemd journal when it
//! runs, with structured fields (`VMID`, `PHASE`, `EVENT`, `OUTCOME`), so that
//! `journalctl -t phx-hook VMID=101` shows one guest; else one RFC 3164 datagram per
//! message to the syslog socket (`/dev/log`); else stderr. The journal's native protocol
//! is spoken by `systemd-journal-logger`. Messages and fields never hold a value.

use std::os::unix::net::UnixDatagram;

use systemd_journal_logger::JournalLog;

use crate::config::Config;
use crate::types::Vmid;

/// Where journald listens for native messages.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Severity.
#[derive(Clone, Copy, Debug)]
pub enum Level {
    /// Something failed.
    Err = 3,
    /// Something is off but the job goes on.
    Warning = 4,
    /// Normal progress.
    Info = 6,
}

impl Level {
    fn log_level(self) -> log::Level {
        match self {
            Level::Err => log::Level::Error,
            Level::Warning => log::Level::Warn,
            Level::Info => log::Level::Info,
        }
    }
}

enum Sink {
    Journal(Box<JournalLog>),
    Syslog(UnixDatagram),
    Stderr,
}

/// A logger; see the module docs for where it writes.
pub struct Logger {
    sink: Sink,
    /// Fields on every message (`VMID`, `PHASE`) for the syslog and stderr forms.
    guest: Option<(Vmid, String)>,
}

impl Logger {
    /// The logger `cfg` asks for: the journal when `journal` is on and journald runs,
    /// else the `syslog` socket, else stderr.
    pub fn new(cfg: &Config) -> Logger {
        Logger {
            sink: sink(cfg, None),
            guest: None,
        }
    }

    /// A logger whose every message carries `VMID` and `PHASE`.
    pub fn for_guest(cfg: &Config, vmid: Vmid, phase: &str) -> Logger {
        Logger {
            sink: sink(cfg, Some((vmid, phase))),
            guest: Some((vmid, phase.to_string())),
        }
    }

    /// Whether messages go to the journal.
    pub fn is_journal(&self) -> bool {
        matches!(self.sink, Sink::Journal(_))
    }

    /// One message.
    pub fn log(&self, level: Level, msg: &str) {
        self.send(level, msg, &[]);
    }

    /// One message about an event (`deliver`, `after`, `redeliver`, ...) and its outcome
    /// (`ok`, `failed`, ...), as journal fields `EVENT` and `OUTCOME`, plus `extra` ones
    /// (`REASON`, ...).
    pub fn event(
        &self,
        level: Level,
        msg: &str,
        event: &str,
        outcome: &str,
        extra: &[(&str, &str)],
    ) {
        let mut fields = vec![("EVENT", event), ("OUTCOME", outcome)];
        fields.extend_from_slice(extra);
        self.send(level, msg, &fields);
    }

    fn send(&self, level: Level, msg: &str, fields: &[(&str, &str)]) {
        let msg = msg.replace('\n', " ");
        match &self.sink {
            Sink::Journal(j) => {
                let _ = j.journal_send(
                    &log::Record::builder()
                        .args(format_args!("{msg}"))
                        .level(level.log_level())
                        .target("phx-hook")
                        .key_values(&fields)
                        .build(),
                );
            }
            Sink::Syslog(s) => {
                const DAEMON: u8 = 3;
                let line = format!(
                    "<{}>phx-hook[{}]: {msg}",
                    DAEMON * 8 + level as u8,
                    std::process::id()
                );
                let _ = s.send(line.as_bytes());
            }
            Sink::Stderr => match &self.guest {
                Some((vmid, phase)) => eprintln!("phx-hook: {vmid} {phase}: {msg}"),
                None => eprintln!("phx-hook: {msg}"),
            },
        }
    }
}

fn sink(cfg: &Config, guest: Option<(Vmid, &str)>) -> Sink {
    if cfg.journal
        && std::path::Path::new(JOURNAL_SOCKET).exists()
        && let Ok(j) = JournalLog::empty()
    {
        let mut j = j.with_syslog_identifier("phx-hook".into());
        if let Some((vmid, phase)) = guest {
            j = j
                .add_extra_field("VMID", vmid.to_string())
                .add_extra_field("PHASE", phase);
        }
        return Sink::Journal(Box::new(j));
    }
    match UnixDatagram::unbound() {
        Ok(s) if s.connect(&cfg.syslog).is_ok() => Sink::Syslog(s),
        _ => Sink::Stderr,
    }
}
