//! Regression (issue 12, point 3): `format: env` files must read back to the exact value
//! in every shell that sources them (dash, bash, busybox sh) and in systemd's
//! `EnvironmentFile=` parser, which is called here through the installed
//! libsystemd-shared (`load_env_file`). Shell-style `'\''` quoting was read wrongly by
//! systemd and let an apostrophe plus a newline inject `LD_PRELOAD` into the unit.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use camino::Utf8Path;
use phx_hook::vault::{Vault, VaultInfo};

/// The systemd harness, built once per test run.
fn harness() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sd-load-env");
    let lib = "/usr/lib/x86_64-linux-gnu/systemd";
    let so = fs::read_dir(lib)
        .expect("systemd's libraries (package systemd)")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libsystemd-shared-") && n.ends_with(".so"))
        .expect("libsystemd-shared-*.so");
    let name = so
        .trim_start_matches("lib")
        .trim_end_matches(".so")
        .to_string();
    crate::util::sh(
        Command::new("gcc")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/sd-load-env.c"
            ))
            .arg("-o")
            .arg(&out)
            .arg(format!("-L{lib}"))
            .arg(format!("-l{name}"))
            .arg(format!("-Wl,-rpath,{lib}")),
    );
    out
}

/// What systemd reads from `file`: NAME -> value.
fn systemd_reads(harness: &Path, file: &Path) -> BTreeMap<String, Vec<u8>> {
    let out = crate::util::sh(Command::new(harness).arg(file));
    out.stdout
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let i = e.iter().position(|&b| b == b'=').unwrap();
            (
                String::from_utf8(e[..i].to_vec()).unwrap(),
                e[i + 1..].to_vec(),
            )
        })
        .collect()
}

/// What `shell` reads when it sources `file`: the value of each of `names`.
fn shell_reads(shell: &[&str], file: &Path, names: &[String]) -> Vec<Vec<u8>> {
    let script = format!(
        ". \"$1\"; printf '%s\\0' {}",
        names
            .iter()
            .map(|n| format!("\"${n}\""))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = crate::util::sh(
        Command::new(shell[0])
            .args(&shell[1..])
            .args(["-c", &script, "sh"])
            .arg(file)
            .env_clear(),
    );
    let mut v: Vec<Vec<u8>> = out.stdout.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    v.pop();
    v
}

#[test]
fn env_files_read_back_exactly_in_sh_and_systemd() {
    let values: &[&str] = &[
        "it's",
        "a'b\nLD_PRELOAD=/tmp/evil.so",
        "x'\nLD_PRELOAD=/tmp/evil.so'\n",
        "\"double\" quotes",
        "back\\slash \\n \\\\ \\",
        "$HOME ${HOME} $(id) `id`",
        "multi\nline\n",
        "tab\there",
        "  lead and trail  ",
        "#not a comment",
        ";&|<>*?[]{}~!%^",
        "unicode é ☃ \u{2028} \u{85}",
        "\u{1b}[31mred",
        "cr\rhere",
        "",
        "=equals=",
        "'",
        "\"",
        "plain-value_1.2/3:4@5%6+7,8=9",
    ];
    let mut json = serde_json::Map::new();
    let mut vars = String::new();
    for (i, v) in values.iter().enumerate() {
        json.insert(format!("v{i}"), serde_json::Value::String(v.to_string()));
        vars.push_str(&format!("V{i}: v{i}, "));
    }
    let vault = Vault::from_plaintext(
        serde_json::to_string(&json).unwrap().as_bytes(),
        VaultInfo::default(),
    )
    .unwrap();
    let manifest = phx_hook::manifest::parse(
        Utf8Path::new("/nonexistent"),
        Utf8Path::new("/m/101.yaml"),
        "101".parse().unwrap(),
        &format!("files:\n  - {{dest: /e, format: env, vars: {{{vars}}}}}\n"),
    )
    .unwrap();
    let plan = phx_hook::plan::build(&manifest, &vault).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    fs::write(&file, plan.deliveries[0].content.expose()).unwrap();

    let names: Vec<String> = (0..values.len()).map(|i| format!("V{i}")).collect();
    let sd = systemd_reads(&harness(), &file);
    assert_eq!(
        sd.keys().collect::<Vec<_>>(),
        {
            let mut n: Vec<&String> = names.iter().collect();
            n.sort();
            n
        },
        "systemd read other variables than were written"
    );
    for (i, v) in values.iter().enumerate() {
        assert_eq!(
            String::from_utf8_lossy(&sd[&names[i]]),
            *v,
            "systemd reads V{i} differently"
        );
    }
    for shell in [&["dash"][..], &["bash", "--posix"], &["busybox", "sh"]] {
        let got = shell_reads(shell, &file, &names);
        for (i, v) in values.iter().enumerate() {
            assert_eq!(
                String::from_utf8_lossy(&got[i]),
                *v,
                "{shell:?} reads V{i} differently"
            );
        }
    }
}

#[test]
fn values_no_env_file_can_carry_are_refused() {
    let vault = Vault::from_plaintext(
        br#"{"both": "a\r'b", "nul": "a\u0000b"}"#,
        VaultInfo::default(),
    )
    .unwrap();
    let m = phx_hook::manifest::parse(
        Utf8Path::new("/nonexistent"),
        Utf8Path::new("/m/101.yaml"),
        "101".parse().unwrap(),
        "files:\n  - {dest: /e, format: env, vars: {A: both, B: nul}}\n",
    )
    .unwrap();
    let probs: Vec<String> = phx_hook::plan::build(&m, &vault)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(probs.len(), 2, "{probs:?}");
    assert!(probs[0].contains("carriage return and `'`"), "{probs:?}");
    assert!(probs[1].contains("NUL"), "{probs:?}");
    assert!(probs.iter().all(|p| p.contains("format: raw")), "{probs:?}");
}
