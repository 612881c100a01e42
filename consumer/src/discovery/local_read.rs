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
//!   answers; every other failure is an object_store error of the path, so the retry policy
//!   classifies it as it would the store's own.
//! - A file of at most [`INLINE_READ_MAX`] bytes is read on the calling thread (an open, a stat
//!   and one read, from the page cache: microseconds); a larger one on the blocking pool, so an
//!   async worker never waits on a long read. [`LocalReader::read_many`] reads a batch in one
//!   blocking-pool task (warming: many small files, one hand-off).
//! - A file is read whole, up to its end when read (not the size first seen): the sink's data
//!   and schema files appear complete (written under a staging name, then linked), and an index
//!   file is replaced by a rename, so an open file is one version of the object.

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use std::io::{ErrorKind, Read};
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
}

/// What reading one file found: `None` when it does not exist.
pub type ReadResult = object_store::Result<Option<Bytes>>;

impl LocalReader {
    /// A reader of the directory `root` (the storage URI's root).
    pub fn new(root: &std::path::Path) -> object_store::Result<LocalReader> {
        Ok(LocalReader {
            fs: Arc::new(LocalFileSystem::new_with_prefix(root)?),
        })
    }

    fn fs_path(&self, path: &Path) -> object_store::Result<PathBuf> {
        self.fs.path_to_filesystem(path)
    }

    /// Reads one object: inline when small, on the blocking pool otherwise.
    pub async fn read(&self, path: &Path) -> ReadResult {
        let fs_path = self.fs_path(path)?;
        let (mut file, len) = match open(&fs_path)? {
            Some(f) => f,
            None => return Ok(None),
        };
        if len <= INLINE_READ_MAX {
            return read_rest(&mut file, len, &fs_path).map(Some);
        }
        tokio::task::spawn_blocking(move || read_rest(&mut file, len, &fs_path).map(Some))
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
        let fs_path = self.fs_path(path)?;
        match open(&fs_path)? {
            Some((mut file, len)) => read_rest(&mut file, len, &fs_path).map(Some),
            None => Ok(None),
        }
    }
}

/// Opens a file and reads its length; `None` when nothing or a directory is at the path.
fn open(path: &std::path::Path) -> object_store::Result<Option<(std::fs::File, u64)>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    if meta.is_dir() {
        return Ok(None);
    }
    Ok(Some((file, meta.len())))
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

fn io_error(path: &std::path::Path, e: std::io::Error) -> object_store::Error {
    match e.kind() {
        ErrorKind::PermissionDenied => object_store::Error::PermissionDenied {
            path: path.display().to_string(),
            source: Box::new(e),
        },
        _ => generic(format!("reading {}: {e}", path.display()).into()),
    }
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
