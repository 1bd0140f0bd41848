//! Reading the administrator's input files: the config, manifests and templates. One
//! place decides the size bound, the trust rule (DESIGN §5.2) and how a YAML problem is
//! reported (`file:line:column: message`), so every input fails the same clear way.
//!
//! This module never reads secrets; the host key and the vault have their own checks in
//! `vault`.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;

use camino::{Utf8Path, Utf8PathBuf};
use serde::de::DeserializeOwned;

/// The largest config, manifest or template phx-hook reads. Real ones are a few KiB; the
/// bound keeps a hostile or mistaken file from costing memory in a hook that every guest
/// start runs.
pub const MAX_INPUT_BYTES: u64 = 1024 * 1024;

/// A problem with an input file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file could not be opened or read.
    #[error("failed to read `{path}`: {source}")]
    Read {
        /// The file.
        path: Utf8PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than phx-hook reads ([`MAX_INPUT_BYTES`] for text inputs).
    #[error("`{path}` is too large ({size} bytes; the limit is {limit})")]
    TooLarge {
        /// The file.
        path: Utf8PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is not valid UTF-8.
    #[error("`{path}` is not valid UTF-8 text")]
    NotText {
        /// The file.
        path: Utf8PathBuf,
    },
    /// The content is wrong at a known place.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: Utf8PathBuf,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// The file (or its directory) could be changed by someone other than root.
    #[error("refusing `{path}`: {problem}; fix: `{fix}`")]
    Untrusted {
        /// The file or directory.
        path: Utf8PathBuf,
        /// What makes it untrusted.
        problem: String,
        /// The command that fixes it.
        fix: String,
    },
}

impl InputError {
    /// A line telling the administrator how to fix this, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            InputError::TooLarge { .. } => {
                Some("phx-hook's inputs are small text files; check the path".into())
            }
            _ => None,
        }
    }
}

/// A position in an input file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place {
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
}

impl Place {
    pub(crate) fn of(loc: &serde_saphyr::Location) -> Place {
        Place {
            line: loc.line(),
            column: loc.column(),
        }
    }

    /// An [`InputError::Invalid`] at this place in `path`.
    pub fn error(self, path: &Utf8Path, message: impl Into<String>) -> InputError {
        InputError::Invalid {
            path: path.to_owned(),
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }
}

/// Who may change a file, for [`check_trust`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Root-owned and not writable by group or other (configs, manifests, templates,
    /// directories). pmxcfs's 0640 root:www-data passes.
    RootWritable,
    /// Root-owned and neither readable nor writable by group or other (the host key and
    /// its passphrase). pmxcfs's `priv/` 0600 passes.
    RootOnly,
}

/// Refuse a file or directory that someone other than root could change (and, for
/// [`Trust::RootOnly`], read). The message carries the command that fixes it.
pub fn check_trust(path: &Utf8Path, meta: &fs::Metadata, trust: Trust) -> Result<(), InputError> {
    let mode = meta.mode() & 0o7777;
    let kind = if meta.is_dir() { "directory" } else { "file" };
    if meta.uid() != 0 {
        return Err(InputError::Untrusted {
            path: path.to_owned(),
            problem: format!("the {kind} is owned by uid {}, not root", meta.uid()),
            fix: format!("chown root:root {path}"),
        });
    }
    let (bad, want, what) = match trust {
        Trust::RootWritable => (mode & 0o022, mode & !0o022, "writable by group or other"),
        Trust::RootOnly => (
            mode & 0o077,
            mode & !0o077,
            "readable or writable by group or other",
        ),
    };
    if bad != 0 {
        // pmxcfs shows fixed modes (0640, and 0600 only below `priv/`) and refuses chmod.
        let fix = match crate::files::pmxcfs_root(path) {
            Some(root) => format!(
                "pmxcfs modes cannot be changed: keep it below {root}/priv/, which only root can read (e.g. {root}/priv/phx-hook/), and name that path in the config"
            ),
            None => format!("chmod {want:04o} {path}"),
        };
        return Err(InputError::Untrusted {
            path: path.to_owned(),
            problem: format!("the {kind} is {what} (mode {mode:04o})"),
            fix,
        });
    }
    Ok(())
}

/// Read a trusted, bounded text file.
pub fn read_text(path: &Utf8Path, trust: Trust) -> Result<String, InputError> {
    let read_err = |source| InputError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = fs::File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(read_err(std::io::Error::other("not a regular file")));
    }
    check_trust(path, &meta, trust)?;
    if meta.len() > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The bound holds even if the file grows between stat and read.
    file.by_ref()
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
            limit: MAX_INPUT_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|_| InputError::NotText {
        path: path.to_owned(),
    })
}

/// Deserialize YAML text, turning a YAML or type error into `file:line:column: message`.
pub fn parse_yaml<T: DeserializeOwned>(path: &Utf8Path, text: &str) -> Result<T, InputError> {
    serde_saphyr::from_str(text).map_err(|err| {
        let place = err.location().map(|l| Place::of(&l)).unwrap_or_default();
        place.error(path, yaml_message(&err))
    })
}

/// The first line of serde-saphyr's message, without its own location suffix and
/// snippet (we print the place ourselves, in the `file:line:column` form editors jump to).
fn yaml_message(err: &serde_saphyr::Error) -> String {
    let full = err.to_string();
    let first = full.lines().next().unwrap_or("invalid YAML").trim();
    let first = match first.rfind(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    let first = first.trim_start_matches("error: ");
    strip_place_prefix(first).to_string()
}

/// `line 4 column 5: unknown field` -> `unknown field`.
fn strip_place_prefix(s: &str) -> &str {
    let Some(rest) = s.strip_prefix("line ") else {
        return s;
    };
    let Some((_, after)) = rest.split_once(": ") else {
        return s;
    };
    let head = &rest[..rest.len() - after.len() - 2];
    let ok = head.split(' ').enumerate().all(|(i, w)| match i {
        0 | 2 => w.bytes().all(|b| b.is_ascii_digit()),
        1 => w == "column",
        _ => false,
    });
    if ok { after } else { s }
}
