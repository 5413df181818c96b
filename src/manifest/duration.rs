//! Durations as the manifest writes them: `250ms`, `1s`, `2m`, `1h`, `1m30s`, `1.5s` (Go's and compose's
//! spellings; `us`/`ns` work too). A bare `0` means zero.

use std::time::Duration;

/// The accepted forms, for hints.
pub const DURATION_FORMS: &str =
    "use a number with a unit, like `250ms`, `5s`, `2m`, `1h` or `1m30s`";

/// Parses `250ms`, `1s`, `2m`, `1h`, `1m30s`, `1.5s`; `None` when the text is not a duration.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (nanos, after) = component(rest)?;
        total = total.checked_add(nanos)?;
        rest = after;
    }
    let total = u64::try_from(total).ok()?;
    Some(Duration::from_nanos(total))
}

/// One `<number><unit>` at the start of `text`: its nanoseconds and the rest.
fn component(text: &str) -> Option<(u128, &str)> {
    let number_end = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(number_end);
    let unit_end = rest
        .find(|character: char| character.is_ascii_digit() || character == '.')
        .unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_end);
    let unit_nanos: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    Some((decimal_times(number, unit_nanos)?, rest))
}

/// `number` (like `1.5`) times `unit`, exactly, truncated to whole nanoseconds.
fn decimal_times(number: &str, unit: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if fraction.contains('.') || whole.len() > 20 || fraction.len() > 18 {
        return None;
    }
    let whole_value: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut value = whole_value.checked_mul(unit)?;
    if !fraction.is_empty() {
        let scale = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
        let fraction_value: u128 = fraction.parse().ok()?;
        value = value.checked_add(fraction_value.checked_mul(unit)? / scale)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(text: &str) -> Option<u128> {
        parse_duration(text).map(|duration| duration.as_millis())
    }

    #[test]
    fn accepts_single_units() {
        assert_eq!(millis("250ms"), Some(250));
        assert_eq!(millis("1s"), Some(1000));
        assert_eq!(millis("2m"), Some(120_000));
        assert_eq!(millis("1h"), Some(3_600_000));
        assert_eq!(millis("0"), Some(0));
        assert_eq!(millis("0s"), Some(0));
        assert_eq!(parse_duration("10us"), Some(Duration::from_micros(10)));
    }

    #[test]
    fn accepts_compound_and_fractions() {
        assert_eq!(millis("1m30s"), Some(90_000));
        assert_eq!(millis("1h2m3s4ms"), Some(3_723_004));
        assert_eq!(millis("1.5s"), Some(1500));
        assert_eq!(millis(".5s"), Some(500));
        assert_eq!(millis("0.25m"), Some(15_000));
    }

    #[test]
    fn rejects_other_text() {
        for text in [
            "", "5", "s", "1x", "1.2.3s", "-1s", "1 s", "ms", "1sm", ".s", "5sec",
        ] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
    }

    #[test]
    fn rejects_overflow_without_panicking() {
        assert_eq!(parse_duration("99999999999999999999h"), None);
        assert_eq!(parse_duration("9999999999999h"), None);
        assert_eq!(parse_duration(&"9".repeat(500)), None);
    }
}
