//! [`Compression`]: whole-file compression of csv and canal-json data files (`compression=`),
//! an extension TiCDC does not have. The name suffix it adds (`.gz`, `.zst`) is part of the
//! storage layout: data file names and index file contents carry it, and a consumer must be
//! given the same option to find and read the files.
//!
//! [`ParquetCompression`]: page compression inside Parquet files (`parquet-compression=`); it
//! changes no name, readers find the codec in each column chunk's metadata.

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

/// Page compression inside Parquet files (`parquet-compression=`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum ParquetCompression {
    /// `snappy` (the default): what Spark, DuckDB and pyarrow write; cheap to decode.
    #[default]
    Snappy,
    /// `zstd` (level 3): smaller files for a little more CPU.
    Zstd,
    /// `none`: uncompressed pages.
    None,
}

impl ParquetCompression {
    /// Every value.
    pub const ALL: [ParquetCompression; 3] = [
        ParquetCompression::Snappy,
        ParquetCompression::Zstd,
        ParquetCompression::None,
    ];

    /// The option value.
    pub fn name(self) -> &'static str {
        match self {
            ParquetCompression::Snappy => "snappy",
            ParquetCompression::Zstd => "zstd",
            ParquetCompression::None => "none",
        }
    }

    /// Parses an option value.
    pub fn parse(s: &str) -> Result<ParquetCompression> {
        ParquetCompression::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                Error::param(
                    "parquet-compression",
                    format!("`{s}` is not one of snappy, zstd, none"),
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
        for c in ParquetCompression::ALL {
            assert_eq!(ParquetCompression::parse(c.name()).unwrap(), c);
        }
        assert!(matches!(
            Compression::parse("lz4"),
            Err(Error::InvalidParameter { name, .. }) if name == "compression"
        ));
    }
}
