//! [`DateSeparator`]: the granularity of the date directory a data file goes under (option
//! `date-separator`; `day` is what file expiry needs).

use crate::error::{Error, Result};

/// Date directory granularity.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DateSeparator {
    /// No date directory.
    None,
    /// `2006`
    Year,
    /// `2006-01`
    Month,
    /// `2006-01-02`
    Day,
}

impl DateSeparator {
    /// Parses `none | year | month | day`.
    pub fn parse(s: &str) -> Result<DateSeparator> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "" => Ok(DateSeparator::None),
            "year" => Ok(DateSeparator::Year),
            "month" => Ok(DateSeparator::Month),
            "day" => Ok(DateSeparator::Day),
            _ => Err(Error::param(
                "date-separator",
                format!("`{s}` is not one of none, year, month, day"),
            )),
        }
    }

    /// The option value.
    pub fn name(self) -> &'static str {
        match self {
            DateSeparator::None => "none",
            DateSeparator::Year => "year",
            DateSeparator::Month => "month",
            DateSeparator::Day => "day",
        }
    }
}
