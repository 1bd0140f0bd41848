//! The `native` container transport: a forked, single-threaded child enters the
//! container's mount namespace (and, for an idmapped container, its user namespace as
//! container root), exactly as `pct push` does, and writes every file of the plan there:
//! parents created 0755, a temporary file created `O_EXCL|O_NOFOLLOW` with mode 0600, then
//! `fchown`, `fchmod`, write, `fsync`, read back and compare, rename over the destination.
//! Because every path resolves inside the container's own root, a symlink the guest
//! planted cannot lead to a host file. No process is spawned per file, and no config lock
//! is needed. Owner and group names resolve from the container's `/etc/passwd` and
//! `/etc/group`. The fork itself is in `crate::sys`.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat, readlinkat, renameat};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::{FileStat, Mode, fstat, fstatat, mkdirat, umask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Gid, Pid, Uid, setgid, setgroups, setuid};
use zeroize::Zeroizing;

use super::{CommandOutcome, DeliverError, Transport, Verified};
use crate::manifest::Owner;
use crate::plan::Delivery;
use crate::types::{GuestPath, Vmid};

/// Namespaces a writer joins, in this order (user first, so that joining the mount
/// namespace the container's user namespace owns is permitted).
const ORDERED_NAMESPACES: [(&str, CloneFlags); 2] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// The native transport for one container.
pub struct NativeTransport {
    /// Processes started so far (`lxc-info`, the forked writer, `lxc-attach`).
    pub processes: u32,
    vmid: Vmid,
    lxc_info: String,
    lxc_attach: String,
    timeout: Duration,
}

impl NativeTransport {
    /// `lxc_info` and `lxc_attach` are commands (words split on white space) that find the
    /// container's init pid (`<lxc_info> -n <vmid> -p`) and run `after` commands in it.
    pub fn new(vmid: Vmid, lxc_info: &str, lxc_attach: &str, timeout: Duration) -> NativeTransport {
        NativeTransport {
            processes: 0,
            vmid,
            lxc_info: lxc_info.to_string(),
            lxc_attach: lxc_attach.to_string(),
            timeout,
        }
    }

    /// The container's init pid, as pct finds it (`lxc-info -n <vmid> -p`), bounded in
    /// time like every other command.
    pub fn init_pid(&self) -> Result<i32, DeliverError> {
        let mut words = self.lxc_info.split_whitespace();
        let prog = words.next().unwrap_or("lxc-info");
        let mut cmd = Command::new(prog);
        cmd.args(words).args(["-n", &self.vmid.to_string(), "-p"]);
        let (_, out, _) = super::run_bounded(&mut cmd, None, self.timeout)
            .map_err(|e| DeliverError::Unreachable(e.to_string()))?;
        let text = String::from_utf8_lossy(&out);
        let pid = text
            .lines()
            .find_map(|l| l.strip_prefix("PID:"))
            .and_then(|p| p.trim().parse::<i32>().ok())
            .filter(|p| *p > 0);
        pid.ok_or_else(|| {
            DeliverError::Unreachable(format!("container {} is not running", self.vmid))
        })
    }
}

/// A container's current boot: its init's pid and start time (`/proc/<pid>/stat` field
/// 22, clock ticks since the host booted; what Proxmox uses for a container's uptime).
/// A restart, from inside or not, gives a new init and so a new boot.
fn boot_of(pid: i32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let start = after.split_whitespace().nth(19)?;
    Some(format!("{pid}:{start}"))
}

/// What container `vmid` holds at `dests`, seen from the host without entering it and
/// without reading any file: `openat2` with `RESOLVE_IN_ROOT` below the init's
/// `/proc/<pid>/root`, so every link resolves inside the container, then `fstat`.
/// `known` is the boot seen last time: while that init still runs, no process is started
/// at all (not even `lxc-info`).
///
/// The walk asks the container's filesystems, and one of them may never answer (a FUSE
/// mount the container planted): it runs in a thread of its own, waited for at most
/// `timeout`. A walk that does not return is left behind, and the container is not walked
/// again while it lives, so a hostile container costs one stuck thread, never a stuck
/// caller. A walk that returns is joined; a caller that got the timeout error must not
/// fork afterwards (`sys::fork_child` needs a single-threaded process).
pub fn probe(
    lxc_info: &str,
    vmid: Vmid,
    timeout: Duration,
    known: Option<&str>,
    looks: &[super::Look],
) -> Result<super::Observed, DeliverError> {
    if WALKING.lock().is_ok_and(|w| w.contains(&vmid.get())) {
        return Err(DeliverError::Unreachable(format!(
            "container {vmid}: an earlier look into it has not returned (a filesystem in it that does not answer?)"
        )));
    }
    let reuse = known.and_then(|b| {
        let pid: i32 = b.split(':').next()?.parse().ok()?;
        (boot_of(pid).as_deref() == Some(b)).then_some(pid)
    });
    let pid = match reuse {
        Some(p) => p,
        None => NativeTransport::new(vmid, lxc_info, "lxc-attach", timeout).init_pid()?,
    };
    let boot = boot_of(pid);
    let root = open(
        format!("/proc/{pid}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        DeliverError::Unreachable(format!(
            "container {vmid}: cannot open its root: {}",
            e.desc()
        ))
    })?;
    let looks = looks.to_vec();
    let (tx, rx) = std::sync::mpsc::channel();
    if let Ok(mut w) = WALKING.lock() {
        w.insert(vmid.get());
    }
    let walker = std::thread::Builder::new()
        .name(format!("walk-{vmid}"))
        .spawn(move || {
            let files = walk(&root, &looks);
            if let Ok(mut w) = WALKING.lock() {
                w.remove(&vmid.get());
            }
            let _ = tx.send(files);
        });
    let walker = match walker {
        Ok(w) => w,
        Err(e) => {
            if let Ok(mut w) = WALKING.lock() {
                w.remove(&vmid.get());
            }
            return Err(DeliverError::Unreachable(format!(
                "cannot start a thread: {e}"
            )));
        }
    };
    match rx.recv_timeout(timeout) {
        Ok(files) => {
            // Joined, so that no thread is left when the caller forks a writer next.
            let _ = walker.join();
            Ok(super::Observed { boot, files })
        }
        Err(_) => Err(DeliverError::Unreachable(format!(
            "container {vmid}: looking at its files did not finish within {:.0}s (a filesystem in it that does not answer?)",
            timeout.as_secs_f64()
        ))),
    }
}

/// Containers with a walk that has not returned.
static WALKING: std::sync::Mutex<std::collections::BTreeSet<u32>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

fn walk(root: &OwnedFd, looks: &[super::Look]) -> Vec<super::Seen> {
    use nix::fcntl::{OpenHow, ResolveFlag, openat2};
    let open = |path: &str| {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        openat2(root, path, how)
    };
    looks
        .iter()
        .map(|l| {
            // A RAM-only file counts only while its destination is the link to it.
            if let Some(dest) = &l.link {
                let linked = open(dest.parent()).ok().is_some_and(|dir| {
                    readlinkat(&dir, dest.file_name())
                        .is_ok_and(|to| to.as_os_str() == l.file.as_str())
                });
                if !linked {
                    return super::Seen::Missing;
                }
            }
            match open(l.file.as_str()).and_then(fstat) {
                Ok(st) if is(&st, libc::S_IFREG) => super::Seen::File(super::FileSig {
                    ino: st.st_ino,
                    size: st.st_size as u64,
                    mtime: st.st_mtime,
                    ctime: st.st_ctime,
                    mode: st.st_mode & 0o7777,
                    uid: st.st_uid,
                    gid: st.st_gid,
                }),
                Ok(_) | Err(_) => super::Seen::Missing,
            }
        })
        .collect()
}

/// Open namespace files of the target, before forking.
struct Namespaces {
    fds: Vec<(CloneFlags, OwnedFd)>,
    user: bool,
}

fn open_namespaces(pid: i32) -> Result<Namespaces, DeliverError> {
    let ours = fs::metadata("/proc/self/ns/user").map(|m| m.ino()).ok();
    let theirs = fs::metadata(format!("/proc/{pid}/ns/user"))
        .map(|m| m.ino())
        .ok();
    let user = ours.is_some() && theirs.is_some() && ours != theirs;
    let mut fds = Vec::new();
    for (name, flag) in ORDERED_NAMESPACES {
        if flag == CloneFlags::CLONE_NEWUSER && !user {
            continue;
        }
        let f = File::open(format!("/proc/{pid}/ns/{name}")).map_err(|e| {
            DeliverError::Unreachable(format!(
                "failed to open the {name} namespace of pid {pid}: {e}"
            ))
        })?;
        fds.push((flag, OwnedFd::from(f)));
    }
    Ok(Namespaces { fds, user })
}

/// In the child: join the namespaces and become container root.
fn enter(ns: &Namespaces) -> Result<(), String> {
    for (flag, fd) in &ns.fds {
        setns(fd.as_fd(), *flag)
            .map_err(|e| format!("failed to enter the container's namespace ({flag:?}): {e}"))?;
    }
    if ns.user {
        setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
        setgid(Gid::from_raw(0)).map_err(|e| format!("setgid(0): {e}"))?;
        setuid(Uid::from_raw(0)).map_err(|e| format!("setuid(0): {e}"))?;
    }
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))?;
    umask(Mode::from_bits_truncate(0o022));
    Ok(())
}

/// `name:x:id:...` lines of a passwd or group file.
fn id_of(db: &str, name: &str) -> Option<u32> {
    db.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some(name))
            .then(|| f.nth(1).and_then(|id| id.parse().ok()))
            .flatten()
    })
}

fn resolve(o: &Owner, db: &str, what: &str) -> Result<u32, String> {
    match o {
        Owner::Id(n) => Ok(*n),
        Owner::Name(n) => {
            id_of(db, n).ok_or_else(|| format!("{what} `{n}` does not exist in the container"))
        }
    }
}

/// Whether only root can write in the directory described by `st` (owner uid 0, no
/// group or other write bit): then no other user can add, remove or rename its entries.
fn root_only(st: &FileStat) -> bool {
    st.st_uid == 0 && st.st_mode & 0o022 == 0
}

fn is(st: &FileStat, kind: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == kind
}

/// Open the absolute directory `dir` in the child's (the container's) mount namespace
/// by walking it one component at a time with `openat(O_NOFOLLOW)`, creating missing
/// components (0755). A symbolic link is followed only when the directory that holds it
/// can be written by root alone, and then its target is walked the same way; a link
/// anywhere else could have been planted by another user of the container. This is what
/// `lib.sh`'s `phx_cd` does in a shell.
fn open_dir(dir: &str) -> Result<OwnedFd, String> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let root =
        || open("/", flags, Mode::empty()).map_err(|e| format!("cannot open /: {}", e.desc()));
    let mut cur = root()?;
    let mut here = String::new();
    let mut rest: std::collections::VecDeque<String> = dir.split('/').map(str::to_string).collect();
    let mut links = 0;
    while let Some(comp) = rest.pop_front() {
        match comp.as_str() {
            "" | "." => continue,
            ".." => {
                cur = openat(&cur, "..", flags, Mode::empty())
                    .map_err(|e| format!("cannot go up from {here}: {}", e.desc()))?;
                here.truncate(here.rfind('/').unwrap_or(0));
                continue;
            }
            _ => {}
        }
        let path = format!("{here}/{comp}");
        match fstatat(&cur, comp.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if is(&st, libc::S_IFLNK) => {
                links += 1;
                if links > 40 {
                    return Err(format!("too many symbolic links below {here}/"));
                }
                let dir_st =
                    fstat(&cur).map_err(|e| format!("cannot stat {here}/: {}", e.desc()))?;
                if !root_only(&dir_st) {
                    return Err(format!(
                        "{path} is a symbolic link in a directory that users other than root can write"
                    ));
                }
                let to = readlinkat(&cur, comp.as_str())
                    .map_err(|e| format!("cannot read the link {path}: {}", e.desc()))?;
                let to = to.to_string_lossy().into_owned();
                if to.starts_with('/') {
                    cur = root()?;
                    here.clear();
                }
                for (i, c) in to.split('/').enumerate() {
                    rest.insert(i, c.to_string());
                }
                continue;
            }
            Ok(st) if is(&st, libc::S_IFDIR) => {}
            Ok(_) => return Err(format!("{path} exists and is not a directory")),
            Err(Errno::ENOENT) => {
                match mkdirat(&cur, comp.as_str(), Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(format!("cannot create directory {path}: {}", e.desc())),
                }
            }
            Err(e) => return Err(format!("cannot stat {path}: {}", e.desc())),
        }
        cur = openat(&cur, comp.as_str(), flags, Mode::empty()).map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => {
                format!("{path} was replaced by a symbolic link during delivery")
            }
            e => format!("cannot enter {path}: {}", e.desc()),
        })?;
        here = path;
    }
    Ok(cur)
}

/// The container's `/etc/passwd` and `/etc/group`, read once and only when a name must
/// be resolved: at most 4 MiB each, and only a regular file (a container can make them
/// links to `/dev/zero` or FIFOs; the writer runs in the host's memory cgroup).
struct Db {
    passwd: Option<Result<String, String>>,
    group: Option<Result<String, String>>,
}

/// The most of a container's user or group database phx-hook reads.
pub const MAX_DB_BYTES: u64 = 4 << 20;

fn read_db(path: &str) -> Result<String, String> {
    // Reached without following a link (before `pivot_root`, the mount hook's
    // `/proc/1/root` is the host's root) and opened only if it is a regular file.
    let dir = open_dir("/etc")?;
    let name = path.trim_start_matches("/etc/");
    let fd = openat(
        &dir,
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::ELOOP => format!(
            "the container's {path} is not a regular file of at most {MAX_DB_BYTES} bytes (a symbolic link)"
        ),
        e => format!("cannot read the container's {path}: {}", e.desc()),
    })?;
    let f = File::from(fd);
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot read the container's {path}: {}", io_text(&e)))?;
    if !meta.is_file() || meta.len() > MAX_DB_BYTES {
        return Err(format!(
            "the container's {path} is not a regular file of at most {MAX_DB_BYTES} bytes"
        ));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_DB_BYTES)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read the container's {path}: {}", io_text(&e)))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

impl Db {
    fn id(&mut self, o: &Owner, what: &str) -> Result<u32, String> {
        let Owner::Name(n) = o else {
            return resolve(o, "", what);
        };
        let (slot, path) = if what == "user" {
            (&mut self.passwd, "/etc/passwd")
        } else {
            (&mut self.group, "/etc/group")
        };
        let db = slot
            .get_or_insert_with(|| read_db(path))
            .as_ref()
            .map_err(Clone::clone)?;
        id_of(db, n).ok_or_else(|| format!("{what} `{n}` does not exist in the container"))
    }
}

/// What a file looked like right after it was written (for the worker to know it is
/// still what was written; `uid`/`gid` differ between sides of an idmap, so they are
/// not part of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Written {
    /// Inode.
    pub ino: u64,
    /// Size.
    pub size: u64,
    /// Modification time (seconds).
    pub mtime: i64,
    /// Change time (seconds).
    pub ctime: i64,
    /// Permission bits.
    pub mode: u32,
}

impl Written {
    /// Whether `sig` (a later look) is the file as written.
    pub fn matches(&self, sig: &super::FileSig) -> bool {
        self.ino == sig.ino
            && self.size == sig.size
            && self.mtime == sig.mtime
            && self.ctime == sig.ctime
            && self.mode == sig.mode
    }
}

/// In the child: write one file at `dest` (`d.dest`, or its RAM path). Errors are
/// one-line messages without values.
fn write_one(d: &Delivery, dest: &GuestPath, db: &mut Db) -> Result<Written, String> {
    let uid = db.id(&d.owner, "user")?;
    let gid = db.id(&d.group, "group")?;
    let dir_fd = open_dir(dest.parent())?;
    let name = dest.file_name();
    let tmp = crate::deliver::guest::temp_name(dest);
    let created = openat(
        &dir_fd,
        tmp.as_str(),
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| format!("cannot create a file in {}: {}", dest.parent(), e.desc()))?;
    let mut f = File::from(created);
    let result = (|| {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
            .map_err(|e| format!("cannot set owner {uid}:{gid}: {}", io_text(&e)))?;
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(d.mode))
            .map_err(|e| format!("cannot set mode {:04o}: {}", d.mode, io_text(&e)))?;
        f.write_all(d.content.expose())
            .map_err(|e| format!("cannot write {}: {}", dest, io_text(&e)))?;
        f.sync_all()
            .map_err(|e| format!("cannot sync {}: {}", dest, io_text(&e)))?;
        // Read back through the same descriptor (never the name, which another user of a
        // directory they can write could have swapped) and compare.
        let mut back = Zeroizing::new(Vec::with_capacity(d.content.len()));
        f.seek(SeekFrom::Start(0))
            .and_then(|_| (&f).take(d.content.len() as u64 + 1).read_to_end(&mut back))
            .map_err(|e| format!("cannot read back {}: {}", dest, io_text(&e)))?;
        if back.as_slice() != d.content.expose() {
            return Err("verification failed: the content read back differs".to_string());
        }
        renameat(&dir_fd, tmp.as_str(), &dir_fd, name).map_err(|e| match e {
            Errno::EISDIR => format!("{} is a directory", dest),
            e => format!("cannot rename into {}: {}", dest, e.desc()),
        })?;
        let ours = fstat(&f).map_err(|e| format!("cannot stat {}: {}", dest, e.desc()))?;
        match fstatat(&dir_fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if st.st_ino == ours.st_ino && st.st_dev == ours.st_dev => {}
            _ => {
                return Err(format!(
                    "{} was replaced during delivery (users other than root can write in {})",
                    dest,
                    dest.parent()
                ));
            }
        }
        let _ = nix::unistd::fsync(&dir_fd);
        Ok(Written {
            ino: ours.st_ino,
            size: ours.st_size as u64,
            mtime: ours.st_mtime,
            ctime: ours.st_ctime,
            mode: ours.st_mode & 0o7777,
        })
    })();
    if result.is_err() {
        // Remove the temporary name if it is still ours.
        if let (Ok(st), Ok(ours)) = (
            fstatat(&dir_fd, tmp.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW),
            fstat(&f),
        ) && st.st_ino == ours.st_ino
        {
            let _ = nix::unistd::unlinkat(
                &dir_fd,
                tmp.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }
    result
}

fn io_text(e: &std::io::Error) -> String {
    // "Permission denied (os error 13)" -> "Permission denied"
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// In the child: everything after the fork.
fn child(ns: &Namespaces, files: &[Delivery], w: OwnedFd) -> i32 {
    let mut out = File::from(w);
    if let Err(e) = enter(ns) {
        let _ = writeln!(out, "fatal\t{}", one_line(&e));
        return 1;
    }
    for done in write_here(files) {
        let line = match done {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("err\t{}", one_line(&e)),
        };
        if writeln!(out, "{line}").is_err() {
            return 1;
        }
    }
    0
}

/// Write `files` into the filesystem this process sees as `/` (a container's, entered
/// or chrooted into): the RAM directory checked once if a RAM-only file needs it, each
/// file written at its destination or its RAM path (then linked). One result per file;
/// errors are one-line messages without values.
pub(crate) fn write_here(files: &[Delivery]) -> Vec<Result<Written, String>> {
    let mut db = Db {
        passwd: None,
        group: None,
    };
    let ram = files.iter().any(|d| d.store.is_some()).then(ram_dir);
    files
        .iter()
        .map(|d| match (&d.store, &ram) {
            (None, _) => write_one(d, &d.dest, &mut db),
            (Some(_), Some(Err(e))) => Err(format!(
                "storage: ram, and the container cannot keep it in RAM: {e}"
            )),
            (Some(store), _) => write_one(d, store, &mut db).and_then(|w| {
                link(&d.dest, store).map(|()| w).map_err(|why| {
                    format!(
                        "the file is in RAM at {store}, but {} could not be made a link to it: {why}",
                        d.dest
                    )
                })
            }),
        })
        .collect()
}

/// In the child: the RAM directory exists, only root can write it, and it is on tmpfs or
/// ramfs by the filesystem's own type (`fstatfs` of the directory reached without
/// following a link another user could have planted).
fn ram_dir() -> Result<(), String> {
    use nix::sys::statfs::{TMPFS_MAGIC, fstatfs};
    // ramfs: linux/magic.h (nix names tmpfs, not ramfs).
    const RAMFS_MAGIC: nix::sys::statfs::FsType = nix::sys::statfs::FsType(0x8584_58f6);
    let dir = crate::manifest::RAM_DIR;
    let fd = open_dir(dir)?;
    let st = fstat(&fd).map_err(|e| format!("cannot stat {dir}: {}", e.desc()))?;
    if !root_only(&st) {
        return Err(format!("{dir} can be written by users other than root"));
    }
    let fs = fstatfs(&fd).map_err(|e| format!("cannot statfs {dir}: {}", e.desc()))?;
    let t = fs.filesystem_type();
    if t == TMPFS_MAGIC || t == RAMFS_MAGIC {
        // Others may enter it (to read the files their manifest gave them), not list it.
        nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(0o711))
            .map_err(|e| format!("cannot set the mode of {dir}: {}", e.desc()))
    } else {
        Err(format!(
            "{dir} is not on a RAM-backed filesystem (filesystem type {:#x}); mount a tmpfs on /run in the container",
            t.0
        ))
    }
}

/// In the child: make `dest` a symbolic link to `target`, replacing whatever was there
/// atomically (a new link under a fresh name, renamed over it; never followed), and check
/// it.
fn link(dest: &GuestPath, target: &GuestPath) -> Result<(), String> {
    let dir = open_dir(dest.parent())?;
    let name = dest.file_name();
    if let Ok(st) = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        && is(&st, libc::S_IFDIR)
    {
        return Err(format!("{dest} is a directory"));
    }
    let tmp = crate::deliver::guest::temp_name(dest);
    nix::unistd::symlinkat(target.as_str(), &dir, tmp.as_str())
        .map_err(|e| format!("cannot create a link in {}: {}", dest.parent(), e.desc()))?;
    if let Err(e) = renameat(&dir, tmp.as_str(), &dir, name) {
        let _ = nix::unistd::unlinkat(&dir, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        return Err(format!("cannot replace {dest}: {}", e.desc()));
    }
    match readlinkat(&dir, name) {
        Ok(to) if to.as_os_str() == target.as_str() => Ok(()),
        _ => Err(format!("{dest} was replaced during delivery")),
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\t'], " ")
}

impl NativeTransport {
    fn run_child(&mut self, files: &[Delivery]) -> Vec<Result<Verified, DeliverError>> {
        // One `lxc-info`, one forked writer for all files.
        self.processes += 2;
        let fail_all = |e: DeliverError| files.iter().map(|_| Err(e.clone())).collect();
        let pid = match self.init_pid() {
            Ok(p) => p,
            Err(e) => return fail_all(e),
        };
        let ns = match open_namespaces(pid) {
            Ok(n) => n,
            Err(e) => return fail_all(e),
        };
        let (r, w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(p) => p,
            Err(e) => return fail_all(DeliverError::Unreachable(format!("pipe: {e}"))),
        };
        let child_pid = match crate::sys::fork_child(w, |w| child(&ns, files, w)) {
            Ok(p) => p,
            Err(e) => return fail_all(DeliverError::Unreachable(format!("fork: {e}"))),
        };
        let bound = self.timeout
            + Duration::from_secs(
                files
                    .iter()
                    .map(|d| d.content.len() as u64 >> 20)
                    .sum::<u64>(),
            );
        let lines = read_lines_bounded(r, bound);
        let status = reap(child_pid, lines.is_err());
        let lines = match lines {
            Ok(l) => l,
            Err(()) => {
                return fail_all(DeliverError::Unreachable(format!(
                    "writing into container {} did not finish within {:.0}s",
                    self.vmid,
                    bound.as_secs_f64()
                )));
            }
        };
        child_results(&lines, files.len(), &status)
    }
}

/// The forked writer's report: `fatal\tWHY` once, or a line per file (`ok`, `err\tWHY`);
/// a file without a line gets the writer's exit `status`.
pub(crate) fn child_results(
    lines: &[String],
    n: usize,
    status: &str,
) -> Vec<Result<Verified, DeliverError>> {
    if let Some(fatal) = lines.first().and_then(|l| l.strip_prefix("fatal\t")) {
        let e = DeliverError::Unreachable(crate::text::guest(fatal.as_bytes()));
        return (0..n).map(|_| Err(e.clone())).collect();
    }
    (0..n)
        .map(|i| match lines.get(i).map(String::as_str) {
            Some("ok") => Ok(Verified::Digest),
            Some(l) => Err(DeliverError::File(crate::text::guest(
                l.strip_prefix("err\t").unwrap_or(l).as_bytes(),
            ))),
            None => Err(DeliverError::File(format!(
                "the writer stopped early ({status})"
            ))),
        })
        .collect()
}

/// Read the child's report lines until EOF, within `bound`.
fn read_lines_bounded(r: OwnedFd, bound: Duration) -> Result<Vec<String>, ()> {
    let deadline = Instant::now() + bound;
    let mut buf = Vec::new();
    let mut f = File::from(r);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(());
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Err(()),
        }
        let mut chunk = [0u8; 4096];
        match f.read(&mut chunk) {
            Ok(0) => break,
            // The writer reports a line per file; paths in it can come from the container
            // (link targets), so the whole report is bounded too.
            Ok(n) if buf.len() + n > super::MAX_CHILD_OUTPUT => return Err(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(()),
        }
    }
    Ok(BufReader::new(&buf[..])
        .lines()
        .map_while(Result::ok)
        .collect())
}

/// Wait for the child; kill it first if it overran.
fn reap(pid: Pid, overran: bool) -> String {
    if overran {
        let _ = kill(pid, Signal::SIGKILL);
    }
    loop {
        match waitpid(pid, Some(WaitPidFlag::empty())) {
            Ok(WaitStatus::Exited(_, c)) => return format!("exit {c}"),
            Ok(WaitStatus::Signaled(_, s, _)) => return format!("killed by {s}"),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return format!("waitpid: {e}"),
        }
    }
}

impl Transport for NativeTransport {
    fn name(&self) -> &'static str {
        "native"
    }

    fn calls(&self) -> u32 {
        self.processes
    }

    fn deliver_all(&mut self, files: &[Delivery]) -> Vec<Result<Verified, DeliverError>> {
        self.run_child(files)
    }

    fn run(&mut self, argv: &[String]) -> Result<CommandOutcome, DeliverError> {
        self.processes += 1;
        run_attached(
            &self.lxc_attach,
            self.vmid,
            argv,
            self.timeout.max(Duration::from_secs(30)),
        )
    }
}

/// Run `argv` in the container with `lxc-attach -n <vmid> --clear-env --` (what
/// `pct exec --keep-env 0` runs), bounded.
pub(crate) fn run_attached(
    lxc_attach: &str,
    vmid: Vmid,
    argv: &[String],
    bound: Duration,
) -> Result<CommandOutcome, DeliverError> {
    let mut words = lxc_attach.split_whitespace();
    let prog = words.next().unwrap_or("lxc-attach");
    let mut cmd = Command::new(prog);
    cmd.args(words)
        .args(["-n", &vmid.to_string(), "--clear-env", "--"])
        .args(argv);
    super::run_bounded(&mut cmd, None, bound).map(|(o, _, _)| o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_passwd_and_group() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nbad:x:oops:1::/:/bin/sh\n";
        assert_eq!(id_of(passwd, "app"), Some(1000));
        assert_eq!(id_of(passwd, "root"), Some(0));
        assert_eq!(id_of(passwd, "ap"), None);
        assert_eq!(id_of(passwd, "bad"), None);
        assert_eq!(resolve(&Owner::Id(7), "", "user"), Ok(7));
        assert!(
            resolve(&Owner::Name("nobody".into()), passwd, "user")
                .unwrap_err()
                .contains("does not exist")
        );
    }
}
