//! [`Tmpfs`]: a small file system a disk-full test mounts, unmounted on drop.

use super::under_ci;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted by a test on a directory it owns; unmounted on drop, also while a panic
/// unwinds. Declare it after the directory's owner (e.g. a `tempfile::TempDir`) and before
/// anything that opens files in it, so that those files are closed before the unmount and the
/// directory is removed after it (if a file is still open, the unmount is made lazy).
#[derive(Debug)]
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes on the existing directory `dir` with
    /// `mount -t tmpfs -o size=<size> tmpfs <dir>`, or returns `None` after a note on stderr
    /// when that fails outside CI.
    ///
    /// # Panics
    /// When the mount fails and `CI` is `true` or `1`, naming the command's error.
    pub fn mount(dir: &Path, size: u64) -> Option<Tmpfs> {
        let res = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        let why = match res {
            Ok(out) if out.status.success() => {
                return Some(Tmpfs {
                    path: dir.to_path_buf(),
                })
            }
            Ok(out) => format!(
                "`mount -t tmpfs` exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => format!("cannot run `mount`: {e}"),
        };
        assert!(
            !under_ci(),
            "a disk-full test mounts a {size}-byte tmpfs on {} and needs root (CAP_SYS_ADMIN) under CI=true: {why}",
            dir.display()
        );
        eprintln!("note: skipping a disk-full test, cannot mount a tmpfs: {why}");
        None
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Free bytes of the file system (`stat -f`).
    pub fn free(&self) -> u64 {
        let out = Command::new("stat")
            .args(["-f", "-c", "%a %S"])
            .arg(&self.path)
            .output()
            .expect("stat -f");
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Vec<u64> = text
            .split_whitespace()
            .map(|s| s.parse().expect("stat -f prints numbers"))
            .collect();
        v[0] * v[1]
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // a file is still open (a panic mid-test): detach the mount anyway
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}
