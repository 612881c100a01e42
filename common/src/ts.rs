//! Commit timestamps in TSO form.
//!
//! A TSO timestamp packs a physical wall-clock time in milliseconds and a logical counter:
//! `ts = physical_ms << 18 | logical`. Every commit ts and table version in the storage layout
//! is such a value, so any of them converts back to wall time (for date directories, lag, expiry).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Number of low bits that hold the logical counter.
pub const LOGICAL_BITS: u32 = 18;
const LOGICAL_MASK: u64 = (1 << LOGICAL_BITS) - 1;

/// A TSO commit timestamp (`physical_ms << 18 | logical`).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Ts(pub u64);

impl Ts {
    /// The zero timestamp, before every commit.
    pub const ZERO: Ts = Ts(0);

    /// Builds a timestamp from its physical (ms since the Unix epoch) and logical parts.
    /// The logical part is truncated to its 18 bits.
    pub fn from_parts(physical_ms: u64, logical: u64) -> Ts {
        Ts((physical_ms << LOGICAL_BITS) | (logical & LOGICAL_MASK))
    }

    /// The physical part: milliseconds since the Unix epoch.
    pub fn physical_ms(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// The logical counter.
    pub fn logical(self) -> u64 {
        self.0 & LOGICAL_MASK
    }

    /// Wall-clock time of the physical part.
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.physical_ms())
    }

    /// The timestamp of a wall-clock time, logical part 0 (times before the epoch give 0).
    pub fn from_system_time(t: SystemTime) -> Ts {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Ts::from_parts(ms, 0)
    }

    /// The current wall-clock time as a timestamp.
    pub fn now() -> Ts {
        Ts::from_system_time(SystemTime::now())
    }

    /// Civil date (UTC) of the physical part as `(year, month, day)`.
    pub fn civil_date(self) -> (i32, u32, u32) {
        civil_from_days((self.physical_ms() / 86_400_000) as i64)
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u64> for Ts {
    fn from(v: u64) -> Ts {
        Ts(v)
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian `(year, month, day)` (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((if m <= 2 { y + 1 } else { y }) as i32, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip() {
        let ts = Ts::from_parts(1_700_000_000_123, 42);
        assert_eq!(ts.physical_ms(), 1_700_000_000_123);
        assert_eq!(ts.logical(), 42);
        assert_eq!(ts.0, (1_700_000_000_123u64 << 18) | 42);
    }

    #[test]
    fn converts_to_wall_time_and_date() {
        // 2023-11-14T22:13:20.123Z
        let ts = Ts::from_parts(1_700_000_000_123, 7);
        assert_eq!(
            ts.to_system_time().duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_millis(1_700_000_000_123)
        );
        assert_eq!(ts.civil_date(), (2023, 11, 14));
        assert_eq!(Ts(0).civil_date(), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
