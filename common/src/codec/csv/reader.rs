//! The csv record reader: splits a whole object into records of raw fields, one record at a
//! time, returning the byte offset each record starts at. The physical line of an offset is
//! counted only when an error needs it ([`RecordReader::line_of`]), never per record.
//!
//! Hand-written rather than the `csv` crate's: delimiters of up to three characters,
//! multi-byte quote characters and the backslash escapes are beyond it. It finds the bytes
//! that end a run (the first byte of the delimiter, the terminator or the quote, a backslash)
//! with `memchr` (a byte loop over short fields measured slower) and borrows field text from
//! the input unless a field holds doubled quotes or escapes; such a field is copied once,
//! into a buffer of its exact length. The common shape (a one-byte quote and delimiter) has its
//! own loop with fewer checks per field (`read_simple`). When the whole input is UTF-8 (checked
//! once), a borrowed field also carries its text as `str`, so values need no UTF-8 check of
//! their own: every cut falls next to a whole delimiter, terminator or quote character, so on
//! a char boundary (`str::get` checks it all the same). A record not ended by the terminator (a
//! truncated object) is an error; after an error the reader is at the end of its input, so it
//! never loops.
//!
//! The buffers of copied fields are taken back from the previous record's fields when the next
//! record is read, and reused (at most [`SPARE_BUFFERS`] kept): a file whose records each hold
//! a field with doubled quotes allocates for the first records only. A caller that takes a
//! buffer out of its field (a long text moved into its value) leaves none to reuse.

use std::borrow::Cow;

/// True when `hay` starts with the short pattern `pat` (a delimiter, terminator or null text);
/// a plain loop, cheaper than a `memcmp` call for the few bytes involved.
#[inline]
pub(super) fn starts(hay: &[u8], pat: &[u8]) -> bool {
    hay.len() >= pat.len() && hay.iter().zip(pat).all(|(a, b)| a == b)
}

/// Position of `needle` in `hay`.
pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        memchr::memchr(needle[0], hay)
    } else {
        memchr::memmem::find(hay, needle)
    }
}

/// Most copy buffers the reader keeps for reuse (a record rarely holds more copied fields).
pub(super) const SPARE_BUFFERS: usize = 16;

/// One field as read: the raw bytes (quotes and escapes included) and the text they stand for.
pub(super) struct RawField<'a> {
    pub(super) raw: &'a [u8],
    pub(super) quoted: bool,
    pub(super) text: Cow<'a, [u8]>,
    /// The text as `str`, when it is borrowed from an input that is UTF-8 as a whole.
    pub(super) str_text: Option<&'a str>,
}

/// Reads records one by one, returning the offset each starts at.
pub(super) struct RecordReader<'a, 'c> {
    delim: &'c [u8],
    term: &'c [u8],
    quote: Option<&'c [u8]>,
    buf: &'a [u8],
    /// `buf` as `str` when it is UTF-8 as a whole.
    whole: Option<&'a str>,
    pos: usize,
    /// Emptied buffers of earlier records' copied fields, for the next copies.
    spare: Vec<Vec<u8>>,
}

impl<'a, 'c> RecordReader<'a, 'c> {
    /// A reader of `buf` with this delimiter, terminator and quote (`None`: escapes instead).
    pub(super) fn new(
        delim: &'c [u8],
        term: &'c [u8],
        quote: Option<&'c [u8]>,
        buf: &'a [u8],
    ) -> Self {
        RecordReader {
            delim,
            term,
            quote,
            buf,
            whole: std::str::from_utf8(buf).ok(),
            pos: 0,
            spare: Vec::new(),
        }
    }

    /// Reads the next record into `fields`; `Ok(None)` at the end of the input. Returns the
    /// byte offset the record starts at, with the error too.
    pub(super) fn next(
        &mut self,
        fields: &mut Vec<RawField<'a>>,
    ) -> std::result::Result<Option<usize>, (usize, String)> {
        self.reclaim(fields);
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let start = self.pos;
        let r = match self.quote {
            Some(&[q]) if self.delim.len() == 1 => self.read_simple(q, fields),
            _ => self.read_fields(fields),
        };
        r.map(|()| Some(start)).map_err(|e| (start, e))
    }

    /// Empties `fields`, keeping the buffers of its copied fields for reuse.
    fn reclaim(&mut self, fields: &mut Vec<RawField<'a>>) {
        for f in fields.drain(..) {
            if let Cow::Owned(mut v) = f.text {
                if self.spare.len() < SPARE_BUFFERS && v.capacity() > 0 {
                    v.clear();
                    self.spare.push(v);
                }
            }
        }
    }

    /// An empty buffer for a copied field of at most `len` bytes: a spare one when there is
    /// one, else a new one of exactly that size.
    fn buffer(&mut self, len: usize) -> Vec<u8> {
        match self.spare.pop() {
            Some(mut v) => {
                v.reserve(len);
                v
            }
            None => Vec::with_capacity(len),
        }
    }

    /// The physical line (1-based) that byte `offset` of the input is on.
    pub(super) fn line_of(&self, offset: usize) -> u64 {
        let before = &self.buf[..offset.min(self.buf.len())];
        1 + memchr::memchr_iter(b'\n', before).count() as u64
    }

    /// [`Self::read_fields`] for the common shape: quoting on, a one-byte quote and a one-byte
    /// delimiter (any terminator). Same fields, same errors, fewer checks per field.
    fn read_simple(
        &mut self,
        q: u8,
        fields: &mut Vec<RawField<'a>>,
    ) -> std::result::Result<(), String> {
        const TRUNCATED: &str = "record is missing its terminator (truncated object?)";
        let buf = self.buf;
        let (d, t) = (self.delim[0], self.term);
        loop {
            let start = self.pos;
            if buf.get(start) == Some(&q) {
                let open = start + 1;
                let mut i = open;
                let mut doubled = 0;
                let end = loop {
                    let Some(j) = memchr::memchr(q, &buf[i..]) else {
                        self.pos = buf.len();
                        return Err("unterminated quoted field (truncated object?)".into());
                    };
                    if buf.get(i + j + 1) == Some(&q) {
                        doubled += 1;
                        i += j + 2;
                    } else {
                        break i + j;
                    }
                };
                let (text, str_text) = if doubled == 0 {
                    (
                        Cow::Borrowed(&buf[open..end]),
                        self.whole.and_then(|w| w.get(open..end)),
                    )
                } else {
                    let mut o = self.buffer(end - open - doubled);
                    let mut rest = &buf[open..end];
                    while let Some(k) = memchr::memchr(q, rest) {
                        // Every quote inside is doubled: keep one of the pair.
                        o.extend_from_slice(&rest[..=k]);
                        rest = &rest[k + 2..];
                    }
                    o.extend_from_slice(rest);
                    (Cow::Owned(o), None)
                };
                self.pos = end + 1;
                fields.push(RawField {
                    raw: &buf[start..self.pos],
                    quoted: true,
                    text,
                    str_text,
                });
            } else {
                let mut i = start;
                loop {
                    let Some(j) = memchr::memchr2(d, t[0], &buf[i..]) else {
                        self.pos = buf.len();
                        return Err(TRUNCATED.into());
                    };
                    i += j;
                    if buf[i] == d || starts(&buf[i..], t) {
                        break;
                    }
                    i += 1;
                }
                self.pos = i;
                fields.push(RawField {
                    raw: &buf[start..i],
                    quoted: false,
                    text: Cow::Borrowed(&buf[start..i]),
                    str_text: self.whole.and_then(|w| w.get(start..i)),
                });
            }
            match buf.get(self.pos) {
                Some(&c) if c == d => self.pos += 1,
                Some(_) if starts(&buf[self.pos..], t) => {
                    self.pos += t.len();
                    return Ok(());
                }
                None => return Err(TRUNCATED.into()),
                Some(_) => {
                    // Skip to the end of the line so the reader does not loop.
                    self.pos = buf.len();
                    return Err("unexpected characters after a closing quote".into());
                }
            }
        }
    }

    fn read_fields(&mut self, fields: &mut Vec<RawField<'a>>) -> std::result::Result<(), String> {
        const TRUNCATED: &str = "record is missing its terminator (truncated object?)";
        let buf = self.buf;
        let (d, t) = (self.delim, self.term);
        loop {
            let field_start = self.pos;
            let quote = match self.quote {
                Some(q) if buf.get(self.pos) == Some(&q[0]) && starts(&buf[self.pos..], q) => {
                    Some(q)
                }
                _ => None,
            };
            if let Some(q) = quote {
                // First find the closing quote, counting doubled quotes; only a field that
                // holds some is copied, into a buffer of its exact length.
                let open = self.pos + q.len();
                let mut i = open;
                let mut doubled = 0;
                let q0 = q[0];
                let end = loop {
                    let Some(j) = memchr::memchr(q0, &buf[i..]) else {
                        self.pos = buf.len();
                        return Err("unterminated quoted field (truncated object?)".into());
                    };
                    let at = i + j;
                    if q.len() > 1 && !starts(&buf[at..], q) {
                        i = at + 1;
                    } else if buf.get(at + q.len()) == Some(&q0) && starts(&buf[at + q.len()..], q)
                    {
                        doubled += 1;
                        i = at + 2 * q.len();
                    } else {
                        break at;
                    }
                };
                let (text, str_text) = if doubled == 0 {
                    (
                        Cow::Borrowed(&buf[open..end]),
                        self.whole.and_then(|w| w.get(open..end)),
                    )
                } else {
                    let mut o = self.buffer(end - open - doubled * q.len());
                    let mut rest = &buf[open..end];
                    while let Some(k) = find(rest, q) {
                        // Every quote inside is doubled: keep one of the pair.
                        o.extend_from_slice(&rest[..k + q.len()]);
                        rest = &rest[k + 2 * q.len()..];
                    }
                    o.extend_from_slice(rest);
                    (Cow::Owned(o), None)
                };
                self.pos = end + q.len();
                fields.push(RawField {
                    raw: &buf[field_start..self.pos],
                    quoted: true,
                    text,
                    str_text,
                });
            } else {
                let escapes = self.quote.is_none();
                let mut i = self.pos;
                let mut seg = i;
                let mut owned: Option<Vec<u8>> = None;
                loop {
                    let hit = if escapes {
                        memchr::memchr3(d[0], t[0], b'\\', &buf[i..])
                    } else {
                        memchr::memchr2(d[0], t[0], &buf[i..])
                    };
                    let Some(j) = hit else {
                        self.pos = buf.len();
                        return Err(TRUNCATED.into());
                    };
                    i += j;
                    if escapes && buf[i] == b'\\' {
                        let Some(&e) = buf.get(i + 1) else {
                            self.pos = buf.len();
                            return Err(TRUNCATED.into());
                        };
                        let o = owned.get_or_insert_with(|| self.buffer(0));
                        o.extend_from_slice(&buf[seg..i]);
                        o.push(match e {
                            b'r' => b'\r',
                            b'n' => b'\n',
                            other => other,
                        });
                        i += 2;
                        seg = i;
                    } else if starts(&buf[i..], d) || starts(&buf[i..], t) {
                        break;
                    } else {
                        i += 1;
                    }
                }
                let (text, str_text) = match owned {
                    Some(mut o) => {
                        o.extend_from_slice(&buf[seg..i]);
                        (Cow::Owned(o), None)
                    }
                    None => (
                        Cow::Borrowed(&buf[seg..i]),
                        self.whole.and_then(|w| w.get(seg..i)),
                    ),
                };
                self.pos = i;
                fields.push(RawField {
                    raw: &buf[field_start..i],
                    quoted: false,
                    text,
                    str_text,
                });
            }
            let rest = &buf[self.pos..];
            if rest.first() == Some(&d[0]) && starts(rest, d) {
                self.pos += d.len();
            } else if starts(rest, t) {
                self.pos += t.len();
                return Ok(());
            } else if rest.is_empty() {
                return Err(TRUNCATED.into());
            } else {
                // Skip to the end of the line so the reader does not loop.
                self.pos = buf.len();
                return Err("unexpected characters after a closing quote".into());
            }
        }
    }
}
