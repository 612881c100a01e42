//! A borrowed scanner of one JSON text, for the canal-json fast path ([`super::fast`]).
//!
//! It reads the JSON grammar (RFC 8259) from a line already known to be UTF-8, borrowing
//! string contents from the line. It is deliberately partial: every
//! method returns `None` both for invalid JSON and for valid JSON it does not handle (a `\u`
//! escape of a surrogate, nesting deeper than [`MAX_DEPTH`]). `None` never becomes an error
//! here: the caller hands the line to the general decoder, which accepts or rejects it with
//! its own message. So whatever this scanner accepts must be valid JSON, and what it yields
//! must be what `serde_json` reads from the same text.

use std::borrow::Cow;

/// Deepest nesting the scanner skips through (serde_json's own limit is 128).
pub(super) const MAX_DEPTH: u32 = 100;

/// Bytes that end the plain run of a string: the closing quote, an escape, or a control
/// character (not allowed raw in a JSON string).
pub(super) const STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// A position in one JSON text.
pub(super) struct Scan<'a> {
    text: &'a str,
    pos: usize,
}

/// A JSON string as it appears between its quotes, and whether it holds escapes.
#[derive(Clone, Copy)]
pub(super) struct RawStr<'a> {
    pub(super) raw: &'a str,
    pub(super) escaped: bool,
}

impl<'a> RawStr<'a> {
    /// The string's value: borrowed when it holds no escapes.
    pub(super) fn value(self) -> Option<Cow<'a, str>> {
        if !self.escaped {
            return Some(Cow::Borrowed(self.raw));
        }
        let mut out = String::with_capacity(self.raw.len());
        let mut rest = self.raw;
        while let Some(i) = rest.find('\\') {
            out.push_str(&rest[..i]);
            let e = *rest.as_bytes().get(i + 1)?;
            out.push(match e {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                // A surrogate (half of a pair, or lone) goes to the general decoder.
                b'u' => char::from_u32(u32::from_str_radix(rest.get(i + 2..i + 6)?, 16).ok()?)?,
                _ => return None,
            });
            let used = if e == b'u' { 6 } else { 2 };
            rest = rest.get(i + used..)?;
        }
        out.push_str(rest);
        Some(Cow::Owned(out))
    }
}

impl<'a> Scan<'a> {
    /// A scanner at the start of `text`.
    pub(super) fn new(text: &'a str) -> Self {
        Scan { text, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte after JSON whitespace, without consuming it.
    pub(super) fn peek(&mut self) -> Option<u8> {
        let b = self.bytes();
        while let Some(&c) = b.get(self.pos) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                return Some(c);
            }
        }
        None
    }

    /// Consumes `c` (after whitespace).
    pub(super) fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.pos += 1)
    }

    /// Whether only whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// After an object member or array element: `true` at `,` (another follows), `false` at
    /// the closing `close`.
    pub(super) fn more(&mut self, close: u8) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.pos += 1;
                Some(true)
            }
            c if c == close => {
                self.pos += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// Consumes `{` or `[` and tells whether the container is empty (then its closing bracket
    /// is consumed too).
    pub(super) fn open(&mut self, open: u8, close: u8) -> Option<bool> {
        self.eat(open)?;
        if self.peek()? == close {
            self.pos += 1;
            return Some(true);
        }
        Some(false)
    }

    /// Consumes `null` when it comes next.
    pub(super) fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(true);
        }
        Some(false)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let b = self.bytes();
        (b.get(self.pos..self.pos + word.len())? == word).then(|| self.pos += word.len())
    }

    /// Consumes `true` or `false`.
    pub(super) fn boolean(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => None,
        }
    }

    /// Consumes a string; escapes are checked for form, not yet decoded.
    pub(super) fn string(&mut self) -> Option<RawStr<'a>> {
        self.eat(b'"')?;
        let b = self.bytes();
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Strings here are mostly short: a table lookup per byte beats a memchr call.
            let i = self.pos + b[self.pos..].iter().position(|&c| STOP[c as usize])?;
            if b[i] < 0x20 {
                return None;
            }
            if b[i] == b'"' {
                self.pos = i + 1;
                return Some(RawStr {
                    raw: self.text.get(start..i)?,
                    escaped,
                });
            }
            escaped = true;
            self.pos = match b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i + 2,
                b'u' if b.get(i + 2..i + 6)?.iter().all(u8::is_ascii_hexdigit) => i + 6,
                _ => return None,
            };
        }
    }

    /// Consumes a non-negative integer written as plain digits that fits a `u64`.
    pub(super) fn u64(&mut self) -> Option<u64> {
        self.peek()?;
        let b = self.bytes();
        let start = self.pos;
        let mut v: u64 = 0;
        while let Some(&c) = b.get(self.pos).filter(|c| c.is_ascii_digit()) {
            v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.pos += 1;
        }
        let digits = self.pos - start;
        let leading_zero = digits > 1 && b[start] == b'0';
        let fraction = matches!(b.get(self.pos), Some(b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !fraction).then_some(v)
    }

    /// Consumes any JSON value (checked for form, not kept).
    pub(super) fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                if self.open(b'{', b'}')? {
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.eat(b':')?;
                    self.skip_value(depth + 1)?;
                    if !self.more(b'}')? {
                        return Some(());
                    }
                }
            }
            b'[' => {
                if self.open(b'[', b']')? {
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    if !self.more(b']')? {
                        return Some(());
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// Consumes a number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        let b = self.bytes();
        let digits = |pos: &mut usize| {
            let start = *pos;
            while b.get(*pos).is_some_and(u8::is_ascii_digit) {
                *pos += 1;
            }
            (*pos > start).then_some(())
        };
        let mut p = self.pos;
        if b.get(p) == Some(&b'-') {
            p += 1;
        }
        if b.get(p) == Some(&b'0') {
            p += 1;
        } else {
            digits(&mut p)?;
        }
        if b.get(p) == Some(&b'.') {
            p += 1;
            digits(&mut p)?;
        }
        if matches!(b.get(p), Some(b'e' | b'E')) {
            p += 1;
            if matches!(b.get(p), Some(b'+' | b'-')) {
                p += 1;
            }
            digits(&mut p)?;
        }
        self.pos = p;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skips(text: &str) -> bool {
        let mut s = Scan::new(text);
        s.skip_value(0).is_some() && s.at_end()
    }

    #[test]
    fn skips_valid_json_and_refuses_the_rest() {
        for ok in [
            r#"{"a":[1,-0.5,2e10,1E-3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"],"b":{}}"#,
            "[]",
            "0",
            " { } ",
        ] {
            assert!(skips(ok), "{ok}");
        }
        for bad in [
            "01",
            "1.",
            "-",
            "1e",
            "[1,]",
            "{\"a\"}",
            "{\"a\":1,}",
            "\"\\x\"",
            "\"\\u12\"",
            "tru",
            "[1 2]",
            "\"abc",
        ] {
            assert!(!skips(bad), "{bad}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(!skips(&deep));
    }

    #[test]
    fn strings_decode_like_serde_json() {
        for text in [
            r#""plain""#,
            r#""a\"b\\c\/d\b\f\n\r\t""#,
            r#""\u003c\u00e9\u2028x""#,
            "\"é ü\"",
        ] {
            let mut s = Scan::new(text);
            let got = s.string().and_then(RawStr::value).unwrap();
            let want: String = serde_json::from_str(text).unwrap();
            assert_eq!(got, want);
        }
        // Surrogates go to the general decoder.
        let mut s = Scan::new(r#""\ud83d\ude00""#);
        assert!(s.string().and_then(RawStr::value).is_none());
    }

    #[test]
    fn u64_is_plain_digits_only() {
        for (text, want) in [
            ("0", Some(0)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("01", None),
            ("1.0", None),
            ("1e3", None),
            ("-1", None),
        ] {
            assert_eq!(Scan::new(text).u64(), want, "{text}");
        }
    }
}
