//! The little JSON the service needs: escaping, an object builder that keeps key order, and a syntax check
//! (to decide whether a downstream body can be embedded as JSON or must be embedded as a string).
//! Owns no parsing into values: the service never needs to look inside a document.

use std::fmt::Write as _;

/// `text` escaped for use inside a JSON string (without the surrounding quotes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            control if (control as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", control as u32);
            }
            other => out.push(other),
        }
    }
    out
}

/// `text` as a JSON string literal.
pub fn string(text: &str) -> String {
    format!("\"{}\"", escape(text))
}

/// Builds a JSON object whose keys appear in insertion order.
#[derive(Debug, Default)]
pub struct Object {
    members: Vec<String>,
}

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a string member.
    pub fn string(self, key: &str, value: &str) -> Self {
        self.raw(key, &string(value))
    }

    /// Adds a number member.
    pub fn number(self, key: &str, value: impl Into<i128>) -> Self {
        self.raw(key, &value.into().to_string())
    }

    /// Adds a boolean member.
    pub fn boolean(self, key: &str, value: bool) -> Self {
        self.raw(key, if value { "true" } else { "false" })
    }

    /// Adds a member whose value is already JSON text.
    pub fn raw(mut self, key: &str, value: &str) -> Self {
        self.members.push(format!("{}:{}", string(key), value));
        self
    }

    /// Adds a member only when `value` is `Some`.
    pub fn optional_string(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.string(key, value),
            None => self,
        }
    }

    /// The object as JSON text.
    pub fn finish(&self) -> String {
        format!("{{{}}}", self.members.join(","))
    }
}

/// A JSON array of already-encoded values.
pub fn array<I: IntoIterator<Item = String>>(values: I) -> String {
    format!("[{}]", values.into_iter().collect::<Vec<_>>().join(","))
}

/// Whether `text` is one well-formed JSON value (RFC 8259), surrounding whitespace allowed.
pub fn is_valid(text: &str) -> bool {
    let mut checker = Checker {
        bytes: text.as_bytes(),
        position: 0,
    };
    checker.skip_whitespace();
    let valid = checker.value(0);
    checker.skip_whitespace();
    valid && checker.position == checker.bytes.len()
}

struct Checker<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Checker<'_> {
    const MAX_DEPTH: usize = 128;

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        self.position += usize::from(matched);
        matched
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.position += 1;
        }
    }

    fn value(&mut self, depth: usize) -> bool {
        if depth > Self::MAX_DEPTH {
            return false;
        }
        match self.peek() {
            Some(b'{') => self.sequence(b'}', depth, true),
            Some(b'[') => self.sequence(b']', depth, false),
            Some(b'"') => self.string(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn sequence(&mut self, close: u8, depth: usize, keyed: bool) -> bool {
        self.position += 1;
        self.skip_whitespace();
        if self.eat(close) {
            return true;
        }
        loop {
            if keyed {
                if !self.string() {
                    return false;
                }
                self.skip_whitespace();
                if !self.eat(b':') {
                    return false;
                }
                self.skip_whitespace();
            }
            if !self.value(depth + 1) {
                return false;
            }
            self.skip_whitespace();
            if self.eat(close) {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
            self.skip_whitespace();
        }
    }

    fn string(&mut self) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        while let Some(byte) = self.peek() {
            self.position += 1;
            match byte {
                b'"' => return true,
                b'\\' => {
                    let escaped = self.peek();
                    self.position += 1;
                    match escaped {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => {
                            let digits = self.bytes.get(self.position..self.position + 4);
                            if !digits.is_some_and(|d| d.iter().all(u8::is_ascii_hexdigit)) {
                                return false;
                            }
                            self.position += 4;
                        }
                        _ => return false,
                    }
                }
                0x00..=0x1F => return false,
                _ => {}
            }
        }
        false
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let matched = self.bytes[self.position..].starts_with(word);
        self.position += if matched { word.len() } else { 0 };
        matched
    }

    fn number(&mut self) -> bool {
        self.eat(b'-');
        if !self.eat(b'0') && !self.digits() {
            return false;
        }
        if self.eat(b'.') && !self.digits() {
            return false;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            return self.digits();
        }
        true
    }

    fn digits(&mut self) -> bool {
        let start = self.position;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.position += 1;
        }
        self.position > start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_control_characters() {
        assert_eq!(escape("a\"b\\c\nd\u{1}"), "a\\\"b\\\\c\\nd\\u0001");
        assert_eq!(string("héllo"), "\"héllo\"");
    }

    #[test]
    fn object_keeps_insertion_order() {
        let object = Object::new()
            .string("service", "user")
            .number("code", 200)
            .boolean("ok", true)
            .raw("item", "{\"id\":\"1\"}")
            .finish();
        assert_eq!(
            object,
            r#"{"service":"user","code":200,"ok":true,"item":{"id":"1"}}"#
        );
    }

    #[test]
    fn accepts_well_formed_documents() {
        for text in [
            "{}",
            "[]",
            " {\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\n\"]} ",
            "\"just a string\"",
            "0",
        ] {
            assert!(is_valid(text), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_documents() {
        for text in [
            "",
            "{",
            "{\"a\":}",
            "[1,]",
            "01",
            "hello",
            "{\"a\":1} trailing",
            "\"unterminated",
            "[1 2]",
        ] {
            assert!(!is_valid(text), "{text}");
        }
    }
}
