//! `phx-hook scan` on a labelled corpus written for this project (tests/scan-corpus:
//! every true secret's `file:line` in labels.txt, every other line a negative), git
//! history, the three output formats (SARIF validated against the 2.1.0 schema),
//! baselines, and migration into the vault with the rewritten script still working.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use camino::Utf8PathBuf;

use crate::util::*;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scan-corpus");

fn scan(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .arg("scan")
        .args(args)
        .current_dir(dir)
        .env_remove("PHX_HOOK_CONFIG")
        .output()
        .unwrap();
    Run::from(out)
}

/// The true values in the corpus, as the scanner itself extracts them (to check no
/// output ever holds one).
fn corpus_values() -> Vec<String> {
    let (findings, _) = phx_hook::scan::scan_paths(&[Utf8PathBuf::from(CORPUS)], false);
    findings
        .iter()
        .map(|f| f.value.to_string())
        .filter(|v| v.len() >= 6)
        .collect()
}

#[test]
fn precision_and_recall_on_the_labelled_corpus() {
    let labels: BTreeSet<String> = fs::read_to_string(format!("{CORPUS}/labels.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let r = scan(Path::new(CORPUS), &["--format", "json", "."]);
    assert_eq!(r.code, 1, "findings make the exit status 1: {}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let mut reported: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in v.as_array().unwrap() {
        if f["severity"] == "info" {
            continue;
        }
        let path = f["path"]
            .as_str()
            .unwrap()
            .trim_start_matches("./")
            .to_string();
        reported
            .entry(format!("{path}:{}", f["line"]))
            .or_default()
            .push(f["rule"].as_str().unwrap().to_string());
    }
    let found: BTreeSet<String> = reported.keys().cloned().collect();
    let tp = labels.intersection(&found).count();
    let fp: Vec<&String> = found.difference(&labels).collect();
    let fneg: Vec<&String> = labels.difference(&found).collect();
    // Near-misses: unlabelled lines that mention a secret-ish word.
    let mut near_misses = 0;
    for entry in walk(Path::new(CORPUS)) {
        let rel = entry
            .strip_prefix(CORPUS)
            .unwrap()
            .to_string_lossy()
            .trim_start_matches('/')
            .to_string();
        if rel == "labels.txt" {
            continue;
        }
        for (i, line) in fs::read_to_string(&entry).unwrap().lines().enumerate() {
            let l = line.to_ascii_lowercase();
            let mentions = [
                "pass",
                "pw",
                "secret",
                "token",
                "key",
                "auth",
                "-----begin",
                "://",
            ]
            .iter()
            .any(|w| l.contains(w));
            if mentions && !labels.contains(&format!("{rel}:{}", i + 1)) {
                near_misses += 1;
            }
        }
    }
    let precision = tp as f64 / found.len().max(1) as f64;
    let recall = tp as f64 / labels.len() as f64;
    println!(
        "scan corpus: {} true secrets, {near_misses} near-misses; TP {tp}, FP {}, FN {}; precision {precision:.3}, recall {recall:.3}",
        labels.len(),
        fp.len(),
        fneg.len()
    );
    assert!(
        labels.len() >= 60,
        "the corpus needs at least 60 true secrets"
    );
    assert!(
        near_misses >= 60,
        "the corpus needs at least 60 near-misses, has {near_misses}"
    );
    assert!(recall >= 0.95, "recall {recall:.3}; missed: {fneg:?}");
    assert!(
        precision >= 0.9,
        "precision {precision:.3}; false positives: {fp:?}"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[test]
fn no_output_format_holds_a_value_and_sarif_validates() {
    let values = corpus_values();
    assert!(values.len() >= 50);
    for fmt in ["text", "json", "sarif"] {
        let r = scan(Path::new(CORPUS), &["--format", fmt, "."]);
        assert_eq!(r.code, 1);
        for v in &values {
            assert!(!r.all().contains(v.as_str()), "{fmt} output holds a value");
        }
        if fmt == "text" {
            r.assert_contains("scripts/setup-samba.sh:6:25: secret-assignment [high] smb_password = Ph****** (16 chars)");
        }
        if fmt == "sarif" {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("out.sarif");
            fs::write(&out, &r.stdout).unwrap();
            let schema = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/sarif-schema-2.1.0.json"
            );
            let check = Command::new("python3")
                .args(["-c", "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))); print('valid')"])
                .arg(&out)
                .arg(schema)
                .output()
                .unwrap();
            assert!(
                check.status.success(),
                "SARIF does not validate: {}",
                String::from_utf8_lossy(&check.stderr)
            );
            let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
            assert!(v["runs"][0]["results"].as_array().unwrap().len() >= 60);
        }
    }
}

#[test]
fn history_finds_a_secret_deleted_later_with_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| sh(Command::new("git").arg("-C").arg(dir.path()).args(args));
    init_repo(dir.path());
    fs::write(
        dir.path().join("deploy.sh"),
        "#!/bin/sh\nDB_PASSWORD=\"Hist0ry-Leak-Pw\"\n",
    )
    .unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "add deploy"]);
    let first = String::from_utf8(git(&["rev-parse", "HEAD"]).stdout).unwrap();
    fs::write(
        dir.path().join("deploy.sh"),
        "#!/bin/sh\nDB_PASSWORD=\"${DB_PASSWORD:?missing}\"\n",
    )
    .unwrap();
    git(&["commit", "-qam", "remove the secret"]);
    // The working tree is clean now...
    scan(dir.path(), &["."]).assert_code(0);
    // ...but the history still leaks it, and says where.
    let r = scan(dir.path(), &["--history", "."]);
    r.assert_code(1)
        .assert_contains("deploy.sh:2:")
        .assert_contains(&format!("(introduced in commit {})", &first[..12]))
        .assert_contains("not in HEAD any more")
        .assert_lacks("Hist0ry-Leak-Pw");
}

/// `--history` reports each secret once, however many commits touched the files that
/// held it: the commit that introduced it, the later ones that still held it, whether
/// HEAD holds it, every path; and the summary counts the secrets to rotate.
#[test]
fn history_groups_findings_by_secret() {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| sh(Command::new("git").arg("-C").arg(dir.path()).args(args));
    let commit = |msg: &str| {
        git(&["add", "-A"]);
        git(&["commit", "-qm", msg]);
        String::from_utf8(git(&["rev-parse", "--short=12", "HEAD"]).stdout)
            .unwrap()
            .trim()
            .to_string()
    };
    init_repo(dir.path());
    let w = |name: &str, text: &str| fs::write(dir.path().join(name), text).unwrap();
    w(
        "backup.sh",
        "#!/bin/sh
SMB_PASSWORD=\"Gr0up-Once-Pw\"\n",
    );
    let first = commit("add backup");
    let mut later = Vec::new();
    for i in 0..5 {
        w(
            "backup.sh",
            &format!(
                "#!/bin/sh\n# run {i}\nSMB_PASSWORD=\"Gr0up-Once-Pw\"\nrsync -a /srv/ /mnt/{i}/\n"
            ),
        );
        later.push(commit(&format!("tweak {i}")));
    }
    // Moved to another file, then removed from the tree.
    fs::rename(dir.path().join("backup.sh"), dir.path().join("nightly.sh")).unwrap();
    later.push(commit("rename"));
    w(
        "nightly.sh",
        "#!/bin/sh\nSMB_PASSWORD=\"${SMB_PASSWORD:?}\"\n",
    );
    commit("vault it");
    // A second secret, still in HEAD.
    w("app.env", "API_TOKEN=St1ll-In-Head-Tok3n\n");
    let second = commit("add app env");
    let r = scan(dir.path(), &["--history", "--format", "json", "."]);
    r.assert_code(1)
        .assert_contains("2 distinct secret(s) in the history must be rotated (1 still in HEAD, 1 only in earlier commits)");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let all = v.as_array().unwrap();
    assert_eq!(all.len(), 2, "one finding per secret: {v}");
    let smb = all.iter().find(|f| f["name"] == "SMB_PASSWORD").unwrap();
    assert_eq!(smb["history"]["introduced"], first, "{smb}");
    assert_eq!(
        smb["history"]["changed_in"],
        serde_json::json!(later),
        "{smb}"
    );
    assert_eq!(smb["history"]["in_head"], false);
    assert_eq!(
        smb["history"]["paths"],
        serde_json::json!(["backup.sh", "nightly.sh"])
    );
    let tok = all.iter().find(|f| f["name"] == "API_TOKEN").unwrap();
    assert_eq!(tok["history"]["introduced"], second);
    assert_eq!(tok["history"]["in_head"], true);
    assert_ne!(smb["history"]["secret_id"], tok["history"]["secret_id"]);
    assert!(!r.stdout.contains("Gr0up-Once-Pw") && !r.stdout.contains("St1ll-In-Head"));
}

#[test]
fn baselines_and_fail_on() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("a.env"),
        "API_TOKEN=Ba5eline-Known-Tok3n\nDB_PASSWORD=letmein\n",
    )
    .unwrap();
    scan(dir.path(), &["."]).assert_code(1);
    scan(dir.path(), &["--fail-on", "medium", "."]).assert_code(1);
    scan(dir.path(), &["--write-baseline", "base.json", "."]).assert_code(0);
    let base = fs::read_to_string(dir.path().join("base.json")).unwrap();
    assert!(!base.contains("Ba5eline"), "the baseline holds a value");
    let r = scan(dir.path(), &["--baseline", "base.json", "."]);
    r.assert_code(0)
        .assert_contains("2 suppressed by the baseline");
    // A new secret is not covered by the baseline.
    fs::write(
        dir.path().join("a.env"),
        "API_TOKEN=Ba5eline-Known-Tok3n\nDB_PASSWORD=letmein\nNEW_SECRET=N3w-Not-In-Base\n",
    )
    .unwrap();
    scan(dir.path(), &["--baseline", "base.json", "."])
        .assert_code(1)
        .assert_contains("NEW_SECRET");
    // A weak password (letmein) alone is low: --fail-on medium passes.
    fs::write(dir.path().join("a.env"), "DB_PASSWORD=letmein\n").unwrap();
    scan(dir.path(), &["--fail-on", "medium", "."]).assert_code(0);
    // .gitignore is honoured.
    fs::write(dir.path().join(".gitignore"), "a.env\n").unwrap();
    fs::write(dir.path().join("a.env"), "API_TOKEN=Ign0red-By-Git\n").unwrap();
    scan(dir.path(), &["."]).assert_code(0);
    scan(dir.path(), &["--no-ignore", "."]).assert_code(1);
}

#[test]
fn migration_moves_secrets_into_the_vault_and_the_script_still_works() {
    // A realistic script tree: the Samba setup script and an app env file.
    let tree = tempfile::tempdir().unwrap();
    let t = tree.path();
    fs::create_dir_all(t.join("scripts")).unwrap();
    fs::create_dir_all(t.join("config")).unwrap();
    fs::create_dir_all(t.join("bin")).unwrap();
    let script = t.join("scripts/phoenix-samba-setup.sh");
    fs::write(
        &script,
        "#!/bin/bash\nset -euo pipefail\nsetup_samba() {\n    local smb_password=\"Ph0enix-Smb!2024\"\n    local smb_user=\"phoenix\"\n    echo -e \"Ph0enix-Smb!2024\\nPh0enix-Smb!2024\" | smbpasswd -s -a \"$smb_user\"\n}\nsetup_samba\n",
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        t.join("config/app.env"),
        "DATABASE_PASS=Xq8-vRt2-pLm9\nLOG_LEVEL=info\n",
    )
    .unwrap();
    // smbpasswd stand-in: records what it was given on stdin.
    let seen = t.join("smbpasswd.stdin");
    fs::write(
        t.join("bin/smbpasswd"),
        format!("#!/bin/sh\ncat > {}\n", seen.display()),
    )
    .unwrap();
    fs::set_permissions(t.join("bin/smbpasswd"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        t.join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    sh(Command::new(&script).env("PATH", &path));
    let before = fs::read(&seen).unwrap();
    assert_eq!(before, b"Ph0enix-Smb!2024\nPh0enix-Smb!2024\n");

    // A host with a vault.
    let n = Node::new();
    n.run(&["vault", "init"]).assert_code(0);
    let scan_n = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(n.path("phx-hook.yaml"))
            .arg("scan")
            .args(args)
            .current_dir(t)
            .output()
            .unwrap();
        Run::from(out)
    };
    // Proposal only: diffs, no values, nothing written.
    let r = scan_n(&["--migrate", "."]);
    r.assert_code(0)
        .assert_contains("#   phoenix-samba-setup/smb_password")
        .assert_contains("+    local smb_password=\"${SMB_PASSWORD:?missing}\"")
        .assert_contains("# run it as: phx-hook run --env SMB_PASSWORD=phoenix-samba-setup/smb_password -- scripts/phoenix-samba-setup.sh")
        .assert_contains("+DATABASE_PASS={{ phx://app/database_pass }}")
        .assert_lacks("Ph0enix-Smb!2024")
        .assert_lacks("Xq8-vRt2-pLm9");
    assert!(
        fs::read_to_string(&script)
            .unwrap()
            .contains("Ph0enix-Smb!2024"),
        "--migrate alone wrote something"
    );
    // Write: the vault holds the values, the files are rewritten, a rescan is clean.
    scan_n(&["--migrate", "--write", "--host", "."]).assert_code(0);
    scan_n(&["."]).assert_code(0);
    let get = |k: &str| n.run(&["vault", "get", k, "--host"]).stdout;
    assert_eq!(get("phoenix-samba-setup/smb_password"), "Ph0enix-Smb!2024");
    assert_eq!(get("app/database_pass"), "Xq8-vRt2-pLm9");
    assert_eq!(
        fs::metadata(&script).unwrap().permissions().mode() & 0o777,
        0o755
    );
    // The rewritten script, run under phx-hook run, gives smbpasswd the same input.
    fs::remove_file(&seen).unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(n.path("phx-hook.yaml"))
        .args([
            "run",
            "--env",
            "SMB_PASSWORD=phoenix-samba-setup/smb_password",
            "--",
        ])
        .arg(&script)
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(&seen).unwrap(), before);
    // Without phx-hook run the script refuses to run with an empty password.
    let out = Command::new(&script).env("PATH", &path).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SMB_PASSWORD: missing"));
}

/// Score `phx-hook scan` on a labelled corpus with bench/score.py (the scorer
/// `make bench` uses for every tool): its JSON verdict.
fn score(corpus: &str) -> serde_json::Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(corpus);
    let r = scan(&dir, &["--format", "json", "."]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let findings = tempfile::NamedTempFile::new().unwrap();
    fs::write(findings.path(), &r.stdout).unwrap();
    let out = sh(Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/score.py"))
        .arg(&dir)
        .arg(findings.path()));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Fixture secrets are reported, lowered, and say why; documentation examples are
    // never above low.
    let all: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let mut fixtures = 0;
    for f in all.as_array().unwrap() {
        let p = format!("/{}", f["path"].as_str().unwrap().trim_start_matches("./"));
        if p.contains("/tests/") || p.contains("/examples/") {
            fixtures += 1;
            assert!(
                f["detail"].as_str().is_some_and(|d| d.contains("fixture")),
                "{f}"
            );
        }
    }
    assert!(fixtures > 0, "no finding in a fixture was looked at");
    assert_eq!(v["doc_reported_above_low"], serde_json::json!([]), "{v}");
    println!("{corpus}: {v}");
    v
}

/// The second corpus: real infrastructure code from public repositories, excerpted and
/// labelled by hand without the scanner's rules (values replaced by generated ones of the
/// same shape; tests/scan-corpus-wild/REASONS.md says where each file is from and why
/// each label is what it is).
#[test]
fn precision_and_recall_on_public_infrastructure_code() {
    let v = score("tests/scan-corpus-wild");
    assert!(v["positives"].as_u64().unwrap() >= 100, "{v}");
    at_least_095(&v);
}

/// `scan --staged` looks at what `git commit` would record (the index), not the working
/// tree: as a plain `.git/hooks/pre-commit`, it refuses a commit that stages a secret
/// and lets one through whose staged content is clean, whatever the working tree holds.
#[test]
fn staged_scans_the_index_and_works_as_a_git_hook() {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args(args)
            .env("PATH", path_with_bin())
            .output()
            .unwrap()
    };
    init_repo(dir.path());
    let hook = dir.path().join(".git/hooks/pre-commit");
    fs::write(&hook, "#!/bin/sh\nexec phx-hook scan --staged\n").unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    // A clean file commits.
    fs::write(dir.path().join("deploy.sh"), "#!/bin/sh\nPW=\"${PW:?}\"\n").unwrap();
    git(&["add", "deploy.sh"]);
    assert!(git(&["commit", "-qm", "clean"]).status.success());
    // A staged secret is refused, and the message names it without its value.
    fs::write(
        dir.path().join("deploy.sh"),
        "#!/bin/sh\nsmbclient //nas/x -U bk%St4ged-Secr3t\n",
    )
    .unwrap();
    git(&["add", "deploy.sh"]);
    let refused = git(&["commit", "-qm", "leak"]);
    assert!(!refused.status.success());
    let out = String::from_utf8_lossy(&refused.stdout).to_string()
        + &String::from_utf8_lossy(&refused.stderr);
    assert!(
        out.contains("deploy.sh:2:") && out.contains("smbclient -U"),
        "{out}"
    );
    assert!(!out.contains("St4ged-Secr3t"), "{out}");
    // Staged clean, working tree dirty: the commit goes through (the index is what counts).
    fs::write(
        dir.path().join("deploy.sh"),
        "#!/bin/sh\nPW=\"${PW:?}\"\necho ok\n",
    )
    .unwrap();
    git(&["add", "deploy.sh"]);
    fs::write(
        dir.path().join("deploy.sh"),
        "#!/bin/sh\nsmbclient //nas/x -U bk%St4ged-Secr3t\n",
    )
    .unwrap();
    assert!(git(&["commit", "-qm", "fix"]).status.success());
    // And the other way round: a secret staged, the working tree cleaned but not staged.
    git(&["add", "deploy.sh"]);
    fs::write(dir.path().join("deploy.sh"), "#!/bin/sh\n").unwrap();
    let r = scan(dir.path(), &["--staged"]);
    r.assert_code(1).assert_contains("deploy.sh:2:");
    scan(dir.path(), &["."]).assert_code(0);
}

/// PATH with the phx-hook under test first.
fn path_with_bin() -> String {
    format!(
        "{}:{}",
        Path::new(BIN).parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The repository's `.pre-commit-hooks.yaml`, run by the real `pre-commit` (installed by
/// `make test` into target/venv) with `try-repo`: it refuses a commit of a file holding a
/// secret and passes a clean one.
#[test]
fn the_pre_commit_hook_refuses_a_secret() {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/pre-commit");
    assert!(
        venv.exists(),
        "pre-commit is not installed: run `make test` (tests/scripts/install-deps.sh installs it into target/venv)"
    );
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(args[0])
            .args(&args[1..])
            .current_dir(dir.path())
            .env("PATH", path_with_bin())
            .env("PRE_COMMIT_HOME", dir.path().join(".cache"))
            .output()
            .unwrap()
    };
    init_repo(dir.path());
    fs::write(
        dir.path().join("app.env"),
        "API_TOKEN=Pr3commit-Caught-T0ken\n",
    )
    .unwrap();
    fs::write(dir.path().join("ok.sh"), "#!/bin/sh\necho hi\n").unwrap();
    run(&["git", "add", "."]);
    let repo = env!("CARGO_MANIFEST_DIR");
    let pc = venv.to_str().unwrap();
    let caught = run(&[
        pc,
        "try-repo",
        repo,
        "phx-hook-scan",
        "--files",
        "app.env",
        "ok.sh",
    ]);
    let out = String::from_utf8_lossy(&caught.stdout).to_string();
    assert!(!caught.status.success(), "{out}");
    assert!(
        out.contains("app.env:1:") && out.contains("API_TOKEN"),
        "{out}"
    );
    assert!(!out.contains("Pr3commit-Caught-T0ken"), "{out}");
    let clean = run(&[pc, "try-repo", repo, "phx-hook-scan", "--files", "ok.sh"]);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
}

/// The third corpus, built by someone who never saw the rules and measured blind once
/// (BENCHMARKS.md gives that first result); since then its misses have informed general
/// rules, so it guards against regressions rather than measuring blind.
#[test]
fn precision_and_recall_on_the_held_out_corpus() {
    let v = score("tests/scan-corpus-holdout");
    assert!(v["positives"].as_u64().unwrap() >= 60, "{v}");
    at_least_095(&v);
}

/// A new git repository at `dir` with a committer set.
fn init_repo(dir: &Path) {
    for args in [
        &["init", "-q"][..],
        &["config", "user.email", "t@t"],
        &["config", "user.name", "t"],
    ] {
        sh(Command::new("git").arg("-C").arg(dir).args(args));
    }
}

/// Precision and recall of a verdict both at least 0.95 (issue 16's target).
fn at_least_095(v: &serde_json::Value) {
    let (p, r) = (
        v["precision"].as_f64().unwrap(),
        v["recall"].as_f64().unwrap(),
    );
    assert!(p >= 0.95, "precision {p}: {}", v["false_positives"]);
    assert!(r >= 0.95, "recall {r}: {}", v["missed"]);
}
