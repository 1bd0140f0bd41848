//! Vaults made to hurt the host that opens them (issue 12): compression bombs, session-key
//! packet floods, and names and metadata that would flood or forge an error line. Each
//! vault is made by the real gpg; each attack must end in one clear line, exit 1, within
//! a memory bound the test enforces with `prlimit --as`.

use crate::util::*;

/// `len` bytes of zeros, compressed by gpg with `algo`, encrypted to the `ed` key.
fn bomb(len: usize, algo: &str) -> Vec<u8> {
    let zeros = vec![0u8; len];
    keys().encrypt(
        &zeros,
        &["ed"],
        false,
        None,
        &["--compress-algo", algo, "-z", "9"],
    )
}

/// Regression (issue 12, point 2): a vault of a few hundred bytes that expands to
/// 300 MB. With `max_plaintext: 1MiB` phx-hook must refuse it in a 96 MiB address space
/// (the unbounded read needed 300 MB and was killed).
#[test]
fn a_compression_bomb_is_refused_within_the_bound() {
    for algo in ["bzip2", "zlib"] {
        let n = ready_node();
        n.write("pve/lxc/101.conf", b"arch: amd64\n");
        let ct = bomb(300 << 20, algo);
        assert!(ct.len() < 400_000, "{algo}: {} bytes", ct.len());
        n.vault(&ct);
        n.config("max_plaintext: 1MiB\n");
        let r = n.run_limited(96, &["check"]);
        r.assert_code(1)
            .assert_contains("decompresses to more than 1048576 bytes (`max_plaintext`)");
        // The hook fails the start the same way, with one line.
        n.run_limited(96, &["101", "pre-start"])
            .assert_code(1)
            .assert_contains("decompresses to more than");
    }
}

/// With the default bound (64 MiB) a 256 MB bomb is refused in 200 MiB of address space.
#[test]
fn the_default_bound_stops_a_bomb() {
    let n = ready_node();
    n.vault(&bomb(256 << 20, "zlib"));
    n.run_limited(200, &["check"])
        .assert_code(1)
        .assert_contains("decompresses to more than 67108864 bytes");
}

/// Split a binary OpenPGP message into its packets (old- and new-format headers, with
/// definite lengths; the encrypted-data packet is last and taken whole).
fn packets(mut b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let ctb = b[0];
        assert!(ctb & 0x80 != 0, "not an OpenPGP packet header");
        let (hlen, blen) = if ctb & 0x40 == 0 {
            match ctb & 3 {
                0 => (2, b[1] as usize),
                1 => (3, u16::from_be_bytes([b[1], b[2]]) as usize),
                2 => (5, u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize),
                _ => (1, b.len() - 1),
            }
        } else {
            match b[1] {
                l @ 0..=191 => (2, l as usize),
                l @ 192..=223 => (3, ((l as usize - 192) << 8) + b[2] as usize + 192),
                255 => (6, u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize),
                _ => (1, b.len() - 1), // partial lengths: the data packet, keep the rest
            }
        };
        let end = (hlen + blen).min(b.len());
        out.push(b[..end].to_vec());
        b = &b[end..];
    }
    out
}

/// Regression (issue 12, point 7): thousands of bogus session-key packets for the host's
/// key id, each costing an RSA decryption, are refused before any is tried.
#[test]
fn a_flood_of_session_key_packets_is_refused() {
    let k = keys();
    let n = ready_node();
    n.host_key(&k.secret("rsa", true));
    let ct = k.encrypt(VAULT_JSON.as_bytes(), &["rsa"], false, None, &[]);
    let p = packets(&ct);
    let mut flood = Vec::new();
    for i in 0..2000u32 {
        let mut bogus = p[0].clone();
        let last = bogus.len() - 1 - (i as usize % 16);
        bogus[last] ^= 0x5a;
        flood.extend_from_slice(&bogus);
    }
    for q in &p {
        flood.extend_from_slice(q);
    }
    n.vault(&flood);
    let t = std::time::Instant::now();
    n.run(&["check"])
        .assert_code(1)
        .assert_contains("carries 2001 session-key packets for this host's keys");
    assert!(t.elapsed().as_secs() < 5, "took {:?}", t.elapsed());
    // The genuine vault, with its one packet, still opens.
    n.vault(&ct);
    n.run(&["check"]).assert_code(0);
}

/// Regression (issue 12, point 10): `_phx` that is not an object, and a key name of a
/// megabyte with escape sequences, give a short error that quotes no content.
#[test]
fn malformed_vaults_give_short_errors_without_content() {
    let n = ready_node();
    n.write("pve/lxc/101.conf", b"arch: amd64\n");
    let k = keys();
    n.vault(&k.encrypt(
        br#"{"_phx": "VALUE-IN-PHX-123"}"#,
        &["ed"],
        false,
        None,
        &[],
    ));
    let r = n.run(&["check"]);
    r.assert_code(1)
        .assert_contains("`_phx` is a string")
        .assert_lacks("VALUE-IN-PHX-123");
    let huge = format!("{{\"{}\\u001b[2J/x\": \"v\"}}", "K".repeat(1 << 20));
    n.vault(&k.encrypt(huge.as_bytes(), &["ed"], false, None, &[]));
    for args in [&["check"][..], &["101", "pre-start"]] {
        let r = n.run(args);
        r.assert_code(1).assert_contains("contains `/`");
        assert!(r.all().len() < 2000, "{} bytes of output", r.all().len());
        assert!(!r.all().contains('\u{1b}'), "{r:?}");
    }
}

/// A vault file past 64 MiB is refused by its size, before it is read.
#[test]
fn an_oversized_vault_file_is_refused_without_reading_it() {
    let n = ready_node();
    let f = std::fs::File::create(n.path("secrets.json.gpg")).unwrap();
    f.set_len(65 << 20).unwrap();
    drop(f);
    n.run_limited(48, &["check"])
        .assert_code(1)
        .assert_contains("is too large (68157440 bytes; the limit is 67108864)");
}
