//! Logging for the detached delivery worker, whose stdout and stderr are /dev/null: one
//! RFC 3164 datagram per message to the syslog socket (`/dev/log`, which journald also
//! serves), under the identifier `phx-hook`, facility daemon. Messages never hold a value.

use std::os::unix::net::UnixDatagram;

use camino::Utf8Path;

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

/// A syslog sender; silent when the socket is missing.
pub struct Syslog {
    sock: Option<UnixDatagram>,
}

impl Syslog {
    /// Connect to `path`.
    pub fn new(path: &Utf8Path) -> Syslog {
        let sock = UnixDatagram::unbound()
            .ok()
            .filter(|s| s.connect(path).is_ok());
        Syslog { sock }
    }

    /// Send one message.
    pub fn log(&self, level: Level, msg: &str) {
        const DAEMON: u8 = 3;
        if let Some(s) = &self.sock {
            let line = format!(
                "<{}>phx-hook[{}]: {}",
                DAEMON * 8 + level as u8,
                std::process::id(),
                msg.replace('\n', " ")
            );
            let _ = s.send(line.as_bytes());
        }
    }
}
