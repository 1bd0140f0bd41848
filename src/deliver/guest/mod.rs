//! The programs phx-hook runs inside guests, kept as files of their own
//! (`src/deliver/guest/*.sh`, linted by shellcheck in `make lint`) and built into the
//! binary: `lib.sh`, the steps every shell-based writer takes safely against other users
//! of the guest, and one program per job. They run as root in a guest that may be
//! hostile, so they carry most of the security burden of the agent and pct transports;
//! their header comments state the rules, and the tests below attack them.
//!
//! Nothing secret is ever in their argv (the agent logs it, `/proc/*/cmdline` shows it):
//! file names, temporary names and tokens travel on stdin with the content.

use std::sync::LazyLock;

const LIB: &str = include_str!("lib.sh");

/// Many small files in one `guest-exec`.
pub(crate) static AGENT_BATCH: LazyLock<String> =
    LazyLock::new(|| program(include_str!("agent-batch.sh")));

/// One large file, in pieces, one `guest-exec` each.
pub(crate) static AGENT_CHUNK: LazyLock<String> =
    LazyLock::new(|| program(include_str!("agent-chunk.sh")));

/// The pct transport's preparation (parents, and the check that `pct push` may write).
pub(crate) static PCT_PREPARE: LazyLock<String> =
    LazyLock::new(|| program(include_str!("pct-prepare.sh")));

/// The pct transport's verification and rename.
pub(crate) static PCT_COMMIT: LazyLock<String> =
    LazyLock::new(|| program(include_str!("pct-commit.sh")));

/// The reconciler's probe: no `lib.sh` (it writes nothing), so it stays small.
pub(crate) static AGENT_PROBE: LazyLock<String> = LazyLock::new(|| strip(include_str!("probe.sh")));

/// `lib.sh` and `body` as one program for `sh -c`, without comment and blank lines: the
/// guest agent logs every `guest-exec` argv, so the program is kept short there.
fn program(body: &str) -> String {
    strip(&format!("{LIB}{body}"))
}

/// `text` without comment and blank lines, indentation dropped.
fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        out.push_str(t);
        out.push('\n');
    }
    out
}

/// A fresh temporary file name for `dest`, to be created beside it (the same directory,
/// so the final rename is atomic): hidden, marked `.phx-`, with 64 random bits, so that
/// nobody can guess it and plant a link or a FIFO there first.
pub(crate) fn temp_name(dest: &crate::types::GuestPath) -> String {
    let name = dest.file_name();
    let mut cut = name.len().min(200);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(".{}.phx-{:016x}", &name[..cut], rand::random::<u64>())
}

/// 128 random bits, hex: names and tokens nobody can predict.
pub(crate) fn token() -> String {
    crate::types::hex(&rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests;
