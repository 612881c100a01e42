//! The crate error of cdc-spool.

use std::fmt;
use std::path::PathBuf;

/// Result alias of the spool.
pub type Result<T, E = SpoolError> = std::result::Result<T, E>;

/// Why a record read back from a segment is rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptReason {
    /// The CRC-32C of the payload does not match the checksum stored in the record header.
    ChecksumMismatch {
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum of the payload bytes as read.
        computed: u32,
    },
    /// The file ends before the record does (a truncated header or payload).
    Truncated {
        /// Bytes the record needs from its offset (header plus payload).
        needed: u64,
        /// Bytes the file holds from that offset.
        available: u64,
    },
    /// The length field of the header differs from the length the entry was written with.
    LengthMismatch {
        /// The payload length the entry addresses.
        expected: u64,
        /// The payload length stored in the header.
        found: u64,
    },
}

impl fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptReason::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch: header says {stored:#010x}, payload hashes to {computed:#010x}"
            ),
            CorruptReason::Truncated { needed, available } => write!(
                f,
                "truncated record: needs {needed} bytes, the file holds {available}"
            ),
            CorruptReason::LengthMismatch { expected, found } => write!(
                f,
                "length mismatch: entry has {expected} payload bytes, header says {found}"
            ),
        }
    }
}

/// Errors of the spool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// A file system operation on the spool directory or a segment file failed.
    #[error("spool I/O on `{}`: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A record read back from a segment file does not verify. Never decoded further.
    #[error("corrupt spool segment {segment} at offset {offset}: {reason}")]
    Corrupt {
        /// The segment id (`segment-<id>.log`).
        segment: u64,
        /// Byte offset of the record start in the segment.
        offset: u64,
        /// What is wrong.
        reason: CorruptReason,
    },
    /// A spool option has a value out of range or the combination is inconsistent.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The option's name as the user writes it (`spool-low-watermark` ...).
        name: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// Another live spool (in this or another process) holds the lock of this changefeed's
    /// spool directory; nothing was removed or created. Give each process its own `spool-dir`.
    #[error(
        "spool directory `{}` is in use by another process (its lock `{}` is held); give each sink process its own spool-dir",
        dir.display(),
        lock.display()
    )]
    InUse {
        /// The changefeed's spool directory.
        dir: PathBuf,
        /// The lock file beside it.
        lock: PathBuf,
    },
    /// The spool's metrics cannot be registered (a spool for the same changefeed is already
    /// registered on that registry).
    #[error("cannot register spool metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The spool was closed; its entries can no longer be read and nothing can be enqueued.
    #[error("the spool is closed")]
    Closed,
    /// A segment write failed because the spool directory's file system is full (`ENOSPC`),
    /// the disk quota of the process's user is used up (`EDQUOT`) or the file size limit is
    /// reached (`EFBIG`), and the spool holds no entry whose release could free space, so
    /// waiting cannot help. The entry was not accepted (its callbacks were not run); no record
    /// of it is left in the segment. When entries are held, the same condition answers
    /// [`Enqueued::WaitForDiskQuota`](crate::Enqueued::WaitForDiskQuota) instead.
    #[error(
        "no space left on device for the spool directory `{}`: cannot write segment {segment} (`{}`): {source}",
        dir.display(),
        path.display()
    )]
    DiskFull {
        /// The changefeed's spool directory.
        dir: PathBuf,
        /// The segment id (`segment-<id>.log`).
        segment: u64,
        /// The segment file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// A failed write (or creation) of a segment file, before the spool decides what it means for
/// the caller (crate-internal).
#[derive(Debug)]
pub(crate) struct WriteFailure {
    pub(crate) segment: u64,
    pub(crate) path: PathBuf,
    pub(crate) source: std::io::Error,
}

impl WriteFailure {
    /// True when the file system has no room: full (`ENOSPC`), quota exhausted (`EDQUOT`) or
    /// file size limit (`EFBIG`). Releasing entries can make room; other errors are final.
    pub(crate) fn is_no_space(&self) -> bool {
        use std::io::ErrorKind::{FileTooLarge, QuotaExceeded, StorageFull};
        matches!(
            self.source.kind(),
            StorageFull | QuotaExceeded | FileTooLarge
        )
    }

    /// The error for the caller: [`SpoolError::DiskFull`] for lack of space, else
    /// [`SpoolError::Io`] naming the file.
    pub(crate) fn into_error(self, dir: &std::path::Path) -> SpoolError {
        if self.is_no_space() {
            SpoolError::DiskFull {
                dir: dir.to_path_buf(),
                segment: self.segment,
                path: self.path,
                source: self.source,
            }
        } else {
            SpoolError::Io {
                path: self.path,
                source: self.source,
            }
        }
    }
}

impl SpoolError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> SpoolError {
        SpoolError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn param(name: &str, reason: impl Into<String>) -> SpoolError {
        SpoolError::InvalidParameter {
            name: name.to_string(),
            reason: reason.into(),
        }
    }

    /// True when the error says the spooled bytes are damaged (a checksum, length or
    /// truncation failure); the changefeed must restart from its checkpoint.
    pub fn is_corruption(&self) -> bool {
        matches!(self, SpoolError::Corrupt { .. })
    }

    /// True for [`SpoolError::InUse`]: another live process owns the spool directory.
    pub fn is_in_use(&self) -> bool {
        matches!(self, SpoolError::InUse { .. })
    }

    /// True for [`SpoolError::DiskFull`]: the spool directory's file system has no room and
    /// the spool holds nothing that could free it; the operator must make space.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, SpoolError::DiskFull { .. })
    }
}

impl From<cdc_common::Error> for SpoolError {
    fn from(e: cdc_common::Error) -> SpoolError {
        match e {
            cdc_common::Error::InvalidParameter { name, reason } => {
                SpoolError::InvalidParameter { name, reason }
            }
            other => SpoolError::InvalidParameter {
                name: "spool".to_string(),
                reason: other.to_string(),
            },
        }
    }
}
