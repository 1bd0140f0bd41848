//! Checked newtypes for the identifiers phx-hook passes around: guest ids, hook phases,
//! guest kinds, vault key paths and guest paths. Each is parsed once, at the edge, with
//! `FromStr`, and printed back with `Display`; code past the edge never re-validates.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Lower-case hex of `bytes` (digests, key ids, random tags).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A Proxmox guest id (`100` ..= `999999999`, as Proxmox VE allows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Vmid(u32);

impl Vmid {
    /// The numeric value.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl FromStr for Vmid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.starts_with('0') {
            return Err(format!(
                "`{s}` is not a guest id (a number from 100 to 999999999)"
            ));
        }
        match s.parse::<u32>() {
            Ok(n) if (100..=999_999_999).contains(&n) => Ok(Vmid(n)),
            _ => Err(format!(
                "`{s}` is not a guest id (a number from 100 to 999999999)"
            )),
        }
    }
}

impl fmt::Display for Vmid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A hookscript phase, as Proxmox VE passes it in argv. Proxmox may add phases, so
/// unknown ones are kept rather than rejected.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Before the guest starts; a non-zero exit aborts the start.
    PreStart,
    /// After the guest started.
    PostStart,
    /// Before the guest is stopped through the API.
    PreStop,
    /// After the guest stopped.
    PostStop,
    /// A phase this version does not know.
    Other(String),
}

impl FromStr for Phase {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pre-start" => Phase::PreStart,
            "post-start" => Phase::PostStart,
            "pre-stop" => Phase::PreStop,
            "post-stop" => Phase::PostStop,
            other => Phase::Other(other.to_string()),
        })
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::PreStart => "pre-start",
            Phase::PostStart => "post-start",
            Phase::PreStop => "pre-stop",
            Phase::PostStop => "post-stop",
            Phase::Other(s) => s,
        })
    }
}

/// The kind of guest: an LXC container or a QEMU virtual machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestKind {
    /// An LXC container (`pct`).
    Lxc,
    /// A QEMU virtual machine (`qm`).
    Qemu,
}

impl fmt::Display for GuestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GuestKind::Lxc => "lxc",
            GuestKind::Qemu => "qemu",
        })
    }
}

/// A `/`-separated path into the vault's JSON object, such as `samba/password`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct KeyPath(String);

impl KeyPath {
    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl FromStr for KeyPath {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("a vault key must not be empty".into());
        }
        if s.len() > 512 {
            return Err("a vault key must be at most 512 bytes long".into());
        }
        if s.split('/').any(str::is_empty) {
            return Err(format!(
                "vault key `{s}` has an empty segment (write `a/b`, without leading, trailing or doubled `/`)"
            ));
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!(
                "vault key `{}` contains white space or a control character",
                s.escape_debug()
            ));
        }
        if s == "_phx" || s.starts_with("_phx/") {
            return Err(format!(
                "vault key `{s}` is reserved for phx-hook's metadata"
            ));
        }
        Ok(KeyPath(s.to_string()))
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An absolute, normalised path inside a guest: starts with `/`, no empty, `.` or `..`
/// segments, no trailing `/`, no NUL or newline, and not `/` itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct GuestPath(String);

impl GuestPath {
    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory that holds this path (`/` for a file at the top).
    pub fn parent(&self) -> &str {
        match self.0.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &self.0[..i],
        }
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }
}

impl FromStr for GuestPath {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shown = s.escape_debug();
        if s.contains('\0') {
            return Err(format!("destination `{shown}` contains a NUL byte"));
        }
        if s.contains('\n') || s.contains('\r') {
            return Err(format!("destination `{shown}` contains a line break"));
        }
        if !s.starts_with('/') {
            return Err(format!(
                "destination `{shown}` is not an absolute path (it must start with `/`)"
            ));
        }
        if s == "/" || s.ends_with('/') {
            return Err(format!(
                "destination `{shown}` names a directory, not a file"
            ));
        }
        if s.len() > 4095 {
            return Err("destination is longer than 4095 bytes".into());
        }
        for seg in s[1..].split('/') {
            match seg {
                "" => {
                    return Err(format!(
                        "destination `{shown}` is not normalised (it has `//`)"
                    ));
                }
                "." => {
                    return Err(format!(
                        "destination `{shown}` is not normalised (it has a `.` segment)"
                    ));
                }
                ".." => return Err(format!("destination `{shown}` contains `..`")),
                _ if seg.len() > 255 => {
                    return Err(format!(
                        "destination `{shown}` has a segment longer than 255 bytes"
                    ));
                }
                _ => {}
            }
        }
        Ok(GuestPath(s.to_string()))
    }
}

impl fmt::Display for GuestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmid_bounds() {
        assert_eq!("100".parse::<Vmid>().unwrap().get(), 100);
        assert_eq!("999999999".parse::<Vmid>().unwrap().get(), 999_999_999);
        for bad in ["", "99", "0100", "1000000000", "-1", "10a", "+100", " 100"] {
            assert!(bad.parse::<Vmid>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn phase_round_trips() {
        for p in [
            "pre-start",
            "post-start",
            "pre-stop",
            "post-stop",
            "pre-migrate",
        ] {
            assert_eq!(p.parse::<Phase>().unwrap().to_string(), p);
        }
        assert_eq!("pre-start".parse::<Phase>().unwrap(), Phase::PreStart);
    }

    #[test]
    fn key_paths() {
        assert_eq!(
            "samba/password"
                .parse::<KeyPath>()
                .unwrap()
                .segments()
                .count(),
            2
        );
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a b",
            "_phx",
            "_phx/version",
            "a\tb",
        ] {
            assert!(bad.parse::<KeyPath>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn guest_paths() {
        let p: GuestPath = "/etc/app/secret".parse().unwrap();
        assert_eq!(p.parent(), "/etc/app");
        assert_eq!(p.file_name(), "secret");
        assert_eq!("/x".parse::<GuestPath>().unwrap().parent(), "/");
        for bad in [
            "etc/x",
            "/",
            "/etc/",
            "/etc//x",
            "/etc/./x",
            "/etc/../x",
            "/a\0b",
            "/a\nb",
            "",
        ] {
            assert!(bad.parse::<GuestPath>().is_err(), "{bad:?} accepted");
        }
    }
}
