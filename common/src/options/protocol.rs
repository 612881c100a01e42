//! [`Protocol`]: the wire format of data files, its option name and its file extension (the
//! extension is part of the storage layout: a consumer picks the decoder from it).

use crate::error::{Error, Result};

/// Wire format of data files.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `csv`, files `.csv`.
    Csv,
    /// `canal-json`, files `.json`.
    CanalJson,
    /// `avro` object container files, `.avro`.
    Avro,
    /// `parquet` files with one typed column per table column, `.parquet`.
    Parquet,
}

impl Protocol {
    /// The protocol's name in options.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Csv => "csv",
            Protocol::CanalJson => "canal-json",
            Protocol::Avro => "avro",
            Protocol::Parquet => "parquet",
        }
    }

    /// The data file extension (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            Protocol::Csv => "csv",
            Protocol::CanalJson => "json",
            Protocol::Avro => "avro",
            Protocol::Parquet => "parquet",
        }
    }

    /// The protocol whose data files carry `ext`.
    pub fn from_extension(ext: &str) -> Option<Protocol> {
        [
            Protocol::Csv,
            Protocol::CanalJson,
            Protocol::Avro,
            Protocol::Parquet,
        ]
        .into_iter()
        .find(|p| p.extension() == ext)
    }

    /// Parses a protocol name.
    pub fn parse(s: &str) -> Result<Protocol> {
        match s {
            "csv" => Ok(Protocol::Csv),
            "canal-json" => Ok(Protocol::CanalJson),
            "avro" => Ok(Protocol::Avro),
            "parquet" => Ok(Protocol::Parquet),
            _ => Err(Error::param(
                "protocol",
                format!("`{s}` is not one of csv, canal-json, avro, parquet"),
            )),
        }
    }
}
