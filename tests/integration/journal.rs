//! The systemd journal (issue 15): with journald running, the delivery worker and
//! `reconcile` log there natively, with structured fields, so `journalctl -t phx-hook
//! VMID=201` shows one guest's deliveries. Against a real systemd-journald, in a mount
//! namespace of its own (tests/scripts/with-journald.sh).

use std::fs;

use crate::sim::*;
use crate::util::*;

#[test]
fn the_worker_and_reconcile_log_to_the_journal_with_fields() {
    let sim = SimNode::new(VAULT_JSON.as_bytes(), "");
    sim.vm(201, "agent: 1\n");
    sim.node.manifest(
        201,
        "guest: qemu\nfiles:\n  - {dest: /run/secrets/smb, key: samba/password}\n",
    );
    sim.phx(&["register", "201"]).assert_code(0);
    let cfg = fs::read_to_string(sim.path("phx-hook.yaml")).unwrap();
    sim.node.write(
        "phx-hook.yaml",
        cfg.replace("journal: false\n", "").as_bytes(),
    );
    let agent = LateAgent::install_after(&sim, 201, 0);
    let secret = agent.path("/run/secrets/smb");
    let out = sim.path("journal.json");
    let script = format!(
        "{SCRIPTS}/qm start 201
         i=0; until [ -e {s} ] && ! {BIN} --config {c} status --json | grep -q '\"sync\": \"never'; do
           i=$((i + 1)); [ $i -le 300 ] || exit 7; sleep 0.1; done
         # The worker's lock free (reconcile skips a guest whose delivery still runs).
         until ( for l in {run}/worker-*; do [ -e \"$l\" ] || continue; flock -n \"$l\" true || exit 1; done ); do
           i=$((i + 1)); [ $i -le 600 ] || exit 8; sleep 0.1; done
         rm -f {s}
         {BIN} --config {c} reconcile --vmid 201",
        s = secret.display(),
        c = sim.path("phx-hook.yaml").display(),
        run = sim.path("run").display(),
    );
    let r = std::process::Command::new(format!("{SCRIPTS}/with-journald.sh"))
        .arg(&out)
        .arg(&script)
        .envs(sim.envs())
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");
    let entries: Vec<serde_json::Value> = fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["SYSLOG_IDENTIFIER"] == "phx-hook")
        .collect();
    let find = |event: &str, phase: &str| {
        entries
            .iter()
            .find(|e| e["EVENT"] == event && e["PHASE"] == phase)
            .unwrap_or_else(|| panic!("no {event} in {phase}: {entries:#?}"))
    };
    let delivered = find("deliver", "post-start");
    assert_eq!(delivered["VMID"], "201");
    assert_eq!(delivered["OUTCOME"], "ok");
    assert!(
        delivered["MESSAGE"]
            .as_str()
            .unwrap()
            .contains("/run/secrets/smb")
    );
    let again = find("redeliver", "reconcile");
    assert_eq!(
        (again["VMID"].as_str(), again["REASON"].as_str()),
        (Some("201"), Some("drift"))
    );
    // Nothing went to the syslog socket instead, and no value anywhere in the journal.
    assert!(!sim.syslog().contains("delivered"), "{}", sim.syslog());
    leaks(&[&fs::read_to_string(&out).unwrap()]);
}
