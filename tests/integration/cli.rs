//! The commands as an administrator runs them: `check`, `inject --dry-run`, help and
//! exit codes, and the rule that no value ever reaches stdout or stderr.

use std::fs;

use crate::util::*;

#[test]
fn dry_run_shows_the_plan_and_no_value() {
    let n = ready_node();
    let r = n.run(&["inject", "101", "--dry-run"]);
    r.assert_code(0)
        .assert_contains("plan for guest 101 (lxc): 5 files")
        .assert_contains("/etc/samba/phoenix.secret")
        .assert_contains("samba/password")
        .assert_contains("0640")
        .assert_contains("root:1000")
        .assert_contains("17 bytes") // "SMB-SECRET-7f3a9c"
        .assert_contains("22 bytes") // the decoded keytab
        .assert_contains("then run: systemctl try-reload-or-restart smbd");
    for v in SECRET_VALUES {
        r.assert_lacks(v);
    }
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn dry_run_json() {
    let n = ready_node();
    let r = n.run(&["inject", "101", "--dry-run", "--json"]);
    r.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["vmid"], 101);
    assert_eq!(v["guest"], "lxc");
    assert_eq!(v["vault"]["version"], 3);
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 5);
    assert_eq!(files[1]["dest"], "/etc/app/app.env");
    assert_eq!(files[1]["format"], "env");
    assert_eq!(files[1]["mode"], "0640");
    assert_eq!(
        files[1]["keys"],
        serde_json::json!(["app/api_token", "app/db_password"])
    );
    // API_TOKEN=TOKEN-SECRET-c0ffee\nDATABASE_PASS=DB-SECRET-41b2e8\n
    assert_eq!(files[1]["size"], 61);
    for v in SECRET_VALUES {
        r.assert_lacks(v);
    }
}

#[test]
fn check_reports_every_guest_and_fails_on_any_problem() {
    let n = ready_node();
    n.manifest(102, "files:\n  - {dest: /x, key: missing/key}\n");
    n.write("manifests/notes.yaml", b"not a manifest\n");
    let r = n.run(&["check"]);
    r.assert_code(1)
        .assert_contains("ok      101 lxc: 5 files")
        .assert_contains("FAILED  102: 1 problem")
        .assert_contains("`missing/key` does not exist")
        .assert_contains("ignoring")
        .assert_contains("checked 2 guests: 1 ok, 1 with problems");
    n.run(&["check", "101"]).assert_code(0);
    let r = n.run(&["check", "103"]);
    r.assert_code(1)
        .assert_contains("guest 103 has no manifest");
    let r = n.run(&["check", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["guests"][1]["problems"].as_array().unwrap().len(), 1);
    for v in SECRET_VALUES {
        r.assert_lacks(v);
    }
}

#[test]
fn required_false_is_reported_as_a_warning_at_start() {
    let n = ready_node();
    n.manifest(
        102,
        "required: false\nfiles:\n  - {dest: /x, key: missing/key}\n",
    );
    n.run(&["check", "102"])
        .assert_code(1)
        .assert_contains("required: false");
}

#[test]
fn guest_kind_comes_from_the_proxmox_config_when_the_manifest_is_silent() {
    let n = ready_node();
    n.manifest(200, "files:\n  - {dest: /etc/x, key: samba/password}\n");
    n.write("pve/qemu-server/200.conf", b"agent: 1\n");
    n.run(&["inject", "200", "--dry-run"])
        .assert_code(0)
        .assert_contains("plan for guest 200 (qemu)");
}

#[test]
fn usage_errors_exit_2_and_help_has_examples() {
    let n = Node::new();
    n.run(&["inject"]).assert_code(2);
    n.run(&["inject", "abc", "--dry-run"])
        .assert_code(2)
        .assert_contains("not a guest id");
    n.run(&["frobnicate"]).assert_code(2);
    n.run(&["--help"])
        .assert_code(0)
        .assert_contains("Examples:")
        .assert_contains("Exit status");
    n.run(&["inject", "--help"])
        .assert_code(0)
        .assert_contains("phx-hook inject 101 --dry-run");
    n.run(&["check", "--help"])
        .assert_code(0)
        .assert_contains("phx-hook check 101 102 --json");
}

#[test]
fn missing_explicit_config_is_an_error() {
    let out = std::process::Command::new(BIN)
        .args(["--config", "/nonexistent/phx.yaml", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/phx.yaml"));
    // $PHX_HOOK_CONFIG is honoured too.
    let out = std::process::Command::new(BIN)
        .arg("check")
        .env("PHX_HOOK_CONFIG", "/nonexistent/env.yaml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/env.yaml"));
}

#[test]
fn example_manifests_check_against_a_gpg_vault() {
    let k = keys();
    let n = Node::new();
    let repo = env!("CARGO_MANIFEST_DIR");
    for entry in fs::read_dir(format!("{repo}/manifests")).unwrap() {
        let e = entry.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name.ends_with(".yaml") {
            n.write(&format!("manifests/{name}"), &fs::read(e.path()).unwrap());
        }
    }
    for entry in fs::read_dir(format!("{repo}/manifests/templates")).unwrap() {
        let e = entry.unwrap();
        n.write(
            &format!(
                "manifests/templates/{}",
                e.file_name().into_string().unwrap()
            ),
            &fs::read(e.path()).unwrap(),
        );
    }
    n.host_key(&k.secret("ed", false));
    let plain = fs::read(format!("{repo}/manifests/example-vault.json")).unwrap();
    n.vault(&k.encrypt(&plain, &["ed"], false, None, &["--armor"]));
    let r = n.run(&["check"]);
    r.assert_code(0).assert_contains("checked 3 guests: 3 ok");
    n.run(&["inject", "101", "--dry-run"])
        .assert_code(0)
        .assert_contains("/etc/samba/phoenix.secret");
    n.run(&["inject", "201", "--dry-run"])
        .assert_code(0)
        .assert_contains("template")
        .assert_lacks("change-me");
}

/// `make demo` is the README's first command: it must keep working. It runs here with the
/// test build of the binary.
#[test]
fn the_demo_runs_end_to_end() {
    let out = std::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scripts/demo.sh"
    ))
    .arg(BIN)
    .env_remove("PHX_HOOK_CONFIG")
    .stdin(std::process::Stdio::null())
    .output()
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for want in [
        "checked 2 guests: 2 ok",
        "101: registered",
        "delivery handed to a background worker",
        "lxc.hook.mount:",
        "staged in host RAM for the container's mount hook",
        "delivered by the mount hook, before the container's init started",
        "nothing left in host RAM",
        "-> /run/phx-hook/",
        "-rw------- 0:0 13 bytes",
        "/etc/monitoring/agent.conf -> /run/phx-hook/",
        "no secret value anywhere on either guest's disk",
        "hash chain intact",
        "vault key `samba/passwrod` does not exist",
        "failed its integrity check",
    ] {
        assert!(
            text.contains(want),
            "the demo's output lacks {want:?}:\n{text}"
        );
    }
    assert!(!text.contains("demo-samba-pw"));
}

/// The man page and completions come from the parser's own definitions and need no
/// config (packagers generate them at build time).
#[test]
fn man_page_and_completions_are_generated() {
    let run = |what: &str| {
        let out = std::process::Command::new(BIN)
            .args(["--config", "/nonexistent/phx-hook.yaml", "generate", what])
            .output()
            .unwrap();
        assert!(out.status.success(), "{what}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let man = run("man");
    assert!(
        man.starts_with(".ie") && man.contains(".TH phx-hook 1"),
        "{man}"
    );
    for cmd in ["reconcile", "inject", "register", "doctor"] {
        assert!(man.contains(cmd), "the man page lacks {cmd}");
    }
    assert!(
        !man.contains("__worker") && !man.contains("generate"),
        "hidden commands leaked"
    );
    assert!(run("bash").contains("complete -F _phx__hook"));
    assert!(run("zsh").starts_with("#compdef phx-hook"));
    assert!(run("fish").contains("complete -c phx-hook"));
}
