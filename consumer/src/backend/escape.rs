//! The backslash escapes of the bulk text formats (PostgreSQL `COPY ... FROM STDIN` text,
//! MySQL `LOAD DATA ... ESCAPED BY '\'`): one loop, each format naming the bytes it escapes.
//! Runs without a special byte are copied whole.

use bytes::BytesMut;

/// Appends `s` to `buf`, each byte `escape` maps replaced by its escape.
pub(crate) fn escape_into(buf: &mut BytesMut, s: &[u8], escape: fn(u8) -> Option<&'static [u8]>) {
    let mut start = 0;
    for (i, ch) in s.iter().enumerate() {
        let Some(esc) = escape(*ch) else { continue };
        buf.extend_from_slice(&s[start..i]);
        buf.extend_from_slice(esc);
        start = i + 1;
    }
    buf.extend_from_slice(&s[start..]);
}

/// Backslash, tab, LF and CR: COPY's text format and LOAD DATA's field and line separators.
pub(crate) fn separators(ch: u8) -> Option<&'static [u8]> {
    Some(match ch {
        b'\\' => b"\\\\",
        b'\t' => b"\\t",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        _ => return None,
    })
}

/// [`separators`] and NUL (LOAD DATA).
pub(crate) fn separators_and_nul(ch: u8) -> Option<&'static [u8]> {
    match ch {
        0 => Some(b"\\0"),
        other => separators(other),
    }
}
