//! Whole-file compression around a text codec (`compression=gzip|zstd`, csv and canal-json).
//!
//! # Invariants
//!
//! - Encoder threads still produce plain chunks; compression happens once per file, in
//!   [`TableCodec::finish_file`], over the header and every chunk in order. One gzip member or
//!   one zstd frame per file: per-chunk members would also be valid gzip/zstd, but a chunk is
//!   one event, and compressing a few rows at a time gives a fraction of the ratio.
//! - A compressed file decompresses to exactly the bytes the uncompressed file would hold, so
//!   the inner codec's decoder (and its line numbers in errors) applies unchanged.
//! - Bytes that do not decompress (truncated, not gzip/zstd, trailing garbage after a gzip
//!   member) are [`Error::Corrupt`] naming the object; never a panic.
//!
//! The zstd frame carries its content checksum (gzip always has a CRC), so damage is detected
//! rather than decoded into other text. The default level of each (gzip 6, zstd 3) is used: the point is fewer stored bytes at a
//! cost per core the sink can afford; docs/operations.md has the measured figures.

use super::{Codec, DecodedRow, TableCodec};
use crate::error::{Error, Position, Result};
use crate::event::DmlEvent;
use crate::options::{Compression, Protocol};
use crate::table::TableDef;
use bytes::Bytes;
use std::io::{Read, Write};

/// zstd's default level: most of the ratio at a few hundred MB/s per core.
const ZSTD_LEVEL: i32 = 3;

/// A codec whose files are compressed as a whole.
pub struct CompressedCodec {
    inner: Box<dyn Codec>,
    compression: Compression,
}

impl CompressedCodec {
    /// Wraps `inner`; `compression` is not `none` (the caller uses `inner` as it is then).
    pub fn new(inner: Box<dyn Codec>, compression: Compression) -> CompressedCodec {
        CompressedCodec { inner, compression }
    }
}

impl Codec for CompressedCodec {
    fn protocol(&self) -> Protocol {
        self.inner.protocol()
    }

    fn prepare(&self, table: &TableDef) -> Result<Box<dyn TableCodec>> {
        Ok(Box::new(CompressedTable {
            inner: self.inner.prepare(table)?,
            compression: self.compression,
        }))
    }
}

struct CompressedTable {
    inner: Box<dyn TableCodec>,
    compression: Compression,
}

impl TableCodec for CompressedTable {
    fn file_header(&self, out: &mut Vec<u8>) {
        self.inner.file_header(out);
    }

    fn encode(&self, event: &DmlEvent, out: &mut Vec<u8>) -> Result<()> {
        self.inner.encode(event, out)
    }

    fn finish_file(&self, object: &str, parts: Vec<Bytes>) -> Result<Vec<Bytes>> {
        let parts = self.inner.finish_file(object, parts)?;
        Ok(vec![Bytes::from(compress(
            self.compression,
            object,
            &parts,
        )?)])
    }

    fn rewrites_file(&self) -> bool {
        true
    }

    fn finish_file_into(
        &self,
        object: &str,
        parts: Vec<Bytes>,
        out: &mut (dyn Write + Send),
    ) -> Result<()> {
        let parts = self.inner.finish_file(object, parts)?;
        compress_into(self.compression, object, &parts, out)
    }

    fn decode(&self, object: &str, bytes: &[u8]) -> Result<Vec<DecodedRow>> {
        let plain = decompress(self.compression, object, bytes)?;
        self.inner.decode(object, &plain)
    }
}

/// Compresses `parts` (in order) into one gzip member or zstd frame.
pub fn compress(compression: Compression, object: &str, parts: &[Bytes]) -> Result<Vec<u8>> {
    let len: usize = parts.iter().map(Bytes::len).sum();
    let mut out = Vec::with_capacity(match compression {
        Compression::None => len,
        _ => len / 4,
    });
    compress_into(compression, object, parts, &mut out)?;
    Ok(out)
}

/// [`compress`], writing the compressed bytes into `out` as the encoder emits them.
pub fn compress_into(
    compression: Compression,
    object: &str,
    parts: &[Bytes],
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let len: usize = parts.iter().map(Bytes::len).sum();
    let fail = |e: std::io::Error| Error::Encode {
        what: format!("data file `{object}`"),
        reason: format!("{} compression failed: {e}", compression.name()),
    };
    match compression {
        Compression::None => {
            for p in parts {
                out.write_all(p).map_err(fail)?;
            }
            Ok(())
        }
        Compression::Gzip => {
            let mut w = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            for p in parts {
                w.write_all(p).map_err(fail)?;
            }
            w.finish().map_err(fail)?;
            Ok(())
        }
        Compression::Zstd => {
            let mut w = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL).map_err(fail)?;
            w.include_contentsize(true).map_err(fail)?;
            // Without the frame checksum a flipped byte can decode to other text silently.
            w.include_checksum(true).map_err(fail)?;
            w.set_pledged_src_size(Some(len as u64)).map_err(fail)?;
            for p in parts {
                w.write_all(p).map_err(fail)?;
            }
            w.finish().map_err(fail)?;
            Ok(())
        }
    }
}

/// Decompresses a whole file; anything but exactly one complete member/frame is corrupt.
pub fn decompress(compression: Compression, object: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let corrupt = |e: std::io::Error| {
        Error::corrupt(
            object,
            Position::None,
            format!("does not decompress as {}: {e}", compression.name()),
        )
    };
    let mut out = Vec::with_capacity(bytes.len() * 4);
    match compression {
        Compression::None => return Ok(bytes.to_vec()),
        Compression::Gzip => {
            let mut r = flate2::bufread::GzDecoder::new(bytes);
            r.read_to_end(&mut out).map_err(corrupt)?;
            let rest = r.into_inner();
            if !rest.is_empty() {
                return Err(Error::corrupt(
                    object,
                    Position::Offset((bytes.len() - rest.len()) as u64),
                    format!("{} bytes after the gzip member", rest.len()),
                ));
            }
        }
        Compression::Zstd => {
            // The decoder reads concatenated frames; the sink writes one, either is accepted.
            let mut r = zstd::stream::read::Decoder::with_buffer(bytes).map_err(corrupt)?;
            r.read_to_end(&mut out).map_err(corrupt)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_compressions_round_trip_and_reject_damage() {
        let parts = vec![
            Bytes::from_static(b"header\n"),
            Bytes::from(b"row,1\n".repeat(1000)),
        ];
        let plain: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        for c in [Compression::Gzip, Compression::Zstd] {
            let z = compress(c, "t/CDC1", &parts).unwrap();
            assert!(z.len() < plain.len() / 10, "{} did not compress", c.name());
            assert_eq!(decompress(c, "t/CDC1", &z).unwrap(), plain);
            for cut in [0, 1, z.len() / 2, z.len() - 1] {
                let e = decompress(c, "t/CDC1", &z[..cut]).unwrap_err();
                assert!(
                    matches!(&e, Error::Corrupt { object, .. } if object == "t/CDC1"),
                    "{} cut at {cut}: {e}",
                    c.name()
                );
            }
            let mut flipped = z.clone();
            flipped[z.len() / 2] ^= 0x5a;
            assert!(
                matches!(
                    decompress(c, "t/CDC1", &flipped),
                    Err(Error::Corrupt { .. })
                ) || decompress(c, "t/CDC1", &flipped).unwrap() != plain
            );
        }
        let mut gz = compress(Compression::Gzip, "o", &parts).unwrap();
        gz.extend_from_slice(b"junk");
        assert!(matches!(
            decompress(Compression::Gzip, "o", &gz),
            Err(Error::Corrupt { .. })
        ));
    }
}
