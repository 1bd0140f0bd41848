//! Scan output: text (`file:line:col rule severity value-redacted`), JSON, and SARIF 2.1.0
//! for code-scanning UIs. No format holds a value: only its first two characters and
//! its length.

use serde_json::{Value, json};

use super::Finding;
use super::rules::{RULES, Severity};

/// Text, one line per finding.
pub fn text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        // Names, details and paths come from the files scanned: escaped for a terminal.
        let path = crate::text::shown(f.path.as_bytes(), 1000);
        let at = match (&f.commit, &f.history) {
            (_, Some(h)) => format!(
                "{}:{}:{} (introduced in commit {})",
                path, f.line, f.column, h.introduced
            ),
            (Some(c), None) => format!("{}:{}:{} (commit {c})", path, f.line, f.column),
            (None, None) => format!("{}:{}:{}", path, f.line, f.column),
        };
        let name = f
            .name
            .as_deref()
            .map_or(String::new(), |n| format!(" {} =", crate::text::name(n)));
        let detail = f.detail.as_deref().map_or(String::new(), |d| {
            format!(" ({})", crate::text::shown(d.as_bytes(), 200))
        });
        out.push_str(&format!(
            "{at}: {} [{}]{name} {}{detail}\n",
            f.rule,
            f.severity.as_str(),
            f.redacted()
        ));
        if let Some(h) = &f.history {
            out.push_str(&format!(
                "    secret {}: {}; {}; paths: {}\n",
                h.secret_id,
                if h.in_head {
                    "still in HEAD"
                } else {
                    "not in HEAD any more (still in history)"
                },
                match h.changed_in.len() {
                    0 => "in no later commit".to_string(),
                    n => format!("in {n} later commit(s): {}", h.changed_in.join(", ")),
                },
                h.paths
                    .iter()
                    .map(|p| crate::text::shown(p.as_bytes(), 1000))
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
    }
    out
}

/// JSON: an array of findings.
pub fn json(findings: &[Finding]) -> Value {
    Value::Array(
        findings
            .iter()
            .map(|f| {
                json!({
                    "path": f.path,
                    "commit": f.commit,
                    "line": f.line,
                    "column": f.column,
                    "rule": f.rule,
                    "severity": f.severity,
                    "name": f.name,
                    "detail": f.detail,
                    "history": f.history,
                    "value": f.redacted(),
                    "fingerprint": f.fingerprint,
                })
            })
            .collect(),
    )
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Info => "note",
        Severity::Low => "warning",
        Severity::Medium | Severity::High | Severity::Critical => "error",
    }
}

/// SARIF 2.1.0.
pub fn sarif(findings: &[Finding]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, desc)| json!({"id": id, "name": id, "shortDescription": {"text": desc}, "helpUri": "https://github.com/phoenix-hypervisor/phx-hook#scan"}))
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let idx = RULES.iter().position(|(id, _)| *id == f.rule).unwrap_or(0);
            let mut msg = format!(
                "{}: a hardcoded secret ({}, severity {})",
                f.rule,
                f.redacted(),
                f.severity.as_str()
            );
            if let Some(n) = &f.name {
                msg.push_str(&format!(" assigned to `{n}`"));
            }
            if let Some(d) = &f.detail {
                msg.push_str(&format!(" ({d})"));
            }
            match &f.history {
                Some(h) => msg.push_str(&format!(
                    " introduced in commit {}, in {} later commit(s), {}",
                    h.introduced,
                    h.changed_in.len(),
                    if h.in_head {
                        "still in HEAD"
                    } else {
                        "removed from HEAD"
                    }
                )),
                None => {
                    if let Some(c) = &f.commit {
                        msg.push_str(&format!(" in commit {c}"));
                    }
                }
            }
            json!({
                "ruleId": f.rule,
                "ruleIndex": idx,
                "level": level(f.severity),
                "message": {"text": msg},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": f.path.trim_start_matches("./")},
                    "region": {"startLine": f.line, "startColumn": f.column},
                }}],
                "partialFingerprints": {"phxHookFinding/v1": f.fingerprint},
                "properties": {"severity": f.severity.as_str()},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "phx-hook",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/phoenix-hypervisor/phx-hook",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}
