//! [`CronSpec`]: the schedule of `file-cleanup-cron-spec`, in the cron syntax TiCDC's storage
//! sink reads (robfig/cron v1's parser, which TiCDC builds with `cron.New()`).
//!
//! # Syntax
//!
//! Six fields, the last optional (five fields mean "any day of the week"):
//!
//! ```text
//! <second> <minute> <hour> <day of month> <month> [<day of week>]
//!   0-59     0-59    0-23      1-31       1-12 or JAN-DEC   0-6 or SUN-SAT (0 = Sunday)
//! ```
//!
//! Each field is a comma-separated list of `*` (or `?`), `N`, `A-B`, each optionally followed by
//! `/STEP` (`N/STEP` runs from N to the field's maximum). Names are case-insensitive. When both
//! day fields are restricted a day matches if either matches (classic cron); when one of them is
//! `*` or `?`, only the other one counts. The descriptors `@yearly` (`@annually`), `@monthly`,
//! `@weekly`, `@daily` (`@midnight`), `@hourly` and `@every <duration>` are accepted too.
//! TiCDC's default is `0 0 2 * * *` (02:00 every day).
//!
//! # Time zone
//!
//! The spec is evaluated in **UTC**. TiCDC evaluates it in the server's local time zone; a spec
//! copied from a TiCDC changefeed on a server that is not on UTC fires at a shifted hour here
//! (docs/operations.md says so). Retention itself is by UTC date directories either way.
//!
//! # Invariants
//!
//! * [`CronSpec::next_after`] is strictly after its argument, and every instant it returns
//!   matches every field.
//! * A spec that parses fires at least once in any eight consecutive years (a spec that can never
//!   fire, such as `0 0 0 30 2 *`, is rejected at parse time instead of silently never running).

use crate::error::{Error, Result};
use crate::ts::civil_from_days;
use std::time::Duration;

/// The option name, for errors.
const NAME: &str = "file-cleanup-cron-spec";

/// A parsed cron schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSpec {
    text: String,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Fields(Fields),
    Every(Duration),
}

/// One bit per allowed value of each field.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fields {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    /// `*` / `?` in the day-of-month field.
    dom_any: bool,
    /// `*` / `?` in the day-of-week field.
    dow_any: bool,
}

/// One field's bounds and value names.
struct FieldDef {
    what: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECOND: FieldDef = FieldDef {
    what: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: FieldDef = FieldDef {
    what: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldDef = FieldDef {
    what: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldDef = FieldDef {
    what: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldDef = FieldDef {
    what: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAY_OF_WEEK: FieldDef = FieldDef {
    what: "day of week",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// How far ahead a schedule is searched: eight years hold every calendar pattern a cron field
/// can express that ever fires (leap days included).
const SEARCH_SECONDS: i64 = 8 * 366 * 86_400;

impl CronSpec {
    /// Parses a spec; errors name `file-cleanup-cron-spec`, the field and the problem.
    pub fn parse(text: &str) -> Result<CronSpec> {
        let trimmed = text.trim();
        let kind = match trimmed.strip_prefix('@') {
            Some(d) => descriptor(d)?,
            None => Kind::Fields(fields(trimmed)?),
        };
        let spec = CronSpec {
            text: trimmed.to_string(),
            kind,
        };
        // 2000-01-01T00:00:00Z: a leap year starts the search window.
        if spec.next_after_secs(946_684_800 - 1).is_none() {
            return Err(bad(format!("`{trimmed}` never fires (no such date)")));
        }
        Ok(spec)
    }

    /// The spec as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first firing time strictly after `after_ms` (milliseconds since the epoch, UTC), in
    /// milliseconds; `None` when the spec does not fire within eight years.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        let secs = i64::try_from(after_ms / 1000).ok()?;
        match &self.kind {
            // `@every` runs at fixed intervals from when it is asked (robfig does the same).
            Kind::Every(d) => after_ms.checked_add(d.as_millis().try_into().ok()?),
            Kind::Fields(_) => self
                .next_after_secs(secs)
                .and_then(|s| u64::try_from(s).ok())
                .map(|s| s * 1000),
        }
    }

    fn next_after_secs(&self, after: i64) -> Option<i64> {
        let f = match &self.kind {
            Kind::Every(d) => return after.checked_add(i64::try_from(d.as_secs()).ok()?.max(1)),
            Kind::Fields(f) => f,
        };
        let limit = after + SEARCH_SECONDS;
        let mut s = after + 1;
        while s <= limit {
            let days = s.div_euclid(86_400);
            let sod = s.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            let (h, mi, se) = (sod / 3600, sod / 60 % 60, sod % 60);
            if !bit(f.months, m as i64) {
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                s = days_from_civil(ny, nm, 1) * 86_400;
            } else if !f.day_matches(d, weekday(days)) {
                s = (days + 1) * 86_400;
            } else if !bit(f.hours, h) {
                s = days * 86_400 + (h + 1) * 3600;
            } else if !bit(f.minutes, mi) {
                s = days * 86_400 + h * 3600 + (mi + 1) * 60;
            } else if !bit(f.seconds, se) {
                s += 1;
            } else {
                return Some(s);
            }
        }
        None
    }
}

impl std::fmt::Display for CronSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Fields {
    fn day_matches(&self, day_of_month: u32, day_of_week: u32) -> bool {
        let dom = bit(self.days_of_month, day_of_month.into());
        let dow = bit(self.days_of_week, day_of_week.into());
        if self.dom_any || self.dow_any {
            dom && dow
        } else {
            dom || dow
        }
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::param(NAME, msg)
}

fn bit(set: u64, v: i64) -> bool {
    (0..64).contains(&v) && set & (1 << v) != 0
}

/// 0 = Sunday; 1970-01-01 was a Thursday.
fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

/// Days since 1970-01-01 of a proleptic Gregorian date (inverse of [`civil_from_days`]).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(if m <= 2 { y - 1 } else { y });
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn descriptor(d: &str) -> Result<Kind> {
    let every = |s: &str| fields(s).map(Kind::Fields);
    match d.to_ascii_lowercase().as_str() {
        "yearly" | "annually" => every("0 0 0 1 1 *"),
        "monthly" => every("0 0 0 1 * *"),
        "weekly" => every("0 0 0 * * 0"),
        "daily" | "midnight" => every("0 0 0 * * *"),
        "hourly" => every("0 0 * * * *"),
        other => match other.strip_prefix("every") {
            Some(dur) if dur.starts_with(char::is_whitespace) => {
                let dur = dur.trim();
                let d = humantime::parse_duration(dur)
                    .map_err(|e| bad(format!("`@every {dur}`: {e}")))?;
                if d < Duration::from_secs(1) {
                    return Err(bad(format!("`@every {dur}` is shorter than one second")));
                }
                Ok(Kind::Every(d))
            }
            _ => Err(bad(format!(
                "unknown descriptor `@{d}` (expected @yearly, @annually, @monthly, @weekly, \
                 @daily, @midnight, @hourly or @every <duration>)"
            ))),
        },
    }
}

fn fields(text: &str) -> Result<Fields> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    if !(5..=6).contains(&parts.len()) {
        return Err(bad(format!(
            "`{text}` has {} fields; expected 6 (second minute hour day-of-month month \
             day-of-week) or 5 (day-of-week left out), as TiCDC reads it",
            parts.len()
        )));
    }
    let dow_text = parts.get(5).copied().unwrap_or("*");
    Ok(Fields {
        seconds: field(parts[0], &SECOND)?,
        minutes: field(parts[1], &MINUTE)?,
        hours: field(parts[2], &HOUR)?,
        days_of_month: field(parts[3], &DAY_OF_MONTH)?,
        months: field(parts[4], &MONTH)?,
        days_of_week: field(dow_text, &DAY_OF_WEEK)?,
        dom_any: is_any(parts[3]),
        dow_any: is_any(dow_text),
    })
}

fn is_any(field: &str) -> bool {
    field.starts_with('*') || field.starts_with('?')
}

/// The bit set of one field: a comma-separated list of ranges.
fn field(text: &str, def: &FieldDef) -> Result<u64> {
    let mut set = 0u64;
    for part in text.split(',') {
        set |=
            range(part, def).map_err(|msg| bad(format!("{} field `{text}`: {msg}", def.what)))?;
    }
    Ok(set)
}

/// `*`, `?`, `N`, `A-B`, each with an optional `/STEP`.
fn range(part: &str, def: &FieldDef) -> std::result::Result<u64, String> {
    let (span, step) = match part.split_once('/') {
        Some((span, step)) => {
            let step: u32 = step
                .parse()
                .map_err(|_| format!("step `{step}` is not a number"))?;
            if step == 0 {
                return Err("step 0".into());
            }
            (span, Some(step))
        }
        None => (part, None),
    };
    let (lo, hi) = if span == "*" || span == "?" {
        (def.min, def.max)
    } else if let Some((a, b)) = span.split_once('-') {
        (value(a, def)?, value(b, def)?)
    } else {
        let v = value(span, def)?;
        // `N/STEP` runs to the field's maximum.
        (v, if step.is_some() { def.max } else { v })
    };
    if lo > hi {
        return Err(format!("range `{span}` runs backwards"));
    }
    let step = step.unwrap_or(1);
    Ok((lo..=hi).step_by(step as usize).fold(0, |s, v| s | 1 << v))
}

fn value(text: &str, def: &FieldDef) -> std::result::Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    let v = match def.names.iter().position(|n| *n == lower) {
        Some(i) => i as u32 + def.min,
        None => text
            .parse::<u32>()
            .map_err(|_| format!("`{text}` is not a number or a name"))?,
    };
    if !(def.min..=def.max).contains(&v) {
        return Err(format!("{v} is out of range {}..={}", def.min, def.max));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds of a UTC civil time.
    fn at(y: i32, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> u64 {
        ((days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * 1000) as u64
    }

    fn next(spec: &str, after: u64) -> u64 {
        CronSpec::parse(spec).unwrap().next_after(after).unwrap()
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 59, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(weekday(days_from_civil(2026, 12, 3)), 4); // a Thursday
    }

    #[test]
    fn ticdc_default_fires_at_two_every_day() {
        let t = at(2026, 12, 3, 1, 59, 59);
        assert_eq!(next("0 0 2 * * *", t), at(2026, 12, 3, 2, 0, 0));
        // strictly after: at 02:00:00 the next one is tomorrow's
        assert_eq!(
            next("0 0 2 * * *", at(2026, 12, 3, 2, 0, 0)),
            at(2026, 12, 4, 2, 0, 0)
        );
        // five fields: day of week left out
        assert_eq!(next("0 0 2 * *", t), at(2026, 12, 3, 2, 0, 0));
    }

    #[test]
    fn lists_ranges_steps_and_names() {
        let t = at(2026, 12, 3, 10, 7, 0);
        assert_eq!(next("*/15 * * * * *", t), at(2026, 12, 3, 10, 7, 15));
        assert_eq!(next("0 5-10/5 * * * *", t), at(2026, 12, 3, 10, 10, 0));
        assert_eq!(next("0 0 9,12 * * *", t), at(2026, 12, 3, 12, 0, 0));
        // Sundays at 03:30; 2026-12-06 is a Sunday
        assert_eq!(next("0 30 3 * * SUN", t), at(2026, 12, 6, 3, 30, 0));
        assert_eq!(next("0 30 3 ? * sun", t), at(2026, 12, 6, 3, 30, 0));
        // the first of next month, across a year
        assert_eq!(next("0 0 0 1 * *", t), at(2027, 1, 1, 0, 0, 0));
        assert_eq!(next("0 0 0 1 JAN-mar *", t), at(2027, 1, 1, 0, 0, 0));
        // `N/STEP` runs to the maximum
        assert_eq!(next("0 50/4 * * * *", t), at(2026, 12, 3, 10, 50, 0));
    }

    #[test]
    fn restricted_day_fields_or_together() {
        // the 15th or any Monday; after Thu 2026-12-03 comes Mon 2026-12-07 first
        let t = at(2026, 12, 3, 12, 0, 0);
        assert_eq!(next("0 0 0 15 * MON", t), at(2026, 12, 7, 0, 0, 0));
        // with `*` in the day of week only the day of month counts
        assert_eq!(next("0 0 0 15 * *", t), at(2026, 12, 15, 0, 0, 0));
    }

    #[test]
    fn leap_days_and_descriptors() {
        let t = at(2026, 12, 3, 0, 0, 0);
        assert_eq!(next("0 0 0 29 2 *", t), at(2028, 2, 29, 0, 0, 0));
        assert_eq!(next("@daily", t), at(2026, 12, 4, 0, 0, 0));
        assert_eq!(next("@hourly", t), at(2026, 12, 3, 1, 0, 0));
        assert_eq!(next("@weekly", t), at(2026, 12, 6, 0, 0, 0));
        assert_eq!(next("@yearly", t), at(2027, 1, 1, 0, 0, 0));
        assert_eq!(next("@every 90s", t), t + 90_000);
    }

    #[test]
    fn bad_specs_name_the_option_and_the_problem() {
        let err = |s: &str| match CronSpec::parse(s) {
            Err(Error::InvalidParameter { name, reason }) => {
                assert_eq!(name, NAME);
                reason
            }
            other => panic!("{s}: expected an error, got {other:?}"),
        };
        assert!(err("0 0 2 * * * *").contains("7 fields"));
        assert!(err("0 0 2 *").contains("4 fields"));
        assert!(err("60 0 2 * * *").contains("second field"));
        assert!(err("0 0 24 * * *").contains("out of range 0..=23"));
        assert!(err("0 0 2 * * 7").contains("day of week"));
        assert!(err("0 0 2 * FOO *").contains("`FOO` is not a number"));
        assert!(err("0 0 5-2 * * *").contains("backwards"));
        assert!(err("*/0 * * * * *").contains("step 0"));
        assert!(err("0 0 0 30 2 *").contains("never fires"));
        assert!(err("@fortnightly").contains("unknown descriptor"));
        assert!(err("@every 10ms").contains("shorter than one second"));
    }
}
