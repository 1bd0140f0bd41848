//! `phx-hook scan`: find hardcoded secrets in a tree of scripts and configs (respecting
//! `.gitignore`, skipping binaries and large files) or in every blob of a git history,
//! and help move them into the vault (`migrate`). Findings carry the value's place, never
//! the value: output shows only its first two characters and its length.

pub mod context;
pub mod migrate;
pub mod report;
pub mod rules;
pub mod tools;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use rules::Severity;

/// Files larger than this are skipped (generated data, not configuration).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A line comment that suppresses findings on its line.
pub const ALLOW_MARKER: &str = "phx-hook: allow";

/// One finding.
pub struct Finding {
    /// The file (relative to the scanned root when possible).
    pub path: String,
    /// The commit that introduced the blob (`--history`).
    pub commit: Option<String>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters) of the value.
    pub column: usize,
    /// Byte range of the value in its line.
    pub span: (usize, usize),
    /// Rule id.
    pub rule: &'static str,
    /// Severity.
    pub severity: Severity,
    /// The assigned name, if any.
    pub name: Option<String>,
    /// How it was found (`smbclient -U`) or why its severity is lowered.
    pub detail: Option<String>,
    /// The value (kept for migration; never printed).
    pub value: Zeroizing<String>,
    /// A stable id that does not contain or depend on the value.
    pub fingerprint: String,
}

impl Finding {
    /// The value, redacted to its first two characters and its length.
    pub fn redacted(&self) -> String {
        let n = self.value.chars().count();
        let head: String = self.value.chars().take(2).collect();
        format!("{head}{} ({n} chars)", "*".repeat(6))
    }
}

/// Scan text (one file's content). `path` names it in findings (and says what kind of
/// file it is: see [`context`]).
pub fn scan_text(path: &str, commit: Option<&str>, text: &str, out: &mut Vec<Finding>) {
    let mut seen: HashMap<(&'static str, String), usize> = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, h) in context::scan_file(path, text) {
        let line = lines[i];
        if line.contains(ALLOW_MARKER) {
            continue;
        }
        let name = h.name.clone().unwrap_or_default();
        let n = seen.entry((h.rule, name.clone())).or_insert(0);
        *n += 1;
        let fingerprint = fingerprint(h.rule, path, &name, *n);
        out.push(Finding {
            path: path.to_string(),
            commit: commit.map(str::to_string),
            line: i + 1,
            column: line[..h.start].chars().count() + 1,
            span: (h.start, h.end),
            rule: h.rule,
            severity: h.severity,
            name: h.name,
            detail: h.detail,
            value: Zeroizing::new(line[h.start..h.end].to_string()),
            fingerprint,
        });
    }
}

/// A value-free id: rule, file, name, and which occurrence of that name in the file.
fn fingerprint(rule: &str, path: &str, name: &str, occurrence: usize) -> String {
    let mut h = Sha256::new();
    for part in [rule, path, name, &occurrence.to_string()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether bytes look binary (a NUL in the first 8 KiB) or are not UTF-8.
fn as_text(bytes: &[u8]) -> Option<&str> {
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// What a tree scan read.
#[derive(Default, Debug, Clone, Copy)]
pub struct Stats {
    /// Files scanned.
    pub files: u64,
    /// Bytes scanned.
    pub bytes: u64,
    /// Files skipped (binary, too large, unreadable).
    pub skipped: u64,
}

/// Scan files and directories (directories recursively, honouring `.gitignore`,
/// `.ignore` and hidden-file rules unless `no_ignore`).
pub fn scan_paths(paths: &[Utf8PathBuf], no_ignore: bool) -> (Vec<Finding>, Stats) {
    let findings = std::sync::Mutex::new(Vec::new());
    let stats = std::sync::Mutex::new(Stats::default());
    for root in paths {
        let mut wb = ignore::WalkBuilder::new(root);
        wb.hidden(false)
            .git_ignore(!no_ignore)
            .git_exclude(!no_ignore)
            .ignore(!no_ignore)
            .require_git(false);
        wb.filter_entry(|e| e.file_name() != ".git");
        // Files are scanned on every core (the walker's threads); the result is sorted
        // afterwards, so the output does not depend on scheduling.
        wb.build_parallel().run(|| {
            let (findings, stats) = (&findings, &stats);
            Box::new(move |entry| {
                if let Ok(entry) = entry {
                    let (found, st) = scan_entry(root, &entry);
                    if !found.is_empty() {
                        findings
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend(found);
                    }
                    let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
                    s.files += st.files;
                    s.bytes += st.bytes;
                    s.skipped += st.skipped;
                }
                ignore::WalkState::Continue
            })
        });
    }
    let mut findings = findings.into_inner().unwrap_or_else(|e| e.into_inner());
    findings.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
    (
        findings,
        stats.into_inner().unwrap_or_else(|e| e.into_inner()),
    )
}

/// Scan one walked entry (a regular file; anything else is ignored).
fn scan_entry(root: &Utf8Path, entry: &ignore::DirEntry) -> (Vec<Finding>, Stats) {
    let mut out = Vec::new();
    let mut st = Stats::default();
    if !entry.file_type().is_some_and(|t| t.is_file()) {
        return (out, st);
    }
    let p = entry.path();
    let Some(path) = Utf8Path::from_path(p) else {
        return (out, st);
    };
    let len = match entry.metadata() {
        Ok(m) if m.len() <= MAX_FILE_BYTES => m.len(),
        _ => {
            st.skipped += 1;
            return (out, st);
        }
    };
    let mut bytes = Vec::with_capacity(len as usize);
    if fs::File::open(p)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .is_err()
    {
        st.skipped += 1;
        return (out, st);
    }
    let Some(text) = as_text(&bytes) else {
        st.skipped += 1;
        return (out, st);
    };
    st.files += 1;
    st.bytes += bytes.len() as u64;
    // Paths as the user named them: `dir/file`, or `file` when scanning `.`.
    let shown = match path.strip_prefix(root) {
        Ok(r) if !r.as_str().is_empty() && root.as_str() == "." => r.to_string(),
        Ok(r) if !r.as_str().is_empty() => root.join(r).to_string(),
        _ => path.to_string(),
    };
    scan_text(&shown, None, text, &mut out);
    (out, st)
}

/// Scan every blob ever committed in the git repository at `repo`, each reported with
/// the first commit that introduced it (a secret deleted later is still leaked).
pub fn scan_history(repo: &Utf8Path) -> Result<(Vec<Finding>, Stats), String> {
    let git = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo.as_str())
            .args(args)
            .output()
            .map_err(|e| format!("failed to run git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // Oldest first, so each blob is attributed to the commit that added it.
    let commits = git(&["rev-list", "--all", "--reverse"])?;
    let mut blobs: Vec<(String, String, String)> = Vec::new(); // (blob, path, commit)
    let mut seen = BTreeSet::new();
    for commit in commits.lines() {
        let tree = git(&[
            "diff-tree",
            "-r",
            "--root",
            "--no-commit-id",
            "--no-renames",
            commit,
        ])?;
        for line in tree.lines() {
            // :old_mode new_mode old_blob new_blob status\tpath
            let Some((meta, path)) = line.split_once('\t') else {
                continue;
            };
            let f: Vec<&str> = meta.split_whitespace().collect();
            if f.len() < 5 || f[4] == "D" {
                continue;
            }
            if seen.insert(f[3].to_string()) {
                blobs.push((f[3].to_string(), path.to_string(), commit.to_string()));
            }
        }
    }
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repo.as_str())
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("failed to run git: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("git: no stdin")?;
    let ids: Vec<String> = blobs.iter().map(|b| b.0.clone()).collect();
    let feeder = std::thread::spawn(move || {
        for id in ids {
            if writeln!(stdin, "{id}").is_err() {
                break;
            }
        }
    });
    let mut r = BufReader::new(child.stdout.take().ok_or("git: no stdout")?);
    let mut findings = Vec::new();
    let mut stats = Stats::default();
    for (_, path, commit) in &blobs {
        let mut header = String::new();
        r.read_line(&mut header).map_err(|e| e.to_string())?;
        let size: u64 = header
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; size as usize];
        r.read_exact(&mut body).map_err(|e| e.to_string())?;
        let mut nl = [0u8; 1];
        r.read_exact(&mut nl).map_err(|e| e.to_string())?;
        if size > MAX_FILE_BYTES {
            stats.skipped += 1;
            continue;
        }
        match as_text(&body) {
            Some(text) => {
                stats.files += 1;
                stats.bytes += size;
                scan_text(
                    path,
                    Some(&commit[..12.min(commit.len())]),
                    text,
                    &mut findings,
                );
            }
            None => stats.skipped += 1,
        }
    }
    let _ = feeder.join();
    let _ = child.wait();
    Ok((findings, stats))
}

/// Fingerprints in a baseline file (JSON: `{"fingerprints": [...]}`).
pub fn read_baseline(path: &Utf8Path) -> Result<BTreeSet<String>, String> {
    let text = fs::read_to_string(path)
        .map_err(|e| format!("failed to read the baseline `{path}`: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("`{path}` is not a baseline: {e}"))?;
    Ok(v.get("fingerprints")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// Write a baseline of `findings` (fingerprints, rules and places; no values).
pub fn write_baseline(path: &Utf8Path, findings: &[Finding]) -> Result<(), String> {
    let fps: BTreeSet<&str> = findings.iter().map(|f| f.fingerprint.as_str()).collect();
    let v = serde_json::json!({
        "tool": "phx-hook scan",
        "fingerprints": fps,
        "findings": findings.iter().map(|f| serde_json::json!({"fingerprint": f.fingerprint, "rule": f.rule, "path": f.path, "name": f.name})).collect::<Vec<_>>(),
    });
    fs::write(
        path,
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n",
    )
    .map_err(|e| format!("failed to write `{path}`: {e}"))
}
