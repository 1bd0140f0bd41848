//! A guest agent that lies, stalls and floods (issue 12, point 6): a scripted agent on a
//! real unix socket, for what the real qemu-ga never does. Each misbehaviour must end in
//! a clear, bounded failure (time and host memory, enforced with `prlimit --as`), with
//! the agent's text escaped and cut short before it reaches the task log or the audit
//! log, and no forged `ok` line. The agent also records what each connection carried,
//! to prove that phx-hook never holds the socket while a command runs (issue 11, point 5).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::util::*;

/// How the scripted agent misbehaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Script {
    /// Behaves: every file is reported written.
    Honest,
    /// Stale replies and garbage before the sync reply and before each command reply.
    StaleAndGarbage,
    /// Never answers guest-exec.
    Silent,
    /// Reports a digest that does not match.
    WrongDigest,
    /// Answers guest-exec-status with an endless line (`[1,1,1,...`).
    Flood,
    /// Answers with JSON nested a million levels deep.
    Deep,
    /// Reports the file failed, with a message made to forge lines and colours.
    Forger,
    /// Refuses guest-exec three times as a frozen guest does, then behaves.
    Frozen,
}

/// What the agent saw: per connection, the commands it carried.
#[derive(Default)]
pub struct Seen {
    pub connections: Vec<Vec<String>>,
    header: String,
    frozen: u32,
}

/// A scripted agent on a real unix socket, serving until the test ends.
pub fn scripted_agent(path: &std::path::Path, script: Script) -> Arc<Mutex<Seen>> {
    let listener = UnixListener::bind(path).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let state = state.clone();
            std::thread::spawn(move || serve(conn, script, &state));
        }
    });
    seen
}

fn serve(conn: std::os::unix::net::UnixStream, script: Script, state: &Mutex<Seen>) {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    let me = {
        let mut s = state.lock().unwrap();
        s.connections.push(Vec::new());
        s.connections.len() - 1
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            return;
        }
        let text = String::from_utf8_lossy(&line)
            .trim_start_matches('\u{FFFD}')
            .to_string();
        let start = text.find('{').unwrap_or(0);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text[start..]) else {
            continue;
        };
        let cmd = v["execute"].as_str().unwrap_or("").to_string();
        state.lock().unwrap().connections[me].push(cmd.clone());
        let garbage = script == Script::StaleAndGarbage;
        let reply: Vec<u8> = match cmd.as_str() {
            "guest-sync-delimited" => {
                let id = v["arguments"]["id"].as_u64().unwrap();
                let mut out = Vec::new();
                if garbage {
                    out.extend_from_slice(
                        b"\xff{\"return\": 4242}\n{\"return\": {}}\nnot json at all\n",
                    );
                }
                out.push(0xFF);
                out.extend_from_slice(format!("{{\"return\": {id}}}\n").as_bytes());
                out
            }
            "guest-exec" if script == Script::Silent => continue,
            "guest-exec" if script == Script::Frozen && state.lock().unwrap().frozen < 3 => {
                state.lock().unwrap().frozen += 1;
                b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Command guest-exec has been disabled: the agent is in frozen state\"}}\n".to_vec()
            }
            "guest-exec" => {
                // Remember the digest the client sent for its one file: the batch
                // program's ninth stdin line (count, then eight header lines).
                let input = v["arguments"]["input-data"].as_str().unwrap_or("");
                let bytes = B64.decode(input).unwrap_or_default();
                state.lock().unwrap().header =
                    String::from_utf8_lossy(bytes.split(|&b| b == b'\n').nth(8).unwrap_or(b""))
                        .to_string();
                let mut out = Vec::new();
                if garbage {
                    out.extend_from_slice(b"}}garbage{{\n");
                }
                out.extend_from_slice(b"{\"return\": {\"pid\": 77}}\n");
                out
            }
            "guest-exec-status" if script == Script::Flood => {
                let _ = w.write_all(b"{\"return\": [");
                let chunk = b"1,".repeat(32 * 1024);
                // Until the client hangs up (at most 1 GiB).
                for _ in 0..16 * 1024 {
                    if w.write_all(&chunk).is_err() {
                        return;
                    }
                }
                return;
            }
            "guest-exec-status" if script == Script::Deep => {
                let mut out = b"{\"return\": ".to_vec();
                out.extend(std::iter::repeat_n(b'[', 1_000_000));
                out.push(b'\n');
                out
            }
            "guest-exec-status" => {
                let sum = state.lock().unwrap().header.clone();
                let report = match script {
                    Script::WrongDigest => format!("ok 1 sha256 {}\n", "0".repeat(64)),
                    Script::Forger => format!(
                        "err 1 no room\nok 1 sha256 {sum}\n\x1b[2K\x1b[1Aphx-hook: 201: /etc/a (17 bytes): ok, verified by sha256 {}\n",
                        "x".repeat(100_000)
                    ),
                    _ => format!("ok 1 sha256 {sum}\n"),
                };
                let out = B64.encode(report.as_bytes());
                format!("{{\"return\": {{\"exited\": true, \"exitcode\": 0, \"out-data\": \"{out}\"}}}}\n").into_bytes()
            }
            _ => b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"nope\"}}\n".to_vec(),
        };
        if w.write_all(&reply).is_err() {
            return;
        }
    }
}

const MANIFEST: &str = "guest: qemu\nfiles:\n  - {dest: /etc/a, key: samba/password}\n";

fn node(script: Script) -> (tempfile::TempDir, Node, Arc<Mutex<Seen>>) {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("agent.sock");
    let seen = scripted_agent(&sock, script);
    let n = crate::qga::vm_node(&sock, MANIFEST, VAULT_JSON.as_bytes());
    (tmp, n, seen)
}

#[test]
fn a_misbehaving_agent_fails_clearly_within_bounds() {
    // Stale replies and garbage: the client resynchronises and the delivery succeeds.
    let (_t, n, _) = node(Script::StaleAndGarbage);
    n.run(&["inject", "201"])
        .assert_code(0)
        .assert_contains("1 of 1 file delivered");
    for (script, want) in [
        (Script::WrongDigest, "verification failed"),
        (Script::Silent, "did not answer guest-exec within 3.0s"),
        (Script::Flood, "a reply line is longer than 4194304 bytes"),
        (Script::Deep, "did not answer guest-exec-status within 3.0s"),
    ] {
        let (_t, n, _) = node(script);
        let start = Instant::now();
        // 160 MiB of address space: a client that kept the flood, or parsed it into a
        // generic JSON tree, would not fit.
        let r = n.run_limited(160, &["inject", "201"]);
        r.assert_code(1)
            .assert_contains(want)
            .assert_contains("0 of 1 file delivered");
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{script:?}: {:?}",
            start.elapsed()
        );
        for v in SECRET_VALUES {
            r.assert_lacks(v);
        }
    }
}

/// A guest's text reaches the task log and the audit log escaped and cut short: it can
/// neither forge an `ok` line nor move the cursor, nor flood either log.
#[test]
fn a_forging_agent_cannot_forge_output_or_flood_logs() {
    let (_t, n, _) = node(Script::Forger);
    let r = n.run(&["inject", "201"]);
    r.assert_code(1).assert_contains("0 of 1 file delivered");
    assert!(
        !r.all().contains('\u{1b}'),
        "an escape sequence reached the output: {r:?}"
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{r:?}");
    assert!(lines[0].contains("FAILED: no room"), "{r:?}");
    assert!(!lines.iter().any(|l| l.contains(": ok, verified")), "{r:?}");
    assert!(
        r.stderr.len() < 2000,
        "{} bytes in the task log",
        r.stderr.len()
    );
    let audit = std::fs::read_to_string(n.path("audit.jsonl")).unwrap();
    assert!(
        !audit.contains('\u{1b}') && !audit.contains("\\u001b"),
        "{audit}"
    );
    assert!(audit.len() < 4000, "{} bytes of audit", audit.len());
}

/// A frozen guest (a backup's fs-freeze) refuses guest-exec for a while: phx-hook waits
/// and delivers, instead of telling the admin to change the agent's configuration. And
/// no connection carries more than one command besides its sync: the socket is free for
/// Proxmox between phx-hook's requests.
#[test]
fn a_frozen_guest_is_waited_for_and_the_socket_is_never_held() {
    let (_t, n, seen) = node(Script::Frozen);
    let r = n.run(&["inject", "201"]);
    r.assert_code(0)
        .assert_contains("1 of 1 file delivered")
        .assert_lacks("forbids");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.frozen, 3);
    for c in &seen.connections {
        let cmds: Vec<&String> = c.iter().filter(|c| *c != "guest-sync-delimited").collect();
        assert!(cmds.len() <= 1, "a connection carried {c:?}");
    }
    let (_t, n, seen) = node(Script::Honest);
    n.run(&["inject", "201"]).assert_code(0);
    let status = seen
        .lock()
        .unwrap()
        .connections
        .iter()
        .filter(|c| c.iter().any(|c| c == "guest-exec-status"))
        .count();
    assert!(status >= 1);
}
