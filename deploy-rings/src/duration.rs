//! Durations as people write them in the rings file: `30s`, `5m`, `1h30m`, `2d`.
//!
//! The same text form is used when a plan is serialized, so a persisted plan reads like the file
//! it came from.

use std::time::Duration;

/// The units, largest first; a duration lists each at most once, in this order.
const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

/// Parses `30s`, `5m`, `1h30m`, `2d`, `0s`: whole numbers, each followed by a unit (d, h, m, s),
/// units from largest to smallest, no spaces. `None` for anything else (including overflow).
pub fn parse(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut seconds: u64 = 0;
    // Index into UNITS of the next unit allowed: enforces "largest first, each once".
    let mut next_unit = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let position = UNITS[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        seconds = seconds.checked_add(number.checked_mul(UNITS[position].1)?)?;
        next_unit = position + 1;
        rest = &rest[digits + unit.len_utf8()..];
    }
    Some(Duration::from_secs(seconds))
}

/// The shortest text `parse` reads back as `duration` (whole seconds; sub-second parts are
/// dropped, the file cannot express them): `1h30m`, `2d`, `0s`.
pub fn format(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    if seconds == 0 {
        return "0s".into();
    }
    let mut text = String::new();
    for (unit, size) in UNITS {
        if seconds >= size {
            text.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    text
}

/// `#[serde(with = "crate::duration::text")]`: a `Duration` as its text form.
pub(crate) mod text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*duration))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text)
            .ok_or_else(|| D::Error::custom(format!("{text:?} is not a duration (e.g. 1h30m)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_people_write() {
        let cases = [
            ("0s", 0),
            ("30s", 30),
            ("5m", 300),
            ("1h", 3_600),
            ("2d", 172_800),
            ("1m30s", 90),
            ("1h30m", 5_400),
            ("1d2h3m4s", 93_784),
            ("90m", 5_400),
        ];
        for (text, seconds) in cases {
            assert_eq!(parse(text), Some(Duration::from_secs(seconds)), "{text}");
        }
    }

    #[test]
    fn refuses_anything_else() {
        let cases = [
            "",
            "5",
            "m",
            "5 minutes",
            "5 m",
            "5M",
            "1.5h",
            "-5m",
            "30s1m",
            "1m1m",
            "5ms",
            "1w",
            "99999999999999999999s",
            "999999999999999d",
        ];
        for text in cases {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn formats_to_the_shortest_text_that_reads_back() {
        let cases = [
            (0, "0s"),
            (30, "30s"),
            (90, "1m30s"),
            (3_600, "1h"),
            (90_000, "1d1h"),
        ];
        for (seconds, text) in cases {
            assert_eq!(format(Duration::from_secs(seconds)), text);
            assert_eq!(parse(text), Some(Duration::from_secs(seconds)));
        }
    }
}
