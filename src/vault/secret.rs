//! `Secret`: the only type a secret value lives in. It zeroizes its whole buffer on drop
//! and has no `Display` and a `Debug` that shows only the length, so a value cannot reach
//! a log line or an error message by accident.

use std::fmt;

use zeroize::Zeroizing;

/// Secret bytes. Read them with [`Secret::expose`], only where they are about to leave
/// for their destination.
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Take ownership of `bytes`; they are wiped when the `Secret` is dropped.
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Secret {
        Secret(bytes)
    }

    /// Copy `bytes` into a new secret buffer of exactly the right capacity.
    pub fn copy_from(bytes: &[u8]) -> Secret {
        let mut v = Zeroizing::new(Vec::with_capacity(bytes.len()));
        v.extend_from_slice(bytes);
        Secret(v)
    }

    /// The value. Callers must not log, print or pass it in argv.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (safe to show).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted>, {} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::copy_from(b"hunter2-very-secret");
        let d = format!("{s:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("19 bytes"), "{d}");
        assert_eq!(s.expose(), b"hunter2-very-secret");
    }
}
