//! The backslash escapes of the bulk text formats (PostgreSQL `COPY ... FROM STDIN` text,
//! MySQL `LOAD DATA ... ESCAPED BY '\'`): one loop, each format naming the bytes it escapes.
//! Runs without a special byte are copied whole.
//!
//! The loop is generic over the format's escape function so the compiler inlines it: this is
//! the bulk paths' per-byte loop (through a function pointer it was a call per byte, about a
//! fifth of the apply thread's CPU in a PostgreSQL replay profile).

use bytes::BytesMut;

/// Appends `s` to `buf`, each byte `escape` maps replaced by its escape.
#[inline]
pub(crate) fn escape_into<E>(buf: &mut BytesMut, s: &[u8], escape: E)
where
    E: Fn(u8) -> Option<&'static [u8]>,
{
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
#[inline]
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
#[inline]
pub(crate) fn separators_and_nul(ch: u8) -> Option<&'static [u8]> {
    match ch {
        0 => Some(b"\\0"),
        other => separators(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &[u8], escape: fn(u8) -> Option<&'static [u8]>) -> Vec<u8> {
        let mut buf = BytesMut::new();
        escape_into(&mut buf, s, escape);
        buf.to_vec()
    }

    #[test]
    fn special_bytes_are_escaped_and_runs_between_them_copied() {
        assert_eq!(escaped(b"plain", separators), b"plain");
        assert_eq!(escaped(b"", separators), b"");
        assert_eq!(
            escaped(b"a\\b\tc\nd\re", separators),
            b"a\\\\b\\tc\\nd\\re".to_vec()
        );
        assert_eq!(escaped(b"\t\t", separators), b"\\t\\t".to_vec());
        assert_eq!(escaped(b"x\0y", separators), b"x\0y".to_vec());
        assert_eq!(escaped(b"x\0y", separators_and_nul), b"x\\0y".to_vec());
    }
}
