//! Reads of an upstream that is a local directory, without object_store's blocking-pool round
//! trips.
//!
//! object_store's local store answers each GET with two blocking-pool tasks (open and stat,
//! then the read), so a small file costs two thread hand-offs and their wake-ups, more than the
//! read itself: at 10,000 tables of one small file each, about a quarter of a cold replay's CPU
//! samples were those hand-offs (docs/architecture.md, "Consumer: cost curves").
//!
//! Invariants:
//! - A path names the file object_store's local store would read: the path is mapped by that
//!   store's own rule ([`LocalFileSystem::path_to_filesystem`]), so names that need escaping map
//!   the same way for the sink that wrote them and the consumer that reads them.
//! - A missing file, or a directory at the path, is *not found* (`None`), as object_store
//!   answers; anything else that is not a regular file (a FIFO, a socket, a device) is an error
//!   naming it, found without blocking (opened non-blocking); every other failure is an
//!   object_store `Generic` error naming the path, retried as the store's own open and read
//!   errors are.
//! - On a disk file system, a file of at most [`INLINE_READ_MAX`] bytes is read on the calling
//!   thread (an open, a stat and one read, from the page cache: microseconds); a larger one on
//!   the blocking pool, so an async worker never waits on a long read. [`LocalReader::read_many`]
//!   reads a warming batch in one blocking-pool task.
//! - On a network, cluster, guest-shared or user-space file system (NFS, SMB/CIFS, FUSE, Ceph,
//!   9P, GFS2, virtiofs, ... found in `/proc/self/mountinfo` when the reader is made, at the
//!   root or mounted below it), where an open or a read can hang, nothing is read on the
//!   calling thread: every read is one blocking-pool task, so the per-request timeout of the
//!   retry policy still ends a hung request, and warming keeps its concurrent requests
//!   ([`LocalReader::reads_inline`] is false).
//! - A file is read whole, up to its end when read (not the size first seen): the sink's data
//!   and schema files appear complete (written under a staging name, then linked), and an index
//!   file is replaced by a rename, so an open file is one version of the object.

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

/// Largest file read on the calling thread (see the module invariants). Schema files, index
/// files and small data files are below it.
pub const INLINE_READ_MAX: u64 = 256 * 1024;

/// Reads files of a local-directory upstream (see the module docs).
#[derive(Clone)]
pub struct LocalReader {
    /// The store rooted where the upstream is, for its path mapping only.
    fs: Arc<LocalFileSystem>,
    /// Small files are read on the calling thread (a disk file system).
    inline: bool,
}

/// What reading one file found: `None` when it does not exist.
pub type ReadResult = object_store::Result<Option<Bytes>>;

impl LocalReader {
    /// A reader of the directory `root` (the storage URI's root).
    pub fn new(root: &std::path::Path) -> object_store::Result<LocalReader> {
        Ok(LocalReader {
            fs: Arc::new(LocalFileSystem::new_with_prefix(root)?),
            inline: !on_network_fs(root),
        })
    }

    /// The same reader as on a network file system (tests of what differs there).
    #[cfg(test)]
    pub(crate) fn into_network(mut self) -> LocalReader {
        self.inline = false;
        self
    }

    /// Whether small files are read on the calling thread (see the module invariants).
    pub fn reads_inline(&self) -> bool {
        self.inline
    }

    fn fs_path(&self, path: &Path) -> object_store::Result<PathBuf> {
        self.fs.path_to_filesystem(path)
    }

    /// Reads one object: inline when small, on the blocking pool otherwise.
    pub async fn read(&self, path: &Path) -> ReadResult {
        let fs_path = self.fs_path(path)?;
        if !self.inline {
            return tokio::task::spawn_blocking(move || read_path(&fs_path))
                .await
                .map_err(|e| generic(e.into()))?;
        }
        let (mut file, len) = match open(&fs_path)? {
            Some((f, meta)) => (f, meta.len()),
            None => return Ok(None),
        };
        if len <= INLINE_READ_MAX {
            return read_rest(&mut file, len, &fs_path).map(Some);
        }
        tokio::task::spawn_blocking(move || read_rest(&mut file, len, &fs_path).map(Some))
            .await
            .map_err(|e| generic(e.into()))?
    }

    /// One object's length and modification time (`None`: not there): an open and a stat of
    /// the open file, not a `stat` of the path, so an NFS client asks its server again
    /// (close-to-open) instead of answering from its attribute cache. On the calling thread on
    /// a disk, on the blocking pool on a network file system (see the module invariants).
    pub async fn look(&self, path: &Path) -> object_store::Result<Option<Look>> {
        let fs_path = self.fs_path(path)?;
        if self.inline {
            return look_path(&fs_path);
        }
        tokio::task::spawn_blocking(move || look_path(&fs_path))
            .await
            .map_err(|e| generic(e.into()))?
    }

    /// Reads every object of `paths` in one blocking-pool task, in order; each answer on its
    /// own (a failed read does not stop the others).
    pub async fn read_many(&self, paths: Vec<Path>) -> Vec<ReadResult> {
        let me = self.clone();
        let n = paths.len();
        match tokio::task::spawn_blocking(move || {
            paths.iter().map(|p| me.read_blocking(p)).collect()
        })
        .await
        {
            Ok(v) => v,
            // the task panicked or the runtime is shutting down: every read failed
            Err(e) => {
                let msg = e.to_string();
                (0..n).map(|_| Err(generic(msg.clone().into()))).collect()
            }
        }
    }

    fn read_blocking(&self, path: &Path) -> ReadResult {
        read_path(&self.fs_path(path)?)
    }
}

/// What a look at one file found (see [`LocalReader::look`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Look {
    /// Its length in bytes.
    pub len: u64,
    /// Its modification time, as the file system stamped it.
    pub modified: std::time::SystemTime,
}

/// Opens one file and reads its length and modification time (see [`open`]).
fn look_path(path: &std::path::Path) -> object_store::Result<Option<Look>> {
    let Some((_file, meta)) = open(path)? else {
        return Ok(None);
    };
    let modified = meta.modified().map_err(|e| io_error(path, e))?;
    Ok(Some(Look {
        len: meta.len(),
        modified,
    }))
}

/// Opens and reads one file (see [`open`]).
fn read_path(path: &std::path::Path) -> ReadResult {
    match open(path)? {
        Some((mut file, meta)) => read_rest(&mut file, meta.len(), path).map(Some),
        None => Ok(None),
    }
}

/// File system types (as `/proc/self/mountinfo` names them) whose calls can hang on a network,
/// a cluster lock manager or a user-space daemon, and whose files another host's clock may
/// stamp (network, cluster and guest-shared file systems); `fuse.<name>` types are FUSE too.
const NETWORK_FS: [&str; 24] = [
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "fuse",
    "fuseblk",
    "ceph",
    "9p",
    "afs",
    "coda",
    "lustre",
    "gpfs",
    "glusterfs",
    "beegfs",
    "orangefs",
    "pvfs2",
    "wekafs",
    "gfs2",
    "ocfs2",
    "virtiofs",
    "vboxsf",
    "vmhgfs",
    "davfs",
];

/// Whether a file system type is one of [`NETWORK_FS`] or a FUSE file system.
fn is_network_fs(fs_type: &str) -> bool {
    NETWORK_FS.contains(&fs_type) || fs_type.starts_with("fuse.")
}

/// Each mount of the text of `/proc/self/mountinfo`: its mount point (the 5th field; spaces
/// are written `\040`) and its type (the first field after ` - `).
fn mounts(mountinfo: &str) -> impl Iterator<Item = (String, &str)> {
    mountinfo.lines().filter_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mount = left.split(' ').nth(4)?;
        let fs_type = right.split(' ').next()?;
        Some((mount.replace("\\040", " "), fs_type))
    })
}

/// The type of the file system mounted at the longest mount point that holds `path`.
fn fs_type_of<'a>(mountinfo: &'a str, path: &std::path::Path) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for (mount, fs_type) in mounts(mountinfo) {
        if path.starts_with(&mount) && best.is_none_or(|(len, _)| mount.len() > len) {
            best = Some((mount.len(), fs_type));
        }
    }
    best.map(|(_, t)| t)
}

/// Whether any part of the tree at `root` is on a network file system: the mount that holds
/// `root`, or one mounted below it (a table's directory on NFS under a root on a disk).
fn network_fs_in(mountinfo: &str, root: &std::path::Path) -> bool {
    fs_type_of(mountinfo, root).is_some_and(is_network_fs)
        || mounts(mountinfo).any(|(mount, fs_type)| {
            let below = std::path::Path::new(&mount);
            below != root && below.starts_with(root) && is_network_fs(fs_type)
        })
}

/// Whether `root`'s tree is on a network or user-space file system, in part or whole (false
/// when that cannot be read: not Linux, or no `/proc`).
fn on_network_fs(root: &std::path::Path) -> bool {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .is_some_and(|m| network_fs_in(&m, &root))
}

/// Opens a file and reads its length; `None` when nothing or a directory is at the path. Opened
/// non-blocking, so a FIFO at the path does not wait for a writer (it is then refused); the
/// flag changes nothing for a regular file's reads.
fn open(
    path: &std::path::Path,
) -> object_store::Result<Option<(std::fs::File, std::fs::Metadata)>> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    if meta.is_dir() {
        return Ok(None);
    }
    if !meta.is_file() {
        return Err(generic(
            format!("{} is not a regular file", path.display()).into(),
        ));
    }
    Ok(Some((file, meta)))
}

/// Reads a file to its end, sized for `len` bytes.
fn read_rest(
    file: &mut std::fs::File,
    len: u64,
    path: &std::path::Path,
) -> object_store::Result<Bytes> {
    // one byte more than the size seen, so a file at its size ends in one read and the
    // end-of-file read needs no growth
    let mut buf = Vec::with_capacity(len as usize + 1);
    file.read_to_end(&mut buf).map_err(|e| io_error(path, e))?;
    Ok(Bytes::from(buf))
}

/// An open or read error: `Generic`, as object_store's local store reports them (so retried).
fn io_error(path: &std::path::Path, e: std::io::Error) -> object_store::Error {
    generic(format!("reading {}: {e}", path.display()).into())
}

fn generic(source: Box<dyn std::error::Error + Send + Sync>) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> (tempfile::TempDir, LocalReader) {
        let dir = tempfile::tempdir().unwrap();
        let r = LocalReader::new(dir.path()).unwrap();
        (dir, r)
    }

    #[tokio::test]
    async fn reads_small_and_large_files_whole_and_answers_none_for_missing_or_a_directory() {
        let (dir, r) = reader();
        std::fs::create_dir_all(dir.path().join("s/t/meta")).unwrap();
        std::fs::write(dir.path().join("s/t/meta/small"), b"abc").unwrap();
        let big: Vec<u8> = (0..INLINE_READ_MAX as usize * 3).map(|i| i as u8).collect();
        std::fs::write(dir.path().join("s/t/big"), &big).unwrap();
        std::fs::write(dir.path().join("s/t/empty"), b"").unwrap();
        let p = |s: &str| Path::parse(s).unwrap();
        assert_eq!(
            r.read(&p("s/t/meta/small")).await.unwrap().unwrap(),
            &b"abc"[..]
        );
        assert_eq!(r.read(&p("s/t/big")).await.unwrap().unwrap(), &big[..]);
        assert_eq!(r.read(&p("s/t/empty")).await.unwrap().unwrap(), &b""[..]);
        assert!(r.read(&p("s/t/missing")).await.unwrap().is_none());
        assert!(r.read(&p("s/t/meta")).await.unwrap().is_none());
        assert!(r.read(&p("nowhere/at/all")).await.unwrap().is_none());
        let many = r
            .read_many(vec![p("s/t/big"), p("s/t/missing"), p("s/t/meta/small")])
            .await;
        let got: Vec<Option<Vec<u8>>> = many
            .into_iter()
            .map(|x| x.unwrap().map(|b| b.to_vec()))
            .collect();
        assert_eq!(got, vec![Some(big), None, Some(b"abc".to_vec())]);
    }

    #[tokio::test]
    async fn maps_names_as_object_stores_local_store_does() {
        // a name object_store escapes on disk must read back what that store wrote
        let (dir, r) = reader();
        let fs = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let p = Path::from_iter(["db name", "t%1 ü", "CDC000001.csv"]);
        use object_store::ObjectStoreExt;
        fs.put(&p, Bytes::from_static(b"row").into()).await.unwrap();
        assert_eq!(r.read(&p).await.unwrap().unwrap(), &b"row"[..]);
        assert_eq!(
            r.read_many(vec![p.clone()])
                .await
                .pop()
                .unwrap()
                .unwrap()
                .unwrap(),
            &b"row"[..]
        );
    }

    #[tokio::test]
    async fn a_fifo_at_the_path_is_refused_at_once_not_waited_on() {
        let (dir, r) = reader();
        let made = std::process::Command::new("mkfifo")
            .arg(dir.path().join("pipe"))
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let p = Path::parse("pipe").unwrap();
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), r.read(&p));
        let e = read.await.expect("no wait for a writer").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn network_file_systems_are_read_off_the_async_threads() {
        let mountinfo = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /mnt/nas rw,relatime shared:9 - nfs4 host:/export rw,vers=4.2
31 22 0:41 / /mnt/my\\040bucket rw,relatime shared:10 - fuse.s3fs s3fs rw
32 30 8:2 / /mnt/nas/local rw,relatime shared:11 - xfs /dev/sdb1 rw
33 22 0:42 / /tmp rw,nosuid shared:12 - tmpfs tmpfs rw
";
        let fs = |p: &str| fs_type_of(mountinfo, std::path::Path::new(p));
        assert_eq!(fs("/var/cdc"), Some("ext4"));
        assert_eq!(fs("/mnt/nas/cdc/db"), Some("nfs4"));
        assert_eq!(
            fs("/mnt/nas/local/cdc"),
            Some("xfs"),
            "the longest mount point"
        );
        assert_eq!(
            fs("/mnt/nasty"),
            Some("ext4"),
            "a path prefix is not a mount"
        );
        assert_eq!(fs("/mnt/my bucket/cdc"), Some("fuse.s3fs"));
        assert_eq!(fs("/tmp/x"), Some("tmpfs"));
        for t in [
            "nfs4",
            "fuse.s3fs",
            "cifs",
            "virtiofs",
            "gfs2",
            "ocfs2",
            "beegfs",
        ] {
            assert!(is_network_fs(t), "{t}");
        }
        let root = |p: &str| network_fs_in(mountinfo, std::path::Path::new(p));
        assert!(!root("/var/cdc"));
        assert!(root("/mnt/nas/cdc"));
        assert!(root("/mnt"), "an NFS mount below the root");
        assert!(!root("/mnt/nas/local"), "the disk below the NFS mount");
        for t in ["ext4", "xfs", "tmpfs", "overlay", "btrfs"] {
            assert!(!is_network_fs(t), "{t}");
        }
        let (_dir, r) = reader();
        assert!(
            r.reads_inline(),
            "the test's temporary directory is on a disk"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn an_unreadable_file_is_an_error_naming_it_not_a_missing_object() {
        // a symlink to itself cannot be opened (ELOOP), whoever runs the test
        let (dir, r) = reader();
        let f = dir.path().join("looped");
        std::os::unix::fs::symlink(&f, &f).unwrap();
        let p = Path::parse("looped").unwrap();
        let e = r.read(&p).await.unwrap_err();
        assert!(e.to_string().contains("looped"), "{e}");
        let e = r.read_many(vec![p]).await.pop().unwrap().unwrap_err();
        assert!(e.to_string().contains("looped"), "{e}");
    }
}
