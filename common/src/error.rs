//! The crate error of cdc-common, and the classifier of object store errors (retryable or not).
//! A leaf module: it depends on no other module of the crate.

use std::fmt;

/// Where in an object a decode problem was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// Nowhere in particular (the whole object).
    None,
    /// 1-based line number in a line-oriented file.
    Line(u64),
    /// Byte offset from the start of the object.
    Offset(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::None => Ok(()),
            Position::Line(l) => write!(f, " at line {l}"),
            Position::Offset(o) => write!(f, " at byte {o}"),
        }
    }
}

/// Errors of the shared contract: options, URIs, paths, schema files and codecs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option has a value out of range or of the wrong form.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name as the user wrote it.
        name: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A storage or downstream URI cannot be used. The URI is shown with secrets redacted.
    #[error("invalid URI `{uri}`: {reason}")]
    InvalidUri {
        /// The URI with secrets redacted.
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// A path in storage does not follow the layout contract.
    #[error("invalid path `{path}`: {reason}")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A schema or table name that cannot be used as a path segment.
    #[error("invalid name `{name}`: {reason}")]
    InvalidName {
        /// The name (with control characters escaped).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Bytes read from storage do not decode: truncated, malformed, wrong type or over-long.
    #[error("corrupt object `{object}`{position}: {reason}")]
    Corrupt {
        /// The object (path) the bytes came from.
        object: String,
        /// Where in the object.
        position: Position,
        /// What is wrong.
        reason: String,
    },
    /// An event cannot be encoded (for example a row that does not match its table).
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The object store failed.
    #[error("storage error: {0}")]
    Storage(#[from] object_store::Error),
}

impl Error {
    /// Builds [`Error::InvalidParameter`].
    pub fn param(name: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// Builds [`Error::Corrupt`].
    pub fn corrupt(
        object: impl Into<String>,
        position: Position,
        reason: impl Into<String>,
    ) -> Error {
        Error::Corrupt {
            object: object.into(),
            position,
            reason: reason.into(),
        }
    }

    /// Builds [`Error::InvalidPath`].
    pub fn path(path: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidPath {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// True when retrying the same operation may succeed (transient storage failures).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Storage(e) => store_error_is_retryable(e),
            _ => false,
        }
    }
}

/// True when an object_store error is worth retrying: everything but not-found, already exists,
/// precondition, not-supported, invalid path, permission, authentication and configuration
/// errors. Re-exported as `storage::is_retryable`; it lives here, beside the crate
/// error's own classifier, so that `error` depends on no other module of the crate.
pub fn store_error_is_retryable(e: &object_store::Error) -> bool {
    !matches!(
        e,
        object_store::Error::NotFound { .. }
            | object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotSupported { .. }
            | object_store::Error::InvalidPath { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
            | object_store::Error::UnknownConfigurationKey { .. }
            | object_store::Error::NotImplemented { .. }
    )
}

/// Result alias of cdc-common.
pub type Result<T, E = Error> = std::result::Result<T, E>;
