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

/// RAM-only files: the RAM directory is there, root's, and RAM-backed.
pub(crate) static RAM_DIR: LazyLock<String> = LazyLock::new(|| program(include_str!("ram-dir.sh")));

/// RAM-only files: each destination a link to its file in RAM.
pub(crate) static LINK: LazyLock<String> = LazyLock::new(|| program(include_str!("link.sh")));

/// The input of [`RAM_DIR`].
pub(crate) fn ram_dir_input() -> String {
    format!("{}\n", crate::manifest::RAM_DIR)
}

/// What [`RAM_DIR`] said: `Ok` or why the RAM-only files cannot be written.
pub(crate) fn ram_dir_result(out: &str) -> Result<(), String> {
    let line = out.lines().next().unwrap_or("");
    if line.starts_with("ok ") {
        return Ok(());
    }
    Err(line
        .strip_prefix("err ")
        .map(|w| crate::text::guest(w.as_bytes()))
        .unwrap_or_else(|| "the RAM check printed nothing".into()))
}

/// The input of [`LINK`]: the RAM-only files among `files` (index, destination, RAM path).
pub(crate) fn link_input(
    links: &[(usize, &crate::types::GuestPath, &crate::types::GuestPath)],
) -> String {
    let mut s = format!("{}\n", links.len());
    for (_, dest, target) in links {
        s.push_str(&format!(
            "{}\n{}\n{}\n{}\n",
            dest.parent(),
            dest.file_name(),
            temp_name(dest),
            target
        ));
    }
    s
}

/// What [`LINK`] said, per link in input order: `Ok` or why.
pub(crate) fn link_results(out: &str, n: usize) -> Vec<Result<(), String>> {
    let mut res: Vec<Option<Result<(), String>>> = vec![None; n];
    let mut fatal = None;
    for line in out.lines() {
        let mut w = line.splitn(3, ' ');
        match (w.next(), w.next(), w.next()) {
            (Some("ok"), Some(i), None) => {
                if let Some(slot) = i
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| res.get_mut(i.wrapping_sub(1)))
                {
                    slot.get_or_insert(Ok(()));
                }
            }
            (Some("err"), Some(i), Some(why)) => {
                if let Some(slot) = i
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| res.get_mut(i.wrapping_sub(1)))
                {
                    slot.get_or_insert(Err(crate::text::guest(why.as_bytes())));
                }
            }
            (Some("fatal"), ..) => {
                fatal.get_or_insert(crate::text::guest(line.as_bytes()));
            }
            _ => {}
        }
    }
    res.into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(fatal
                    .clone()
                    .unwrap_or_else(|| "the link step did not report".into()))
            })
        })
        .collect()
}

/// The input of [`AGENT_PROBE`]: per look two lines, the file, and the destination that
/// must be a link to it (empty when none).
pub(crate) fn probe_input(looks: &[super::Look]) -> String {
    let mut s = String::new();
    for l in looks {
        s.push_str(l.file.as_str());
        s.push('\n');
        s.push_str(l.link.as_ref().map_or("", |d| d.as_str()));
        s.push('\n');
    }
    s
}

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
