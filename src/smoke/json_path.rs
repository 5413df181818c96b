//! The small JSONPath subset checks use: `$`, `.name`, `['name']`, `[index]`.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parses `$.items[0].id`; `Err` says what is wrong.
fn parse(path: &str) -> Result<Vec<Step>, String> {
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| format!("`{path}` must start with `$`"))?;
    let mut steps = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(character) = chars.next() {
        match character {
            '.' => {
                let mut key = String::new();
                while let Some(&next) = chars.peek() {
                    if next == '.' || next == '[' {
                        break;
                    }
                    key.push(next);
                    chars.next();
                }
                if key.is_empty() {
                    return Err(format!("`{path}` has an empty name after `.`"));
                }
                steps.push(Step::Key(key));
            }
            '[' => {
                let mut inside = String::new();
                loop {
                    match chars.next() {
                        Some(']') => break,
                        Some(next) => inside.push(next),
                        None => return Err(format!("`{path}` has an unclosed `[`")),
                    }
                }
                let quoted = inside
                    .strip_prefix('\'')
                    .and_then(|text| text.strip_suffix('\''))
                    .or_else(|| {
                        inside
                            .strip_prefix('"')
                            .and_then(|text| text.strip_suffix('"'))
                    });
                match quoted {
                    Some(key) => steps.push(Step::Key(key.to_string())),
                    None => steps.push(Step::Index(inside.trim().parse().map_err(|_| {
                        format!("`[{inside}]` in `{path}` is not an index or a quoted name")
                    })?)),
                }
            }
            other => return Err(format!("unexpected `{other}` in `{path}`")),
        }
    }
    Ok(steps)
}

/// The value at `path` in `document`; `Ok(None)` when the path leads nowhere.
pub fn select<'a>(document: &'a Value, path: &str) -> Result<Option<&'a Value>, String> {
    let mut current = document;
    for step in parse(path)? {
        let next = match (&step, current) {
            (Step::Key(key), Value::Object(map)) => map.get(key),
            (Step::Index(index), Value::Array(items)) => items.get(*index),
            _ => None,
        };
        match next {
            Some(value) => current = value,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// Whether `actual` matches `expected`; numbers compare by value (1 == 1.0), and a string
/// expectation matches a number or boolean with the same text (YAML writes `"1"` and `1` alike).
pub fn matches(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(_) | Value::Bool(_), Value::String(text)) => {
            actual.to_string().as_str() == text.as_str()
        }
        (Value::String(text), Value::Number(_) | Value::Bool(_)) => {
            text.as_str() == expected.to_string().as_str()
        }
        _ => actual == expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_select_nested_values() {
        let document = json!({"items": [{"id": 1, "name": "a"}], "odd key": true});
        assert_eq!(select(&document, "$.items[0].id").unwrap(), Some(&json!(1)));
        assert_eq!(
            select(&document, "$['odd key']").unwrap(),
            Some(&json!(true))
        );
        assert_eq!(select(&document, "$").unwrap(), Some(&document));
        assert_eq!(select(&document, "$.items[3]").unwrap(), None);
        assert_eq!(select(&document, "$.items.id").unwrap(), None);
    }

    #[test]
    fn bad_paths_say_why() {
        let document = json!({});
        assert!(select(&document, "items")
            .unwrap_err()
            .contains("must start with `$`"));
        assert!(select(&document, "$.items[0")
            .unwrap_err()
            .contains("unclosed"));
        assert!(select(&document, "$.items[x]")
            .unwrap_err()
            .contains("not an index"));
    }

    #[test]
    fn values_match_across_number_and_text_spellings() {
        assert!(matches(&json!(1), &json!(1.0)));
        assert!(matches(&json!("7"), &json!(7)));
        assert!(matches(&json!(7), &json!("7")));
        assert!(!matches(&json!(7), &json!(8)));
        assert!(matches(&json!({"a": [1]}), &json!({"a": [1]})));
    }
}
