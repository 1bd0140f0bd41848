//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz): every parser of untrusted
//! or semi-trusted input, called the way phx-hook calls it, results thrown away. A
//! target must never panic, hang or allocate without bound; what it finds becomes a
//! regression test. Not part of phx-hook's interface.

use std::sync::OnceLock;

use camino::Utf8Path;

use crate::deliver::Verified;
use crate::plan::Delivery;
use crate::vault::pgp;

/// A vault message (armored or binary) decrypted with the fuzz key `key` (parsed once),
/// with a signer list, under a 1 MiB plaintext bound, then indexed as the hook does.
pub fn vault_message(key: &[u8], ct: &[u8]) {
    static KEYS: OnceLock<Option<pgp::HostKeys>> = OnceLock::new();
    let Some(keys) = KEYS.get_or_init(|| pgp::HostKeys::parse(key).ok()) else {
        return;
    };
    let signers = ["0".repeat(40)];
    if let Ok(d) = pgp::decrypt(keys, None, ct, true, &signers, &pgp::Certs::none(), 1 << 20) {
        vault_plaintext(&d.plaintext);
    }
    let _ = pgp::recipients_of(ct);
}

/// A vault's plaintext, indexed whole and for a few keys, and read as a document.
pub fn vault_plaintext(pt: &[u8]) {
    let info = crate::vault::VaultInfo::default();
    let _ = crate::vault::Vault::from_plaintext(pt, info.clone());
    let keys: Vec<crate::types::KeyPath> = ["a", "a/b", "samba/password"]
        .iter()
        .filter_map(|k| k.parse().ok())
        .collect();
    let wanted = crate::vault::Wanted::new(&keys);
    let _ = crate::vault::Vault::from_plaintext_for(pt, info, &wanted);
    if let Ok(doc) = crate::vault::doc::Doc::parse(pt) {
        let _ = doc.to_json();
    }
}

/// A key or certificate file (armor, several blocks, binary).
pub fn key_file(bytes: &[u8]) {
    if let Ok(k) = pgp::HostKeys::parse(bytes) {
        let _ = k.fingerprints();
        let _ = k.key_ids();
    }
    if let Ok((c, _)) = pgp::Certs::parse(bytes) {
        let _ = c.infos();
    }
}

/// A manifest, and the same text as a template.
pub fn manifest(text: &str) {
    let dir = Utf8Path::new("/nonexistent/phx-hook-fuzz");
    if let Ok(vmid) = "101".parse() {
        let _ = crate::manifest::parse(dir, &dir.join("101.yaml"), vmid, text);
    }
    let _ = crate::manifest::parse_template(Utf8Path::new("/t"), text);
}

/// The host config.
pub fn config(text: &str) {
    let _ = crate::config::Config::parse(Utf8Path::new("/etc/phx-hook/phx-hook.yaml"), text);
    let _ = crate::config::parse_duration(text);
    let _ = crate::config::parse_size(text);
}

/// A Proxmox guest config and a storage.cfg.
pub fn proxmox_files(text: &str) {
    for key in ["agent", "lock", "hookscript", "ostype"] {
        if let Some(v) = crate::pve::config_value(text, key) {
            let _ = crate::pve::agent_enabled(&v);
        }
    }
    let st = crate::pve::parse_storage_cfg(text);
    for v in ["local:snippets/phx-hook", "x:snippets/y"] {
        let _ = crate::pve::snippet_path(&st, v);
    }
}

/// One reply line from a guest agent, as each request phx-hook makes reads it.
pub fn agent_reply(line: &[u8]) {
    use crate::deliver::qga::{proto, socket};
    let _ = socket::reply::<u64>("guest-sync-delimited", line);
    let _ = socket::reply::<serde::de::IgnoredAny>("guest-ping", line);
    let _ = socket::reply::<proto::Started>("guest-exec", line);
    if let Some(Ok(status)) = socket::reply::<proto::Status>("guest-exec-status", line) {
        let _ = proto::exited(status);
    }
    let _ = socket::reply::<String>("guest-fsfreeze-status", line);
}

fn delivery(content: &[u8]) -> Option<Delivery> {
    Some(Delivery {
        dest: "/etc/app/secret".parse().ok()?,
        format: "raw",
        keys: Vec::new(),
        mode: 0o600,
        owner: crate::manifest::Owner::Id(0),
        group: crate::manifest::Owner::Id(0),
        content: crate::vault::Secret::copy_from(content),
        store: None,
    })
}

/// What the guest programs and the container writer print, parsed as each transport
/// parses it.
pub fn guest_output(out: &[u8]) {
    let Some(d) = delivery(b"hello") else { return };
    let files = [d];
    let done = crate::deliver::qga::proto::Exited {
        exitcode: Some(0),
        signal: None,
        out: out.to_vec(),
        err: out.to_vec(),
    };
    let results = crate::deliver::qga::batch_results(&done, &files, &[0, 0, 0]);
    assert_eq!(results.len(), 3);
    let _ = crate::deliver::qga::check_report(out, &files[0]);
    let text = String::from_utf8_lossy(out);
    assert_eq!(crate::deliver::pct::prepared_results(&text, 4).len(), 4);
    assert_eq!(crate::deliver::pct::commit_results(&text, 4).len(), 4);
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let r = crate::deliver::lxc::child_results(&lines, 4, "exit 0");
    assert_eq!(r.len(), 4);
    // Guest text that reaches a message is escaped and bounded.
    for e in r.iter().filter_map(|r| r.as_ref().err()) {
        let m = e.to_string();
        assert!(
            !m.contains(['\n', '\u{1b}']) && m.chars().count() < 400,
            "{m:?}"
        );
    }
    let _ = results
        .iter()
        .filter(|r| matches!(r, Ok(Verified::Digest)))
        .count();
}

#[cfg(test)]
mod tests {
    //! Every input a fuzz target crashed on (fuzz/regressions/<target>/), replayed.

    use std::path::Path;

    fn replay(target: &str, f: impl Fn(&[u8])) -> usize {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/regressions")
            .join(target);
        let mut n = 0;
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            f(&std::fs::read(e.path()).unwrap());
            n += 1;
        }
        n
    }

    fn text(f: impl Fn(&str)) -> impl Fn(&[u8]) {
        move |b| {
            if let Ok(t) = std::str::from_utf8(b) {
                f(t)
            }
        }
    }

    #[test]
    fn fuzz_regressions_replay() {
        let key = include_bytes!("../fuzz/keys/host.key");
        let mut n = 0;
        n += replay("vault_message", |b| super::vault_message(key, b));
        n += replay("vault_plaintext", super::vault_plaintext);
        n += replay("key_file", super::key_file);
        n += replay("manifest", text(super::manifest));
        n += replay("config", text(super::config));
        n += replay("proxmox_files", text(super::proxmox_files));
        n += replay("agent_reply", super::agent_reply);
        n += replay("guest_output", super::guest_output);
        assert!(n >= 1, "no regression inputs found");
    }
}
