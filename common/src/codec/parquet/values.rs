//! Value conversions between the text forms the event model carries (DECIMAL, DATE, TIME,
//! DATETIME, TIMESTAMP) and Parquet's physical values. Each pair is exact within its range:
//! `to_*` errors (a reason string) on text outside it, `from_*` never fails on the values
//! `to_*` produces and names the problem on others.

/// Microseconds in a day.
pub const DAY_MICROS: i64 = 86_400_000_000;

/// Bytes of the FIXED_LEN_BYTE_ARRAY holding any unscaled value of `precision` digits
/// (two's complement, big-endian): the smallest `n` with `10^p - 1 <= 2^(8n-1) - 1`.
pub fn decimal_len(precision: u32) -> usize {
    ((f64::from(precision) * std::f64::consts::LOG2_10 + 1.0) / 8.0).ceil() as usize
}

/// `text` (`-123.45`) as the `len`-byte unscaled value at `scale`, at most `precision` digits.
pub fn decimal_to_bytes(
    text: &str,
    precision: u32,
    scale: u32,
    len: usize,
) -> Result<Vec<u8>, String> {
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digit = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digit(int) || !digit(frac) {
        return Err(format!("`{text}` is not a decimal number"));
    }
    let scale = scale as usize;
    let kept = frac.len().min(scale);
    if frac[kept..].bytes().any(|b| b != b'0') {
        return Err(format!("`{text}` has more than {scale} fraction digits"));
    }
    let int = int.trim_start_matches('0');
    if int.len() + scale > precision as usize {
        return Err(format!(
            "`{text}` does not fit DECIMAL({precision},{scale})"
        ));
    }
    let mut out = vec![0u8; len];
    let digits = int
        .bytes()
        .chain(frac[..kept].bytes())
        .chain(std::iter::repeat_n(b'0', scale - kept));
    for d in digits {
        // out = out * 10 + d, big-endian
        let mut carry = u32::from(d - b'0');
        for b in out.iter_mut().rev() {
            let v = u32::from(*b) * 10 + carry;
            *b = v as u8;
            carry = v >> 8;
        }
        if carry != 0 {
            return Err(format!("`{text}` overflows {len} bytes"));
        }
    }
    if negative {
        negate(&mut out);
    }
    Ok(out)
}

/// The decimal text of an unscaled two's complement big-endian value at `scale`.
pub fn decimal_from_bytes(bytes: &[u8], scale: u32) -> String {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut mag = bytes.to_vec();
    if negative {
        negate(&mut mag);
    }
    let mut digits = Vec::new();
    while mag.iter().any(|&b| b != 0) {
        let mut rem = 0u32;
        for b in mag.iter_mut() {
            let v = (rem << 8) | u32::from(*b);
            *b = (v / 10) as u8;
            rem = v % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    let scale = scale as usize;
    while digits.len() <= scale {
        digits.push(b'0');
    }
    digits.reverse();
    let mut s = String::with_capacity(digits.len() + 2);
    if negative && digits.iter().any(|&d| d != b'0') {
        s.push('-');
    }
    let point = digits.len() - scale;
    s.push_str(std::str::from_utf8(&digits[..point]).unwrap_or("0"));
    if scale > 0 {
        s.push('.');
        s.push_str(std::str::from_utf8(&digits[point..]).unwrap_or("0"));
    }
    s
}

fn negate(bytes: &mut [u8]) {
    let mut carry = 1u16;
    for b in bytes.iter_mut().rev() {
        let v = u16::from(!*b) + carry;
        *b = v as u8;
        carry = v >> 8;
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of days since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn number(s: &str, len: usize) -> Option<i64> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD` as days since the epoch; zero dates and impossible days are errors.
pub fn date_to_days(text: &str) -> Result<i32, String> {
    let bad = || format!("`{text}` is not a calendar date (Parquet DATE has no zero date)");
    let mut it = text.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    let (y, m, d) = (
        number(y, 4).ok_or_else(bad)?,
        number(m, 2).ok_or_else(bad)?,
        number(d, 2).ok_or_else(bad)?,
    );
    if !(1..=12).contains(&m) || d < 1 {
        return Err(bad());
    }
    let days = days_from_civil(y, m, d);
    if civil_from_days(days) != (y, m, d) {
        return Err(bad());
    }
    i32::try_from(days).map_err(|_| bad())
}

/// The `YYYY-MM-DD` text of days since the epoch (years 0..=9999).
pub fn date_from_days(days: i32) -> Result<String, String> {
    let (y, m, d) = civil_from_days(i64::from(days));
    if !(0..=9999).contains(&y) {
        return Err(format!("DATE {days} days is outside years 0000..9999"));
    }
    Ok(format!("{y:04}-{m:02}-{d:02}"))
}

/// `HH:MM:SS[.ffffff]` within one day as microseconds since midnight.
pub fn time_to_micros(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a time of day 00:00:00..23:59:59.999999 (Parquet TIME)");
    let (hms, frac) = text.split_once('.').unwrap_or((text, ""));
    let mut it = hms.splitn(3, ':');
    let (Some(h), Some(m), Some(s)) = (it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    let (h, m, s) = (
        number(h, 2).ok_or_else(bad)?,
        number(m, 2).ok_or_else(bad)?,
        number(s, 2).ok_or_else(bad)?,
    );
    if h > 23 || m > 59 || s > 59 || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let micros = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().map_err(|_| bad())? * 10i64.pow(6 - frac.len() as u32)
    };
    Ok(((h * 60 + m) * 60 + s) * 1_000_000 + micros)
}

/// The `HH:MM:SS[.f]` text of microseconds since midnight, with at least `fsp` fraction digits.
pub fn time_from_micros(micros: i64, fsp: u32) -> Result<String, String> {
    if !(0..DAY_MICROS).contains(&micros) {
        return Err(format!("TIME {micros} µs is outside one day"));
    }
    let secs = micros / 1_000_000;
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    push_fraction(&mut s, micros % 1_000_000, fsp);
    Ok(s)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` as microseconds since the epoch, read as UTC wall time.
pub fn datetime_to_micros(text: &str) -> Result<i64, String> {
    let (date, time) = text
        .split_once(' ')
        .ok_or_else(|| format!("`{text}` is not `YYYY-MM-DD HH:MM:SS`"))?;
    let days = date_to_days(date)?;
    let t = time_to_micros(time)?;
    Ok(i64::from(days) * DAY_MICROS + t)
}

/// The `YYYY-MM-DD HH:MM:SS[.f]` text of microseconds since the epoch.
pub fn datetime_from_micros(micros: i64, fsp: u32) -> Result<String, String> {
    let days = micros.div_euclid(DAY_MICROS);
    let days = i32::try_from(days).map_err(|_| format!("TIMESTAMP {micros} µs is out of range"))?;
    let date = date_from_days(days)?;
    let time = time_from_micros(micros.rem_euclid(DAY_MICROS), fsp)?;
    Ok(format!("{date} {time}"))
}

/// Appends `.ffffff` cut to `fsp` digits (more when the value has more significant digits).
fn push_fraction(s: &mut String, micros: i64, fsp: u32) {
    let full = format!("{micros:06}");
    let needed = full.trim_end_matches('0').len();
    let digits = needed.max(fsp.min(6) as usize);
    if digits > 0 {
        s.push('.');
        s.push_str(&full[..digits]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_trip_at_every_width() {
        for (text, p, s, back) in [
            ("123.450", 12, 3, "123.450"),
            ("-0.001", 12, 3, "-0.001"),
            ("0", 10, 0, "0"),
            ("-999999999.999", 12, 3, "-999999999.999"),
            ("1.5", 10, 2, "1.50"),
            (
                "-99999999999999999999999999999999999999999999999999999999999999999",
                65,
                0,
                "-99999999999999999999999999999999999999999999999999999999999999999",
            ),
            (
                "0.000000000000000000000000000001",
                65,
                30,
                "0.000000000000000000000000000001",
            ),
        ] {
            let len = decimal_len(p);
            let b = decimal_to_bytes(text, p, s, len).unwrap();
            assert_eq!(decimal_from_bytes(&b, s), back, "{text}");
        }
        assert_eq!(decimal_len(9), 4);
        assert_eq!(decimal_len(18), 8);
        assert_eq!(decimal_len(38), 16);
        assert!(decimal_to_bytes("1234", 3, 0, 2).is_err());
        assert!(decimal_to_bytes("1.234", 10, 2, 5).is_err());
        assert!(decimal_to_bytes("1e5", 10, 2, 5).is_err());
    }

    #[test]
    fn temporal_values_round_trip_and_reject_what_parquet_cannot_hold() {
        for d in [
            "1970-01-01",
            "1000-02-29",
            "2000-02-29",
            "9999-12-31",
            "0001-01-01",
        ] {
            if d == "1000-02-29" {
                assert!(date_to_days(d).is_err(), "1000 is not a leap year");
                continue;
            }
            assert_eq!(date_from_days(date_to_days(d).unwrap()).unwrap(), d);
        }
        assert!(date_to_days("0000-00-00").is_err());
        assert_eq!(
            time_from_micros(time_to_micros("23:59:59.5").unwrap(), 0).unwrap(),
            "23:59:59.5"
        );
        assert_eq!(
            time_from_micros(time_to_micros("01:02:03").unwrap(), 3).unwrap(),
            "01:02:03.000"
        );
        assert!(time_to_micros("838:59:59").is_err());
        assert!(time_to_micros("-01:00:00").is_err());
        for t in [
            "1971-01-01 00:00:00",
            "2037-12-31 23:59:59.123456",
            "1900-03-01 12:00:00",
        ] {
            assert_eq!(
                datetime_from_micros(datetime_to_micros(t).unwrap(), 0).unwrap(),
                t
            );
        }
    }
}
