//! The QEMU guest-agent transport: files reach a VM through the agent socket Proxmox
//! itself uses (`<qga_socket_dir>/<vmid>.qga`). Each file is one short connection: sync,
//! `guest-exec` of a fixed POSIX `sh` script with the content on stdin (never argv, which
//! the agent logs; never `guest-file-open`, which creates files 0666), and a bounded
//! poll of `guest-exec-status`. The script works with busybox: no `install`, no
//! `/dev/stdin`, and without `sha256sum` it verifies the size instead and says so.

mod proto;
mod socket;

use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{CommandOutcome, DeliverError, Transport, Verified};
use crate::plan::Delivery;
use crate::types::Vmid;
use socket::{Conn, QgaError};

/// The largest piece of content sent in one `guest-exec` (one agent message is bounded,
/// and a VM's virtio-serial is slow; PROXMOX.md §4 and TESTLAB A2).
pub const CHUNK: usize = 1024 * 1024;

/// The write script. Arguments: dest, mode, owner, group, temporary name, op (`whole`,
/// `first`, `append`, `last`). For `whole` and `last` the first stdin line is
/// `<sha256-hex> <size>`; the rest of stdin is content. It creates missing parents (0755),
/// creates the temporary file exclusively under umask 077, sets owner and mode before any
/// content is written, appends the content, verifies it against the header, and renames
/// it over the destination. Any failure removes the temporary file.
const SCRIPT: &str = r#"set -u
dest=$1 mode=$2 owner=$3 group=$4 tmp=$5 op=$6
die() { rm -f "$tmp" 2>/dev/null; echo "$1" >&2; exit "${2:-1}"; }
dir=${dest%/*}
[ -n "$dir" ] || dir=/
case $op in whole|first)
  if [ ! -d "$dir" ]; then
    if [ -e "$dir" ] || [ -L "$dir" ]; then echo "$dir exists and is not a directory" >&2; exit 1; fi
    (umask 022 && mkdir -p "$dir") 2>/dev/null
    [ -d "$dir" ] || { echo "cannot create directory $dir" >&2; exit 1; }
  fi
  if [ -d "$dest" ] && [ ! -L "$dest" ]; then echo "$dest is a directory" >&2; exit 1; fi
  umask 077
  (set -C && : > "$tmp") 2>/dev/null || { echo "cannot create a file in $dir" >&2; exit 1; }
  chown "$owner:$group" "$tmp" 2>/dev/null || die "cannot set owner $owner:$group (do the user and group exist in the guest?)"
  chmod "$mode" "$tmp" 2>/dev/null || die "cannot set mode $mode"
  ;;
*) [ -f "$tmp" ] && [ ! -L "$tmp" ] || die "the temporary file $tmp is gone" ;;
esac
case $op in whole|last)
  read -r want_sum want_size || die "no verification header on stdin" ;;
esac
cat >> "$tmp" || die "cannot write $tmp"
case $op in whole|last)
  size=$(wc -c < "$tmp") || die "cannot read back $tmp"
  size=$((size + 0))
  [ "$size" = "$want_size" ] || die "verification failed: $size bytes in the guest instead of $want_size" 3
  how=size sum=-
  if command -v sha256sum >/dev/null 2>&1; then
    sum=$(sha256sum < "$tmp") || die "cannot read back $tmp"
    sum=${sum%% *} how=sha256
    [ "$sum" = "$want_sum" ] || die "verification failed: the content in the guest differs (sha256)" 3
  fi
  mv -f "$tmp" "$dest" 2>/dev/null || die "cannot rename the temporary file to $dest"
  echo "phx-ok $how $size $sum"
  ;;
esac
"#;

/// Files up to this size go into one `guest-exec` together (at most [`CHUNK`] bytes per
/// batch): one connection and a handful of agent requests for all of them, instead of a
/// round of requests per file.
pub const BATCH_FILE_MAX: usize = 64 * 1024;

/// The batch script: many files in one `guest-exec`. Arguments: six per file (dest,
/// mode, owner, group, temporary name, size). Stdin: one line with the files' SHA-256
/// digests in order, then their contents back to back, each read with
/// `dd bs=1 count=SIZE` (exact on a pipe, in every `dd`). Each file gets its parents
/// (0755), an exclusive temporary file under umask 077 whose owner and mode are set
/// before any byte (chown/chmod skipped when they are already root:root and 0600), and
/// its content; then all are verified with one `sha256sum` (or by size without it) and
/// renamed. Prints `ok N sha256 DIGEST`, `ok N size BYTES` or `err N why` per file (phx-hook
/// checks the reported digest or size against what it sent, too); a failed file leaves
/// nothing behind.
const BATCH_SCRIPT: &str = r#"set -u
IFS= read -r sums || { echo "fatal no verification header on stdin"; exit 0; }
one() {
  dest=$1 mode=$2 owner=$3 group=$4 tmp=$5 size=$6
  dir=${dest%/*}
  [ -n "$dir" ] || dir=/
  if [ ! -d "$dir" ]; then
    if [ -e "$dir" ] || [ -L "$dir" ]; then why="$dir exists and is not a directory"; return 1; fi
    (umask 022 && mkdir -p "$dir") 2>/dev/null
    [ -d "$dir" ] || { why="cannot create directory $dir"; return 1; }
  fi
  if [ -d "$dest" ] && [ ! -L "$dest" ]; then why="$dest is a directory"; return 1; fi
  (umask 077 && set -C && : > "$tmp") 2>/dev/null || { why="cannot create a file in $dir"; return 1; }
  case "$owner:$group" in
    root:root|0:0|root:0|0:root) ;;
    *) chown "$owner:$group" "$tmp" 2>/dev/null || { rm -f "$tmp"; why="cannot set owner $owner:$group (do the user and group exist in the guest?)"; return 1; } ;;
  esac
  [ "$mode" = 0600 ] || chmod "$mode" "$tmp" 2>/dev/null || { rm -f "$tmp"; why="cannot set mode $mode"; return 1; }
  dd bs=1 count="$size" 2>/dev/null >> "$tmp" || { rm -f "$tmp"; why="cannot write $tmp"; return 2; }
  return 0
}
i=0 oks=""
while [ $# -ge 6 ]; do
  i=$((i + 1)) why=""
  if one "$1" "$2" "$3" "$4" "$5" "$6"; then
    oks="$oks $i"
    eval "tmp_$i=\$5 dest_$i=\$1 size_$i=\$6"
  else
    [ $? = 2 ] || dd bs=1 count="$6" of=/dev/null 2>/dev/null
    echo "err $i $why"
  fi
  shift 6
done
[ -n "$oks" ] || exit 0
have=0
command -v sha256sum >/dev/null 2>&1 && have=1
if [ $have = 1 ]; then
  set --
  for i in $oks; do eval "set -- \"\$@\" \"\$tmp_$i\""; done
  got=$(sha256sum -- "$@" 2>/dev/null) || got=""
fi
set -- $sums
k=0
for i in $oks; do
  while [ $k -lt $((i - 1)) ]; do shift; k=$((k + 1)); done
  want=$1
  eval "t=\$tmp_$i d=\$dest_$i s=\$size_$i"
  how=size
  if [ $have = 0 ]; then
    n=$(wc -c < "$t" 2>/dev/null) || n=-1
    n=$((n + 0))
    if [ "$n" != "$s" ]; then rm -f "$t"; echo "err $i verification failed: $n bytes in the guest instead of $s"; continue; fi
  else
    sum=$(printf '%s
' "$got" | while read -r h p; do [ "$p" = "$t" ] && { echo "$h"; break; }; done)
    if [ "$sum" != "$want" ]; then rm -f "$t"; echo "err $i verification failed: the content in the guest differs (sha256)"; continue; fi
    how=sha256
  fi
  if [ $how = sha256 ]; then proof=$sum; else proof=$n; fi
  if mv -f "$t" "$d" 2>/dev/null; then echo "ok $i $how $proof"; else rm -f "$t"; echo "err $i cannot rename the temporary file to $d"; fi
done
"#;

/// The guest-agent transport for one VM.
pub struct QgaTransport {
    vmid: Vmid,
    socket: PathBuf,
    timeout: Duration,
    /// Requests sent so far (syncs included), for benchmarks and tests.
    pub round_trips: u32,
}

impl QgaTransport {
    /// A transport for `vmid` whose agent socket is `socket`; `timeout` bounds each command.
    pub fn new(vmid: Vmid, socket: PathBuf, timeout: Duration) -> QgaTransport {
        QgaTransport {
            vmid,
            socket,
            timeout,
            round_trips: 0,
        }
    }

    /// Poll `guest-ping` with backoff until the agent answers or `bound` passes.
    /// Returns how long it took.
    pub fn wait(&mut self, bound: Duration) -> Result<Duration, DeliverError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let left = bound.saturating_sub(start.elapsed());
            let attempt = self
                .connect_within(left.min(self.timeout).max(Duration::from_millis(100)))
                .and_then(|mut c| {
                    let r = c.call("guest-ping", &proto::ping(), c.timeout());
                    self.round_trips += c.round_trips;
                    r.map(|_| ())
                });
            match attempt {
                Ok(()) => return Ok(start.elapsed()),
                Err(e) if start.elapsed() + pause >= bound => {
                    return Err(DeliverError::Unreachable(format!(
                        "the guest agent of VM {} did not answer within {:.0}s ({})",
                        self.vmid,
                        bound.as_secs_f64(),
                        self.describe(&e)
                    )));
                }
                Err(_) => {
                    sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    fn connect_within(&self, timeout: Duration) -> Result<Conn, QgaError> {
        Conn::open(&self.socket, timeout)
    }

    fn connect(&mut self) -> Result<Conn, DeliverError> {
        Conn::open(&self.socket, self.timeout).map_err(|e| self.classify(e))
    }

    fn describe(&self, e: &QgaError) -> String {
        match e {
            QgaError::NoSocket(_) | QgaError::Refused(_) => {
                format!(
                    "agent not running or not enabled for VM {} ({e})",
                    self.vmid
                )
            }
            _ => e.to_string(),
        }
    }

    fn classify(&self, e: QgaError) -> DeliverError {
        if e.is_command_forbidden() {
            return DeliverError::Unreachable(format!(
                "the guest agent of VM {} forbids guest-exec ({}); enable it in the guest's qemu-ga configuration",
                self.vmid,
                match &e {
                    QgaError::Agent { desc, .. } => desc.as_str(),
                    _ => "",
                }
            ));
        }
        if e.is_unreachable() {
            return DeliverError::Unreachable(self.describe(&e));
        }
        DeliverError::File(e.to_string())
    }

    /// Run one `guest-exec` and wait (bounded) for it to exit.
    fn exec_wait(
        &mut self,
        c: &mut Conn,
        path: &str,
        args: &[&str],
        input: Option<&[u8]>,
        bound: Duration,
    ) -> Result<proto::Exited, DeliverError> {
        let req = proto::exec(path, args, input);
        let started = c
            .call("guest-exec", &req, bound)
            .map_err(|e| self.classify(e))?;
        drop(req);
        let pid = proto::pid_of(&started).ok_or_else(|| {
            DeliverError::File(format!(
                "the guest agent's guest-exec reply has no pid: {started}"
            ))
        })?;
        let deadline = Instant::now() + bound;
        let mut pause = Duration::from_millis(1);
        loop {
            let status = c
                .call("guest-exec-status", &proto::exec_status(pid), self.timeout)
                .map_err(|e| self.classify(e))?;
            if let Some(done) = proto::exited(&status) {
                return Ok(done);
            }
            if Instant::now() + pause > deadline {
                return Err(DeliverError::File(format!(
                    "the command in VM {} did not finish within {:.0}s",
                    self.vmid,
                    bound.as_secs_f64()
                )));
            }
            sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    fn deliver_on(
        &mut self,
        c: &mut Conn,
        d: &Delivery,
        tmp: &str,
    ) -> Result<Verified, DeliverError> {
        let content = d.content.expose();
        let mode = format!("{:04o}", d.mode);
        let (owner, group) = (d.owner.to_string(), d.group.to_string());
        let want = crate::types::hex(&Sha256::digest(content));
        let chunks: Vec<&[u8]> = if content.is_empty() {
            vec![&[][..]]
        } else {
            content.chunks(CHUNK).collect()
        };
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.iter().enumerate() {
            let op = match (i, last) {
                (0, 0) => "whole",
                (0, _) => "first",
                (i, l) if i == l => "last",
                _ => "append",
            };
            let mut input = Zeroizing::new(Vec::with_capacity(chunk.len() + 96));
            if op == "whole" || op == "last" {
                input.extend_from_slice(format!("{want} {}\n", content.len()).as_bytes());
            }
            input.extend_from_slice(chunk);
            let args = [
                "-c",
                SCRIPT,
                "phx-hook",
                d.dest.as_str(),
                &mode,
                &owner,
                &group,
                tmp,
                op,
            ];
            let bound =
                self.timeout + Duration::from_secs(2 * (chunk.len() as u64).div_ceil(CHUNK as u64));
            let done = self
                .exec_wait(c, "/bin/sh", &args, Some(&input), bound)
                .map_err(|e| match e {
                    DeliverError::File(m) if m.contains("Failed to execute child process") => {
                        DeliverError::File("the guest has no /bin/sh".into())
                    }
                    other => other,
                })?;
            let ok = done.exitcode == Some(0) && done.signal.is_none();
            if !ok {
                let msg = String::from_utf8_lossy(&done.err)
                    .trim()
                    .chars()
                    .take(300)
                    .collect::<String>();
                let why = match (done.exitcode, done.signal) {
                    (_, Some(s)) => format!("the write script was killed by signal {s}"),
                    _ if msg.is_empty() => {
                        format!("the write script exited {}", done.exitcode.unwrap_or(-1))
                    }
                    _ => msg,
                };
                return Err(DeliverError::File(why));
            }
            if op == "whole" || op == "last" {
                return check_report(&done.out, &want, content.len());
            }
        }
        Err(DeliverError::File("internal error: no final chunk".into()))
    }
}

/// Check the script's `phx-ok <how> <size> <sum>` line against what was sent.
fn check_report(out: &[u8], want: &str, size: usize) -> Result<Verified, DeliverError> {
    let text = String::from_utf8_lossy(out);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("phx-ok "))
        .unwrap_or("");
    let f: Vec<&str> = line.split_whitespace().collect();
    let size_ok = f.get(2).and_then(|s| s.parse::<usize>().ok()) == Some(size);
    match (f.get(1).copied(), size_ok) {
        (Some("sha256"), true) if f.get(3) == Some(&want) => Ok(Verified::Digest),
        (Some("size"), true) => Ok(Verified::Size),
        _ => Err(DeliverError::File(
            "verification failed: the guest reported different content than was sent".into(),
        )),
    }
}

impl QgaTransport {
    /// Run `argv` in the guest and return its outcome and standard output (for checks
    /// and diagnostics; never used for anything that could print a secret).
    pub fn capture(&mut self, argv: &[String]) -> Result<(CommandOutcome, Vec<u8>), DeliverError> {
        let mut c = self.connect()?;
        let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
        let r = self.exec_wait(&mut c, &argv[0], &args, None, self.timeout);
        self.round_trips += c.round_trips;
        let done = r?;
        Ok((
            CommandOutcome {
                exitcode: done.exitcode,
                signal: done.signal,
            },
            done.out,
        ))
    }
}

impl QgaTransport {
    /// Deliver `idx` (small files) with one `guest-exec` of [`BATCH_SCRIPT`].
    fn deliver_batch(
        &mut self,
        files: &[Delivery],
        idx: &[usize],
    ) -> Result<Vec<Result<Verified, DeliverError>>, DeliverError> {
        let mut c = self.connect()?;
        let mut args: Vec<String> = vec!["-c".into(), BATCH_SCRIPT.into(), "phx-hook".into()];
        let mut header = String::new();
        let mut total = 0;
        for (k, &i) in idx.iter().enumerate() {
            let d = &files[i];
            args.extend([
                d.dest.to_string(),
                format!("{:04o}", d.mode),
                d.owner.to_string(),
                d.group.to_string(),
                super::temp_name(&d.dest, k),
                d.content.len().to_string(),
            ]);
            if k > 0 {
                header.push(' ');
            }
            header.push_str(&crate::types::hex(&Sha256::digest(d.content.expose())));
            total += d.content.len();
        }
        header.push('\n');
        let mut input = Zeroizing::new(Vec::with_capacity(header.len() + total));
        input.extend_from_slice(header.as_bytes());
        for &i in idx {
            input.extend_from_slice(files[i].content.expose());
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let bound = self.timeout
            + Duration::from_millis(20 * idx.len() as u64)
            + Duration::from_secs((total as u64) >> 16);
        let r = self.exec_wait(&mut c, "/bin/sh", &argv, Some(&input), bound);
        self.round_trips += c.round_trips;
        let done = r.map_err(|e| match e {
            DeliverError::File(m) if m.contains("Failed to execute child process") => {
                DeliverError::Unreachable("the guest has no /bin/sh".into())
            }
            other => other,
        })?;
        let out = String::from_utf8_lossy(&done.out);
        if let Some(f) = out.lines().find_map(|l| l.strip_prefix("fatal ")) {
            return Err(DeliverError::File(f.to_string()));
        }
        let mut results: Vec<Option<Result<Verified, DeliverError>>> =
            idx.iter().map(|_| None).collect();
        for line in out.lines() {
            let mut f = line.splitn(3, ' ');
            let (kind, n, rest) = (
                f.next(),
                f.next().and_then(|n| n.parse::<usize>().ok()),
                f.next().unwrap_or(""),
            );
            let Some(n) = n.filter(|n| (1..=idx.len()).contains(n)) else {
                continue;
            };
            let d = &files[idx[n - 1]];
            results[n - 1] = Some(match kind {
                Some("ok") => {
                    let proof = rest.split(' ').nth(1).unwrap_or("");
                    match rest.split(' ').next() {
                        Some("sha256") if proof == crate::types::hex(&Sha256::digest(d.content.expose())) => Ok(Verified::Digest),
                        Some("size") if proof == d.content.len().to_string() => Ok(Verified::Size),
                        _ => Err(DeliverError::File(
                            "verification failed: the guest reported different content than was sent".into(),
                        )),
                    }
                }
                _ => Err(DeliverError::File(rest.to_string())),
            });
        }
        let status = match (done.exitcode, done.signal) {
            (_, Some(s)) => format!("the write script was killed by signal {s}"),
            (c, None) => format!(
                "the write script ended (exit {}) without a result for this file",
                c.unwrap_or(-1)
            ),
        };
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(DeliverError::File(status.clone()))))
            .collect())
    }

    /// One large file on its own connection, chunked.
    fn deliver_one(&mut self, d: &Delivery) -> Result<Verified, DeliverError> {
        let mut c = self.connect()?;
        let tmp = super::temp_name(&d.dest, 0);
        let r = self.deliver_on(&mut c, d, &tmp);
        if r.is_err() && d.content.len() > CHUNK {
            // A chunked write that failed part-way leaves the temporary file: remove it.
            let _ = self.exec_wait(&mut c, "/bin/rm", &["-f", "--", &tmp], None, self.timeout);
        }
        self.round_trips += c.round_trips;
        r
    }
}

impl Transport for QgaTransport {
    fn name(&self) -> &'static str {
        "qga"
    }

    fn deliver_all(&mut self, files: &[Delivery]) -> Vec<Result<Verified, DeliverError>> {
        let mut results: Vec<Option<Result<Verified, DeliverError>>> =
            files.iter().map(|_| None).collect();
        // Small files in batches of at most CHUNK bytes; large ones one by one, chunked.
        let mut batches: Vec<Vec<usize>> = Vec::new();
        let mut size = 0;
        for (i, d) in files
            .iter()
            .enumerate()
            .filter(|(_, d)| d.content.len() <= BATCH_FILE_MAX)
        {
            match batches.last_mut() {
                Some(b) if size + d.content.len() <= CHUNK => b.push(i),
                _ => {
                    batches.push(vec![i]);
                    size = 0;
                }
            }
            size += d.content.len();
        }
        let mut unreachable: Option<DeliverError> = None;
        for b in batches {
            let r = match &unreachable {
                Some(e) => Err(e.clone()),
                None => self.deliver_batch(files, &b),
            };
            match r {
                Ok(rs) => {
                    for (&i, r) in b.iter().zip(rs) {
                        results[i] = Some(r);
                    }
                }
                Err(e) => {
                    if matches!(e, DeliverError::Unreachable(_)) {
                        unreachable = Some(e.clone());
                    }
                    for &i in &b {
                        results[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        for (i, d) in files
            .iter()
            .enumerate()
            .filter(|(_, d)| d.content.len() > BATCH_FILE_MAX)
        {
            let r = match &unreachable {
                Some(e) => Err(e.clone()),
                None => self.deliver_one(d),
            };
            if let Err(e @ DeliverError::Unreachable(_)) = &r {
                unreachable = Some(e.clone());
            }
            results[i] = Some(r);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(DeliverError::File("not attempted".into()))))
            .collect()
    }

    fn calls(&self) -> u32 {
        self.round_trips
    }

    fn run(&mut self, argv: &[String]) -> Result<CommandOutcome, DeliverError> {
        let mut c = self.connect()?;
        let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
        let bound = self.timeout.max(Duration::from_secs(30));
        let r = self.exec_wait(&mut c, &argv[0], &args, None, bound);
        self.round_trips += c.round_trips;
        let done = r?;
        Ok(CommandOutcome {
            exitcode: done.exitcode,
            signal: done.signal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};

    /// A directory of symlinks to the host's `tools`, to be the scripts' whole PATH.
    fn tool_dir(dir: &std::path::Path, tools: &[&str]) -> std::path::PathBuf {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for t in tools {
            let target = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| format!("{d}/{t}"))
                .find(|p| std::path::Path::new(p).exists())
                .unwrap();
            let _ = std::os::unix::fs::symlink(target, bin.join(t));
        }
        bin
    }

    /// Run the write script with the host's `sh` (dash on Debian, a strict POSIX shell),
    /// with PATH limited to `tools` (symlinks to the host's coreutils).
    fn script(
        dir: &std::path::Path,
        tools: &[&str],
        args: &[&str],
        stdin: &[u8],
    ) -> (i32, String, String) {
        let bin = tool_dir(dir, tools);
        let mut child = Command::new("/bin/sh")
            .args(["-c", SCRIPT, "phx-hook"])
            .args(args)
            .env_clear()
            .env("PATH", &bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The script may exit before reading stdin (an early refusal).
        let _ = child.stdin.take().unwrap().write_all(stdin);
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    const BASE: &[&str] = &["cat", "mkdir", "chown", "chmod", "mv", "rm", "wc"];

    fn with_sha() -> Vec<&'static str> {
        let mut v = BASE.to_vec();
        v.push("sha256sum");
        v
    }

    #[test]
    fn the_write_script_verifies_by_digest_or_size() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let dest = d.join("a/b/secret");
        let tmp = d.join("a/b/.secret.phx-1");
        let (dest, tmp) = (dest.to_str().unwrap(), tmp.to_str().unwrap());
        let body = b"s3cret\n";
        let header = format!(
            "{} {}\n",
            crate::types::hex(&Sha256::digest(body)),
            body.len()
        );
        let input = [header.as_bytes(), body].concat();
        let (code, out, err) = script(
            d,
            &with_sha(),
            &[dest, "0640", "0", "0", tmp, "whole"],
            &input,
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("phx-ok sha256 7 "), "{out}");
        assert_eq!(std::fs::read(dest).unwrap(), body);
        assert_eq!(
            std::fs::metadata(dest).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        assert_eq!(
            std::fs::metadata(d.join("a/b"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        // No sha256sum: the size is checked, and the report says so.
        let (code, out, err) = script(
            &d.join("nosha"),
            BASE,
            &[dest, "0600", "0", "0", tmp, "whole"],
            &input,
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.trim(), "phx-ok size 7 -");
        assert!(!std::path::Path::new(tmp).exists());
    }

    #[test]
    fn the_write_script_refuses_a_mismatch_and_leaves_the_old_file() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let dest = d.join("secret");
        std::fs::write(&dest, b"old").unwrap();
        let tmp = d.join(".secret.phx-2");
        let (dests, tmps) = (dest.to_str().unwrap(), tmp.to_str().unwrap());
        let input = [format!("{} 7\n", "0".repeat(64)).as_bytes(), b"s3cret\n"].concat();
        let (code, _, err) = script(
            d,
            &with_sha(),
            &[dests, "0600", "0", "0", tmps, "whole"],
            &input,
        );
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("verification failed"), "{err}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        assert!(!tmp.exists());
        // A parent that is a file.
        let (code, _, err) = script(
            d,
            &with_sha(),
            &[
                &format!("{dests}/x"),
                "0600",
                "0",
                "0",
                &format!("{dests}/.x.phx"),
                "whole",
            ],
            &input,
        );
        assert_eq!(code, 1);
        assert!(err.contains("is not a directory"), "{err}");
    }

    fn batch(
        dir: &std::path::Path,
        tools: &[&str],
        files: &[(&str, &str, &[u8])],
    ) -> (i32, String) {
        let mut args: Vec<String> = Vec::new();
        let mut header = String::new();
        let mut body = Vec::new();
        for (k, (dest, mode, content)) in files.iter().enumerate() {
            let tmp = format!("{}/.t{k}", dest.rsplit_once('/').unwrap().0);
            args.extend([
                dest.to_string(),
                mode.to_string(),
                "root".into(),
                "root".into(),
                tmp,
                content.len().to_string(),
            ]);
            if k > 0 {
                header.push(' ');
            }
            header.push_str(&crate::types::hex(&Sha256::digest(content)));
            body.extend_from_slice(content);
        }
        let input = [format!("{header}\n").into_bytes(), body].concat();
        let bin = tool_dir(dir, tools);
        let mut child = Command::new("/bin/sh")
            .args(["-c", BATCH_SCRIPT, "phx-hook"])
            .args(&args)
            .env_clear()
            .env("PATH", &bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(&input);
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
        )
    }

    #[test]
    fn the_batch_script_keeps_files_apart_when_one_fails() {
        for tools in [
            &[
                "mkdir",
                "chown",
                "chmod",
                "mv",
                "rm",
                "dd",
                "sha256sum",
                "wc",
            ][..],
            &["mkdir", "chown", "chmod", "mv", "rm", "dd", "wc"][..],
        ] {
            let t = tempfile::tempdir().unwrap();
            let d = t.path().display().to_string();
            std::fs::write(t.path().join("afile"), b"x").unwrap();
            let files: [(&str, &str, &[u8]); 3] = [
                (&format!("{d}/one/secret"), "0600", b"first secret\n"),
                (
                    &format!("{d}/afile/secret"),
                    "0600",
                    b"SECOND-never-written",
                ),
                (
                    &format!("{d}/three/deep/secret"),
                    "0640",
                    b"third \x00 binary \xff",
                ),
            ];
            let (code, out) = batch(&t.path().join("x"), tools, &files);
            assert_eq!(code, 0, "{out}");
            let lines: Vec<&str> = out.lines().collect();
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("err 2 ") && l.contains("is not a directory")),
                "{out}"
            );
            let how = if tools.contains(&"sha256sum") {
                "sha256"
            } else {
                "size"
            };
            assert!(
                lines.iter().any(|l| l.starts_with(&format!("ok 1 {how} "))),
                "{out}"
            );
            assert!(
                lines.iter().any(|l| l.starts_with(&format!("ok 3 {how} "))),
                "{out}"
            );
            assert_eq!(
                std::fs::read(t.path().join("one/secret")).unwrap(),
                b"first secret\n"
            );
            assert_eq!(
                std::fs::read(t.path().join("three/deep/secret")).unwrap(),
                b"third \x00 binary \xff"
            );
            assert_eq!(
                std::fs::metadata(t.path().join("three/deep/secret"))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o640
            );
            assert_eq!(
                std::fs::metadata(t.path().join("one/secret"))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o600
            );
            assert!(
                !t.path().join("one/.t0").exists() && !t.path().join("three/deep/.t2").exists()
            );
        }
    }

    #[test]
    fn the_write_script_appends_chunks() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let dest = d.join("big");
        let tmp = d.join(".big.phx-3");
        let (dest, tmp) = (dest.to_str().unwrap(), tmp.to_str().unwrap());
        let all = b"chunk-one|chunk-two|chunk-three";
        let header = format!(
            "{} {}\n",
            crate::types::hex(&Sha256::digest(all)),
            all.len()
        );
        assert_eq!(
            script(
                d,
                &with_sha(),
                &[dest, "0600", "0", "0", tmp, "first"],
                b"chunk-one|"
            )
            .0,
            0
        );
        assert_eq!(
            std::fs::metadata(tmp).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            !std::path::Path::new(dest).exists(),
            "nothing at the destination before the last chunk"
        );
        assert_eq!(
            script(
                d,
                &with_sha(),
                &[dest, "0600", "0", "0", tmp, "append"],
                b"chunk-two|"
            )
            .0,
            0
        );
        let last = [header.as_bytes(), b"chunk-three"].concat();
        let (code, out, err) = script(
            d,
            &with_sha(),
            &[dest, "0600", "0", "0", tmp, "last"],
            &last,
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("phx-ok sha256 31 "));
        assert_eq!(std::fs::read(dest).unwrap(), all);
    }

    #[test]
    fn report_lines() {
        let want = "ab".repeat(32);
        assert_eq!(
            check_report(format!("phx-ok sha256 5 {want}\n").as_bytes(), &want, 5).unwrap(),
            Verified::Digest
        );
        assert_eq!(
            check_report(b"phx-ok size 5 -\n", &want, 5).unwrap(),
            Verified::Size
        );
        assert!(check_report(b"phx-ok size 4 -\n", &want, 5).is_err());
        assert!(
            check_report(
                format!("phx-ok sha256 5 {}\n", "cd".repeat(32)).as_bytes(),
                &want,
                5
            )
            .is_err()
        );
        assert!(check_report(b"", &want, 5).is_err());
    }
}
