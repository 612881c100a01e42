//! [`DateDir`]: the date directory of a data file (`2006`, `2006-01`, `2006-01-02`), taken from
//! the commit ts (UTC) under the date separator; four-digit years, zero-padded months and days.

use crate::options::DateSeparator;
use crate::ts::Ts;
use std::fmt::Write as _;

/// A date directory.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DateDir {
    /// `2006`
    Year(i32),
    /// `2006-01`
    Month(i32, u32),
    /// `2006-01-02`
    Day(i32, u32, u32),
}

impl DateDir {
    /// The date directory of a commit ts under a separator (`None` for `DateSeparator::None`).
    pub fn for_ts(sep: DateSeparator, ts: Ts) -> Option<DateDir> {
        let (y, m, d) = ts.civil_date();
        match sep {
            DateSeparator::None => None,
            DateSeparator::Year => Some(DateDir::Year(y)),
            DateSeparator::Month => Some(DateDir::Month(y, m)),
            DateSeparator::Day => Some(DateDir::Day(y, m, d)),
        }
    }

    /// The separator this date directory belongs to.
    pub fn separator(self) -> DateSeparator {
        match self {
            DateDir::Year(_) => DateSeparator::Year,
            DateDir::Month(..) => DateSeparator::Month,
            DateDir::Day(..) => DateSeparator::Day,
        }
    }

    pub(super) fn write(self, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = match self {
            DateDir::Year(y) => write!(out, "{y:04}"),
            DateDir::Month(y, m) => write!(out, "{y:04}-{m:02}"),
            DateDir::Day(y, m, d) => write!(out, "{y:04}-{m:02}-{d:02}"),
        };
    }

    /// Parses a date directory of the given separator.
    pub fn parse(sep: DateSeparator, s: &str) -> Option<DateDir> {
        let num = |part: &str, len: usize| -> Option<u32> {
            (part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
        };
        let mut it = s.split('-');
        let y = num(it.next()?, 4)? as i32;
        let dir = match sep {
            DateSeparator::None => return None,
            DateSeparator::Year => DateDir::Year(y),
            DateSeparator::Month => {
                DateDir::Month(y, num(it.next()?, 2).filter(|m| (1..=12).contains(m))?)
            }
            DateSeparator::Day => {
                let m = num(it.next()?, 2).filter(|m| (1..=12).contains(m))?;
                DateDir::Day(y, m, num(it.next()?, 2).filter(|d| (1..=31).contains(d))?)
            }
        };
        it.next().is_none().then_some(dir)
    }
}

impl std::fmt::Display for DateDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::with_capacity(10);
        self.write(&mut s);
        f.write_str(&s)
    }
}
