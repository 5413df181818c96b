//! Sizes (`64m`, `1g`, bytes) and octal file modes, as compose and the Docker CLI read them.

use super::super::super::node::Node;
use super::super::check::{Checker, Kind};

const SIZE_HINT: &str = "write a number of bytes or a size like `64m`, `512k` or `1g`";

/// A size in bytes: a number, or `64m`, `1.5g`, `512kb` (powers of 1024, as the Docker CLI reads them).
pub fn read_size(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<u64> {
    let scalar = checker.scalar(node, field, "a size")?;
    match parse_bytes(&scalar.text).filter(|_| scalar.kind != Kind::Null) {
        Some(bytes) => Some(bytes),
        None => {
            let message = format!("invalid size `{}`", scalar.text);
            checker.error_with_hint(node, field, message, SIZE_HINT);
            None
        }
    }
}

/// `64m` → 67108864. Units b, k, m, g, t (also `kb`, `kib`, ...), any case; powers of 1024.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let split = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|rest| !rest.is_empty()))
        .unwrap_or(unit);
    let power = match unit {
        "" | "b" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    let number: f64 = number.parse().ok()?;
    let bytes = number * 1024f64.powi(power);
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_the_docker_cli() {
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("64m"), Some(64 * 1024 * 1024));
        assert_eq!(parse_bytes("64MB"), Some(64 * 1024 * 1024));
        assert_eq!(parse_bytes("1.5k"), Some(1536));
        assert_eq!(parse_bytes("2GiB"), Some(2 << 30));
        assert_eq!(parse_bytes("12b"), Some(12));
        for text in ["", "m", "1x", "-1", "1..2k"] {
            assert_eq!(parse_bytes(text), None, "{text:?}");
        }
    }
}
