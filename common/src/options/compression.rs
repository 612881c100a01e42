//! [`Compression`]: whole-file compression of csv and canal-json data files (`compression=`),
//! an extension TiCDC does not have. The name suffix it adds (`.gz`, `.zst`) is part of the
//! storage layout: data file names and index file contents carry it, and a consumer must be
//! given the same option to find and read the files.

use crate::error::{Error, Result};

/// Whole-file compression of text data files.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// `none`: TiCDC's layout byte for byte (the default).
    #[default]
    None,
    /// `gzip`: one gzip member per file, suffix `.gz`.
    Gzip,
    /// `zstd`: one zstd frame per file, suffix `.zst`.
    Zstd,
}

impl Compression {
    /// Every value, in option order.
    pub const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

    /// The option value.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The suffix after the protocol's extension, with its dot (empty for `none`).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }

    /// Parses an option value.
    pub fn parse(s: &str) -> Result<Compression> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                Error::param(
                    "compression",
                    format!("`{s}` is not one of none, gzip, zstd"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_suffixes_round_trip() {
        for c in Compression::ALL {
            assert_eq!(Compression::parse(c.name()).unwrap(), c);
        }
        assert_eq!(Compression::Gzip.suffix(), ".gz");
        assert_eq!(Compression::Zstd.suffix(), ".zst");
        assert!(matches!(
            Compression::parse("lz4"),
            Err(Error::InvalidParameter { name, .. }) if name == "compression"
        ));
    }
}
