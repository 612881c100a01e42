//! Decoder of the `pgoutput` logical replication messages (protocol version 1).
//!
//! Each row of `pg_logical_slot_peek_binary_changes(.., 'proto_version', '1', ..)` carries one
//! message in its `data` column. The layout (PostgreSQL "Logical Replication Message Formats";
//! integers big-endian, strings NUL-terminated):
//!
//! ```text
//! 'B' Begin     final_lsn:i64 commit_time:i64 xid:i32
//! 'C' Commit    flags:u8 commit_lsn:i64 end_lsn:i64 commit_time:i64
//! 'O' Origin    lsn:i64 name:str
//! 'R' Relation  oid:u32 namespace:str name:str replident:u8 ncols:i16
//!               { flags:u8 (1 = key) name:str type_oid:u32 typmod:i32 } * ncols
//! 'Y' Type      oid:u32 namespace:str name:str
//! 'I' Insert    oid:u32 'N' tuple
//! 'U' Update    oid:u32 [('K' | 'O') tuple] 'N' tuple
//! 'D' Delete    oid:u32 ('K' | 'O') tuple
//! 'T' Truncate  nrels:i32 options:u8 oid:u32 * nrels
//! 'M' Message   (only with the `messages` option; skipped)
//! tuple         ncols:i16 { 'n' | 'u' | ('t' | 'b') len:i32 bytes } * ncols
//! ```
//!
//! `'u'` marks an unchanged TOAST value: the column was not rewritten and its value is not in
//! the stream. It decodes to [`Datum::UnchangedToast`], never to NULL; `toast.rs` resolves it.
//! Times are microseconds since 2000-01-01 UTC (the PostgreSQL epoch).
//!
//! Invariant: a malformed message is an error naming the message and offset, never a panic.

use crate::error::{CaptureError, Result};

/// An LSN (WAL position).
pub type Lsn = u64;

/// One column value of a tuple.
#[derive(Clone, Debug, PartialEq)]
pub enum Datum {
    /// SQL NULL.
    Null,
    /// An unchanged TOAST value (not sent).
    UnchangedToast,
    /// The value in the type's text output form.
    Text(String),
    /// The value in binary form (only when the `binary` option is on; we never ask for it).
    Binary(Vec<u8>),
}

/// One column of a Relation message.
#[derive(Clone, Debug, PartialEq)]
pub struct RelColumn {
    /// Part of the replica identity key.
    pub key: bool,
    /// Column name.
    pub name: String,
    /// Type oid.
    pub type_oid: u32,
    /// Type modifier (-1 when none).
    pub typmod: i32,
}

/// A Relation message: a table's shape as the following changes use it.
#[derive(Clone, Debug, PartialEq)]
pub struct Relation {
    /// The table's oid.
    pub oid: u32,
    /// Schema (namespace) name.
    pub namespace: String,
    /// Table name.
    pub name: String,
    /// Replica identity: `d` default (key), `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    /// Columns in table order (dropped columns are not sent).
    pub columns: Vec<RelColumn>,
}

/// One decoded pgoutput message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A transaction starts.
    Begin {
        /// LSN of its commit record.
        final_lsn: Lsn,
        /// Commit time, microseconds since 2000-01-01 UTC.
        commit_time: i64,
        /// Transaction id.
        xid: u32,
    },
    /// The transaction committed.
    Commit {
        /// LSN of the commit record.
        commit_lsn: Lsn,
        /// End of the commit record: confirming this LSN skips the transaction from then on.
        end_lsn: Lsn,
        /// Commit time, microseconds since 2000-01-01 UTC.
        commit_time: i64,
    },
    /// A table's shape.
    Relation(Relation),
    /// A non-built-in type's name.
    Type {
        /// Type oid.
        oid: u32,
        /// Schema of the type.
        namespace: String,
        /// Type name.
        name: String,
    },
    /// A new row.
    Insert {
        /// Table oid.
        rel: u32,
        /// The row.
        new: Vec<Datum>,
    },
    /// A changed row.
    Update {
        /// Table oid.
        rel: u32,
        /// The old key (`K`, identity DEFAULT/INDEX when the key changed) or the old row
        /// (`O`, identity FULL); absent when the key did not change.
        old: Option<OldTuple>,
        /// The new row.
        new: Vec<Datum>,
    },
    /// A removed row.
    Delete {
        /// Table oid.
        rel: u32,
        /// The old key or row.
        old: OldTuple,
    },
    /// Tables emptied.
    Truncate {
        /// Table oids.
        rels: Vec<u32>,
    },
    /// Anything we do not act on (Origin, logical decoding messages).
    Ignored(u8),
}

/// The old image of an Update or Delete.
#[derive(Clone, Debug, PartialEq)]
pub enum OldTuple {
    /// Only the replica identity key columns are meaningful (others are NULL).
    Key(Vec<Datum>),
    /// The whole old row (REPLICA IDENTITY FULL).
    Full(Vec<Datum>),
}

impl OldTuple {
    /// The values, whatever their kind.
    pub fn values(&self) -> &[Datum] {
        match self {
            OldTuple::Key(v) | OldTuple::Full(v) => v,
        }
    }
}

/// A cursor over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    kind: u8,
}

impl<'a> Reader<'a> {
    fn bad(&self, what: &str) -> CaptureError {
        CaptureError::Protocol(format!(
            "pgoutput message '{}' malformed at byte {}: {what}",
            self.kind as char, self.pos
        ))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return Err(self.bad(&format!("{n} more bytes expected")));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(self.i64()? as u64)
    }

    fn cstr(&mut self) -> Result<String> {
        let rest = &self.buf[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.bad("unterminated string"))?;
        let s = std::str::from_utf8(&rest[..end])
            .map_err(|_| self.bad("string is not UTF-8"))?
            .to_string();
        self.pos += end + 1;
        Ok(s)
    }

    fn tuple(&mut self) -> Result<Vec<Datum>> {
        let n = self.i16()?;
        if n < 0 {
            return Err(self.bad("negative column count"));
        }
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            out.push(match self.u8()? {
                b'n' => Datum::Null,
                b'u' => Datum::UnchangedToast,
                b't' => {
                    let bytes = self.sized()?;
                    Datum::Text(
                        String::from_utf8(bytes.to_vec())
                            .map_err(|_| self.bad("text value is not UTF-8"))?,
                    )
                }
                b'b' => Datum::Binary(self.sized()?.to_vec()),
                other => return Err(self.bad(&format!("unknown tuple kind {:?}", other as char))),
            });
        }
        Ok(out)
    }

    fn sized(&mut self) -> Result<&'a [u8]> {
        let len = self.i32()?;
        if len < 0 {
            return Err(self.bad("negative value length"));
        }
        self.take(len as usize)
    }

    fn old_or_new(&mut self) -> Result<(Option<OldTuple>, Vec<Datum>)> {
        let mut old = None;
        loop {
            match self.u8()? {
                b'K' => old = Some(OldTuple::Key(self.tuple()?)),
                b'O' => old = Some(OldTuple::Full(self.tuple()?)),
                b'N' => return Ok((old, self.tuple()?)),
                other => return Err(self.bad(&format!("unknown tuple tag {:?}", other as char))),
            }
        }
    }
}

/// Decodes one message.
pub fn decode(buf: &[u8]) -> Result<Message> {
    let Some(&kind) = buf.first() else {
        return Err(CaptureError::Protocol("empty pgoutput message".into()));
    };
    let mut r = Reader { buf, pos: 1, kind };
    let m = match kind {
        b'B' => Message::Begin {
            final_lsn: r.u64()?,
            commit_time: r.i64()?,
            xid: r.u32()?,
        },
        b'C' => {
            let _flags = r.u8()?;
            Message::Commit {
                commit_lsn: r.u64()?,
                end_lsn: r.u64()?,
                commit_time: r.i64()?,
            }
        }
        b'R' => Message::Relation(relation(&mut r)?),
        b'Y' => Message::Type {
            oid: r.u32()?,
            namespace: r.cstr()?,
            name: r.cstr()?,
        },
        b'I' => {
            let rel = r.u32()?;
            match r.u8()? {
                b'N' => Message::Insert {
                    rel,
                    new: r.tuple()?,
                },
                _ => return Err(r.bad("insert without 'N'")),
            }
        }
        b'U' => {
            let rel = r.u32()?;
            let (old, new) = r.old_or_new()?;
            Message::Update { rel, old, new }
        }
        b'D' => {
            let rel = r.u32()?;
            let old = match r.u8()? {
                b'K' => OldTuple::Key(r.tuple()?),
                b'O' => OldTuple::Full(r.tuple()?),
                _ => return Err(r.bad("delete without 'K' or 'O'")),
            };
            Message::Delete { rel, old }
        }
        b'T' => {
            let n = r.i32()?;
            let _options = r.u8()?;
            let rels = (0..n.max(0)).map(|_| r.u32()).collect::<Result<_>>()?;
            Message::Truncate { rels }
        }
        b'O' | b'M' => Message::Ignored(kind),
        other => {
            return Err(CaptureError::Protocol(format!(
                "unknown pgoutput message kind {:?}",
                other as char
            )))
        }
    };
    Ok(m)
}

fn relation(r: &mut Reader<'_>) -> Result<Relation> {
    let oid = r.u32()?;
    let namespace = r.cstr()?;
    let name = r.cstr()?;
    let replica_identity = r.u8()?;
    let n = r.i16()?;
    let mut columns = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n.max(0) {
        columns.push(RelColumn {
            key: r.u8()? & 1 == 1,
            name: r.cstr()?,
            type_oid: r.u32()?,
            typmod: r.i32()?,
        });
    }
    Ok(Relation {
        oid,
        namespace,
        name,
        replica_identity,
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(out: &mut Vec<u8>, vals: &[Option<&str>]) {
        out.extend_from_slice(&(vals.len() as i16).to_be_bytes());
        for v in vals {
            match v {
                None => out.push(b'n'),
                Some("\u{0}u") => out.push(b'u'),
                Some(s) => {
                    out.push(b't');
                    out.extend_from_slice(&(s.len() as i32).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
    }

    #[test]
    fn begin_and_commit() {
        let mut b = vec![b'B'];
        b.extend_from_slice(&0x1_0000_0010u64.to_be_bytes());
        b.extend_from_slice(&5_000_000i64.to_be_bytes());
        b.extend_from_slice(&77u32.to_be_bytes());
        assert_eq!(
            decode(&b).unwrap(),
            Message::Begin {
                final_lsn: 0x1_0000_0010,
                commit_time: 5_000_000,
                xid: 77
            }
        );
        let mut c = vec![b'C', 0];
        c.extend_from_slice(&10u64.to_be_bytes());
        c.extend_from_slice(&20u64.to_be_bytes());
        c.extend_from_slice(&30i64.to_be_bytes());
        assert_eq!(
            decode(&c).unwrap(),
            Message::Commit {
                commit_lsn: 10,
                end_lsn: 20,
                commit_time: 30
            }
        );
    }

    #[test]
    fn relation_and_update_with_unchanged_toast() {
        let mut m = vec![b'R'];
        m.extend_from_slice(&16384u32.to_be_bytes());
        m.extend_from_slice(b"public\0t\0d");
        m.extend_from_slice(&2i16.to_be_bytes());
        m.push(1);
        m.extend_from_slice(b"id\0");
        m.extend_from_slice(&23u32.to_be_bytes());
        m.extend_from_slice(&(-1i32).to_be_bytes());
        m.push(0);
        m.extend_from_slice(b"body\0");
        m.extend_from_slice(&25u32.to_be_bytes());
        m.extend_from_slice(&(-1i32).to_be_bytes());
        let Message::Relation(rel) = decode(&m).unwrap() else {
            panic!("not a relation")
        };
        assert_eq!(rel.columns.len(), 2);
        assert!(rel.columns[0].key && !rel.columns[1].key);
        assert_eq!(rel.replica_identity, b'd');

        let mut u = vec![b'U'];
        u.extend_from_slice(&16384u32.to_be_bytes());
        u.push(b'N');
        tuple(&mut u, &[Some("1"), Some("\u{0}u")]);
        assert_eq!(
            decode(&u).unwrap(),
            Message::Update {
                rel: 16384,
                old: None,
                new: vec![Datum::Text("1".into()), Datum::UnchangedToast]
            }
        );
    }

    #[test]
    fn delete_with_full_old_row_and_nulls() {
        let mut d = vec![b'D'];
        d.extend_from_slice(&9u32.to_be_bytes());
        d.push(b'O');
        tuple(&mut d, &[Some("ü"), None]);
        assert_eq!(
            decode(&d).unwrap(),
            Message::Delete {
                rel: 9,
                old: OldTuple::Full(vec![Datum::Text("ü".into()), Datum::Null])
            }
        );
    }

    #[test]
    fn truncated_messages_are_errors_not_panics() {
        for bytes in [
            &b"B\0\0"[..],
            b"R\0\0\0\x01public",
            b"I\0\0\0\x01N\0\x01t\0\0\0\x09ab",
            b"Z",
            b"",
        ] {
            assert!(matches!(decode(bytes), Err(CaptureError::Protocol(_))));
        }
    }
}
