//! Text that phx-hook did not write itself (a guest's error messages and replies, names
//! found in a vault) on its way to a terminal, a log or the audit trail: bounded in
//! length and with every control character escaped, so that a hostile guest can neither
//! flood the task log nor forge lines (`\n`) or colour and cursor tricks (`\x1b[...`)
//! in `inject` output, the journal or `phx-hook audit`.

/// The most characters of guest text one message carries.
pub const GUEST_TEXT_MAX: usize = 300;

/// `bytes` (any encoding) as one printable line of at most `max` characters (plus a note
/// of how much was left out): invalid UTF-8 replaced, control characters (C0, DEL, C1,
/// and the Unicode line and paragraph separators) escaped as `\n`, `\t`, `\x1b`,
/// `\u{2028}`.
pub fn shown(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len().min(max) + 32);
    let mut width = 0usize;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        let piece = match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            '\\' => "\\\\".to_string(),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                if (c as u32) < 0x100 {
                    format!("\\x{:02x}", c as u32)
                } else {
                    format!("\\u{{{:x}}}", c as u32)
                }
            }
            c => c.to_string(),
        };
        let w = piece.chars().count();
        if width + w > max {
            let rest = 1 + chars.count();
            out.push_str(&format!("… ({rest} more characters)"));
            return out;
        }
        width += w;
        out.push_str(&piece);
    }
    out
}

/// [`shown`] with the default bound, for a guest's text.
pub fn guest(bytes: &[u8]) -> String {
    shown(bytes, GUEST_TEXT_MAX)
}

/// [`shown`] for a name phx-hook did not choose (a vault key, a signer id), shorter.
pub fn name(s: &str) -> String {
    shown(s.as_bytes(), 80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(guest(b"a\nb\x1b[31mc\x7f\\"), "a\\nb\\x1b[31mc\\x7f\\\\");
        assert_eq!(guest("x\u{2028}\u{85}".as_bytes()), "x\\u{2028}\\x85");
        assert_eq!(guest(b"\xffok"), "\u{fffd}ok");
    }

    #[test]
    fn long_text_is_cut() {
        let s = shown(&[b'a'; 1000], 10);
        assert_eq!(s, "aaaaaaaaaa… (990 more characters)");
        assert_eq!(shown(b"abc", 3), "abc");
        // The bound is on what is printed, escapes included.
        assert_eq!(shown(&[0u8; 100], 10), "\\x00\\x00… (98 more characters)");
    }
}
