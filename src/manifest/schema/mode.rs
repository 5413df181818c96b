//! File modes (`mode:` of secrets, configs and tmpfs mounts) read as compose reads them: a plain
//! number with a leading `0` or `0o` is octal and another plain number decimal (yaml.v3); a string
//! is octal. A decimal that looks like an octal mode (`mode: 440`) gets a warning.

use super::super::model::format_mode;
use super::super::node::Node;
use super::check::{Checker, Kind};

/// The largest mode: permission bits plus setuid, setgid and sticky.
const MAX_MODE: u32 = 0o7777;

/// A file mode read as compose reads it (Go's yaml.v3, then `strconv`); see [`parse_mode`].
pub fn read_mode(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<u32> {
    let scalar = checker.scalar(node, field, "a file mode")?;
    let text = scalar.text.trim();
    let plain_number = matches!(scalar.kind, Kind::Integer(_));
    match parse_mode(text, plain_number) {
        Some(mode) if mode <= MAX_MODE => {
            if plain_number && !text.starts_with('0') && looks_octal(text) {
                checker.warning(
                    node,
                    field,
                    format!("`mode: {text}` is the decimal number {text}, the mode {}", format_mode(mode)),
                    format!("a mode without a leading 0 is decimal (as in compose); write `0{text}` for the octal mode"),
                );
            }
            Some(mode)
        }
        _ => {
            checker.error_with_hint(
                node,
                field,
                format!("`{text}` is not a file mode"),
                "write an octal mode like `0440` (owner and group read) or `0400`",
            );
            None
        }
    }
}

/// A plain number with a leading `0` or `0o` is octal and another plain number decimal (yaml.v3);
/// a string is octal (compose's `strconv.ParseInt(text, 8)`, also taking a `0o` prefix).
fn parse_mode(text: &str, plain_number: bool) -> Option<u32> {
    if plain_number && !text.starts_with('0') {
        return text.parse().ok();
    }
    let digits = text.strip_prefix("0o").unwrap_or(text);
    u32::from_str_radix(digits, 8).ok()
}

/// `440`, `644`: a decimal number whose digits read as a plausible octal mode.
fn looks_octal(text: &str) -> bool {
    text.len() >= 3 && text.chars().all(|digit| ('0'..='7').contains(&digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_read_as_compose_reads_them() {
        assert_eq!(parse_mode("0440", true), Some(0o440));
        assert_eq!(parse_mode("440", true), Some(440));
        assert_eq!(parse_mode("0", true), Some(0));
        assert_eq!(parse_mode("0440", false), Some(0o440));
        assert_eq!(parse_mode("440", false), Some(0o440));
        assert_eq!(parse_mode("0o600", false), Some(0o600));
        assert_eq!(parse_mode("0999", true), None);
        assert_eq!(parse_mode("rw-r--r--", false), None);
        assert_eq!(parse_mode("-1", true), None);
    }

    #[test]
    fn octal_looking_decimals() {
        assert!(looks_octal("440"));
        assert!(looks_octal("0644"));
        assert!(!looks_octal("288"));
        assert!(!looks_octal("44"));
    }
}
