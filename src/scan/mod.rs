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
use zeroize::{Zeroize, Zeroizing};

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
    /// `--history`: the secret's life in the repository (one finding per secret).
    pub history: Option<History>,
}

/// Where one secret (one value) appears in a repository's history.
#[derive(Clone, Debug, serde::Serialize)]
pub struct History {
    /// The commit that first added it.
    pub introduced: String,
    /// Later commits whose changes still held it (the file around it changed, or it was
    /// copied or moved), oldest first.
    pub changed_in: Vec<String>,
    /// Whether the tree at HEAD still holds it.
    pub in_head: bool,
    /// Every path it appeared under.
    pub paths: Vec<String>,
    /// A short id of the value (a keyed hash with a key of this run: it groups, and it
    /// cannot be checked against a guessed value).
    pub secret_id: String,
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
    scan_text_as(path, path, commit, text, out);
}

/// [`scan_text`], with the file's kind judged from `kind_path` (its path inside the
/// tree scanned).
fn scan_text_as(
    path: &str,
    kind_path: &str,
    commit: Option<&str>,
    text: &str,
    out: &mut Vec<Finding>,
) {
    let mut seen: HashMap<(&'static str, String), usize> = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, h) in context::scan_file(kind_path, text) {
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
            history: None,
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
    // What kind of file it is depends on where it sits in the tree scanned, not on the
    // directory the tree is in (a checkout under `.../test/` is not a fixture).
    let rel = path
        .strip_prefix(root)
        .ok()
        .filter(|r| !r.as_str().is_empty())
        .map_or(shown.as_str(), Utf8Path::as_str);
    scan_text_as(&shown, rel, None, text, &mut out);
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
    let mut again: HashMap<String, Vec<(String, String)>> = HashMap::new();
    // One `git diff-tree --stdin` for every commit (its output: a commit's id, then its
    // changes), instead of a process per commit.
    let mut dt = Command::new("git")
        .arg("-C")
        .arg(repo.as_str())
        .args(["diff-tree", "--stdin", "-r", "--root", "--no-renames"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("failed to run git: {e}"))?;
    let mut dt_in = dt.stdin.take().ok_or("git: no stdin")?;
    let list = commits.clone();
    let feeder = std::thread::spawn(move || {
        let _ = dt_in.write_all(list.as_bytes());
    });
    let out = dt
        .wait_with_output()
        .map_err(|e| format!("failed to run git: {e}"))?;
    let _ = feeder.join();
    if !out.status.success() {
        return Err(format!(
            "git diff-tree: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let mut commit = "";
    for line in tree.lines() {
        // A commit id line, or `:old_mode new_mode old_blob new_blob status\tpath`.
        if !line.starts_with(':') {
            commit = line.trim();
            continue;
        }
        let Some((meta, path)) = line.split_once('\t') else {
            continue;
        };
        let f: Vec<&str> = meta.split_whitespace().collect();
        if f.len() < 5 || f[4] == "D" {
            continue;
        }
        if seen.insert(f[3].to_string()) {
            blobs.push((f[3].to_string(), path.to_string(), commit.to_string()));
        } else {
            // The same content again (a rename, a copy, a revert): scanned once,
            // recorded under this path and commit too.
            again
                .entry(f[3].to_string())
                .or_default()
                .push((path.to_string(), commit.to_string()));
        }
    }
    let (mut child, feeder, mut r) =
        cat_file_batch(repo, blobs.iter().map(|b| b.0.clone()).collect())?;
    // Per finding: the blob and the commit's place in history.
    let order: HashMap<&str, usize> = commits.lines().enumerate().map(|(i, c)| (c, i)).collect();
    // git hands the blobs over one by one; they are scanned on every core.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<u8>)>(workers * 4);
    let rx = std::sync::Mutex::new(rx);
    let scan_blob =
        |i: usize, body: &[u8], out: &mut Vec<(Finding, usize, String)>, st: &mut Stats| {
            let (blob, path, commit) = &blobs[i];
            let Some(text) = as_text(body) else {
                st.skipped += 1;
                return;
            };
            st.files += 1;
            st.bytes += body.len() as u64;
            let mut found = Vec::new();
            scan_text(
                path,
                Some(&commit[..12.min(commit.len())]),
                text,
                &mut found,
            );
            let at = order.get(commit.as_str()).copied().unwrap_or(usize::MAX);
            for (p, c) in again.get(blob).map(Vec::as_slice).unwrap_or_default() {
                let at = order.get(c.as_str()).copied().unwrap_or(usize::MAX);
                for f in &found {
                    out.push((
                        Finding {
                            path: p.clone(),
                            commit: Some(c[..12.min(c.len())].to_string()),
                            value: f.value.clone(),
                            name: f.name.clone(),
                            detail: f.detail.clone(),
                            history: None,
                            fingerprint: f.fingerprint.clone(),
                            ..*f
                        },
                        at,
                        blob.clone(),
                    ));
                }
            }
            out.extend(found.into_iter().map(|f| (f, at, blob.clone())));
        };
    let (findings, stats) = std::thread::scope(|scope| -> Result<_, String> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    let mut st = Stats::default();
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((i, mut body)) = job else { break };
                        scan_blob(i, &body, &mut out, &mut st);
                        body.zeroize();
                    }
                    (out, st)
                })
            })
            .collect();
        let mut skipped = 0;
        let read = (|| -> Result<(), String> {
            for i in 0..blobs.len() {
                let body = match next_object(&mut r)? {
                    Object::Bytes(b) => b,
                    Object::Missing | Object::TooLarge => {
                        skipped += 1;
                        continue;
                    }
                };
                if tx.send((i, body)).is_err() {
                    break;
                }
            }
            Ok(())
        })();
        drop(tx);
        let mut findings = Vec::new();
        let mut stats = Stats {
            skipped,
            ..Stats::default()
        };
        for h in handles {
            let (f, st) = h
                .join()
                .map_err(|_| "a scanning thread failed".to_string())?;
            findings.extend(f);
            stats.files += st.files;
            stats.bytes += st.bytes;
            stats.skipped += st.skipped;
        }
        read.map(|()| (findings, stats))
    })?;
    let _ = feeder.join();
    let _ = child.wait();
    let head: BTreeSet<String> = git(&["ls-tree", "-r", "HEAD"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    Ok((group_by_secret(findings, &head), stats))
}

/// One finding per secret: the first place it appeared (the commit that introduced it),
/// with the later commits that still held it, whether HEAD holds it, and its paths.
/// Findings are grouped by a keyed hash of the value, the key random per run.
fn group_by_secret(
    mut found: Vec<(Finding, usize, String)>,
    head: &BTreeSet<String>,
) -> Vec<Finding> {
    use hmac::{Hmac, Mac};
    let key: [u8; 32] = rand::random();
    let id_of = |v: &str| {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
        mac.update(v.as_bytes());
        crate::types::hex(&mac.finalize().into_bytes()[..8])
    };
    found.sort_by(|a, b| (a.1, &a.0.path, a.0.line).cmp(&(b.1, &b.0.path, b.0.line)));
    // Per secret: its first finding, (history position, commit) of each commit that
    // held it, whether HEAD does, and its paths.
    type Group = (Finding, Vec<(usize, String)>, bool, BTreeSet<String>);
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (f, at, blob) in found {
        let id = id_of(&f.value);
        let in_head = head.contains(&blob);
        match index.get(&id) {
            Some(&g) => {
                let (first, commits, h, paths) = &mut groups[g];
                // The secret is as bad as its worst place (a value first seen in a
                // README, capped at low, is still high in a script).
                first.severity = first.severity.max(f.severity);
                if let Some(c) = &f.commit
                    && !commits.iter().any(|(_, x)| x == c)
                {
                    commits.push((at, c.clone()));
                }
                *h |= in_head;
                paths.insert(f.path.clone());
            }
            None => {
                index.insert(id.clone(), groups.len());
                let commits = f.commit.clone().map(|c| vec![(at, c)]).unwrap_or_default();
                let paths = BTreeSet::from([f.path.clone()]);
                let mut f = f;
                f.history = Some(History {
                    introduced: String::new(),
                    changed_in: Vec::new(),
                    in_head: false,
                    paths: Vec::new(),
                    secret_id: id,
                });
                groups.push((f, commits, in_head, paths));
            }
        }
    }
    groups
        .into_iter()
        .map(|(mut f, mut commits, in_head, paths)| {
            commits.sort();
            if let Some(h) = &mut f.history {
                let mut it = commits.into_iter().map(|(_, c)| c);
                h.introduced = it.next().unwrap_or_default();
                h.changed_in = it.collect();
                h.in_head = in_head;
                h.paths = paths.into_iter().collect();
            }
            f
        })
        .collect()
}

/// Scan what is staged for the next commit in the git repository at `repo` (the index,
/// not the working tree: what `git commit` would record), for a pre-commit hook.
pub fn scan_staged(repo: &Utf8Path) -> Result<(Vec<Finding>, Stats), String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo.as_str())
        .args([
            "diff",
            "--cached",
            "--name-only",
            "-z",
            "--diff-filter=ACMR",
        ])
        .output()
        .map_err(|e| format!("failed to run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git diff --cached: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let paths: Vec<String> = out
        .stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty() && !p.contains(&b'\n'))
        .filter_map(|p| std::str::from_utf8(p).ok().map(str::to_string))
        .collect();
    let (mut child, feeder, mut r) =
        cat_file_batch(repo, paths.iter().map(|p| format!(":{p}")).collect())?;
    let mut findings = Vec::new();
    let mut stats = Stats::default();
    for path in &paths {
        let mut body = match next_object(&mut r)? {
            Object::Bytes(b) => b,
            // A submodule, say.
            Object::Missing => continue,
            Object::TooLarge => {
                stats.skipped += 1;
                continue;
            }
        };
        if let Some(text) = as_text(&body) {
            stats.files += 1;
            stats.bytes += body.len() as u64;
            scan_text(path, None, text, &mut findings);
        } else {
            stats.skipped += 1;
        }
        body.zeroize();
    }
    let _ = feeder.join();
    let _ = child.wait();
    Ok((findings, stats))
}

/// `git cat-file --batch` in `repo` with `names` fed to it from a thread of its own (so
/// neither side waits on the other): the process, the feeder, and its output.
type Batch = (
    std::process::Child,
    std::thread::JoinHandle<()>,
    BufReader<std::process::ChildStdout>,
);

fn cat_file_batch(repo: &Utf8Path, names: Vec<String>) -> Result<Batch, String> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repo.as_str())
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("failed to run git: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("git: no stdin")?;
    let feeder = std::thread::spawn(move || {
        for n in names {
            if writeln!(stdin, "{n}").is_err() {
                break;
            }
        }
    });
    let r = BufReader::new(child.stdout.take().ok_or("git: no stdout")?);
    Ok((child, feeder, r))
}

/// One object of `git cat-file --batch`'s output.
enum Object {
    /// `<name> missing`.
    Missing,
    /// Larger than [`MAX_FILE_BYTES`]: read past, never held.
    TooLarge,
    /// Its bytes.
    Bytes(Vec<u8>),
}

fn next_object(r: &mut impl BufRead) -> Result<Object, String> {
    let mut header = String::new();
    r.read_line(&mut header).map_err(|e| e.to_string())?;
    if header.trim_end().ends_with(" missing") {
        return Ok(Object::Missing);
    }
    let size: u64 = header
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "git cat-file: unexpected output `{}`",
                crate::text::name(header.trim_end())
            )
        })?;
    if size > MAX_FILE_BYTES {
        // The object and its trailing newline.
        std::io::copy(&mut r.by_ref().take(size + 1), &mut std::io::sink())
            .map_err(|e| e.to_string())?;
        return Ok(Object::TooLarge);
    }
    let mut body = vec![0u8; size as usize];
    r.read_exact(&mut body).map_err(|e| e.to_string())?;
    let mut nl = [0u8; 1];
    r.read_exact(&mut nl).map_err(|e| e.to_string())?;
    Ok(Object::Bytes(body))
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
