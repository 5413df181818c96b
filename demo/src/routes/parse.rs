//! `ROUTES` text → [`Route`]s: environment expansion, splitting into entries, and one parser per part.

use std::fmt;

use super::template::{is_identifier, Template};
use super::{Action, Call, Pattern, Route, Segment};

/// Why `ROUTES` could not be used; names the entry and the offending part.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteError {
    /// The entry as written (empty for environment errors).
    pub entry: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RouteError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entry.is_empty() {
            write!(formatter, "invalid `ROUTES`: {}", self.message)
        } else {
            write!(
                formatter,
                "invalid route `{}`: {}",
                self.entry, self.message
            )
        }
    }
}

impl std::error::Error for RouteError {}

/// Expands `${VAR}` and `${VAR:-default}` from `lookup`; an unset variable without a default is an error.
/// A `$` not followed by `{` is literal.
pub fn expand_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, RouteError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| RouteError {
            entry: String::new(),
            message: format!("unterminated `${{` in `{}`", &rest[start..]),
        })?;
        let expression = &after[..end];
        let (name, default) = match expression.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expression, None),
        };
        let value = lookup(name)
            .filter(|value| !(value.is_empty() && default.is_some()))
            .or(default.map(str::to_string))
            .ok_or_else(|| RouteError {
                entry: String::new(),
                message: format!("environment variable `{name}` is not set"),
            })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses route entries separated by `;` or newlines (not inside `{...}` or `"..."`). Blank entries and
/// entries starting with `#` are skipped.
pub fn parse(text: &str) -> Result<Vec<Route>, RouteError> {
    split_entries(text)
        .into_iter()
        .map(str::trim)
        .filter(|entry| !entry.is_empty() && !entry.starts_with('#'))
        .map(|entry| {
            parse_entry(entry).map_err(|message| RouteError {
                entry: entry.to_string(),
                message,
            })
        })
        .collect()
}

fn split_entries(text: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut start) = (0usize, false, false, 0);
    for (index, character) in text.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '{' if !in_string => depth += 1,
            '}' if !in_string => depth = depth.saturating_sub(1),
            ';' | '\n' if !in_string && depth == 0 => {
                entries.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    entries.push(&text[start..]);
    entries
}

fn parse_entry(entry: &str) -> Result<Route, String> {
    let (head, action) = entry
        .split_once("=>")
        .ok_or("expected `METHOD /path => ACTION`")?;
    let mut words = head.split_whitespace();
    let (Some(method), Some(pattern), None) = (words.next(), words.next(), words.next()) else {
        return Err("expected `METHOD /path` before `=>`".to_string());
    };
    let pattern = parse_pattern(pattern)?;
    Ok(Route {
        method: parse_method(method)?,
        action: parse_action(action.trim(), &pattern)?,
        pattern,
    })
}

fn parse_method(method: &str) -> Result<Option<String>, String> {
    if method == "*" || method.eq_ignore_ascii_case("ANY") {
        return Ok(None);
    }
    if method.is_empty() || !method.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!("invalid method `{method}`"));
    }
    Ok(Some(method.to_ascii_uppercase()))
}

fn parse_pattern(text: &str) -> Result<Pattern, String> {
    if !text.starts_with('/') {
        return Err(format!("path `{text}` must start with `/`"));
    }
    let mut segments = Vec::new();
    for part in super::split_path(text) {
        let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if is_identifier(name) => Segment::Param(name.to_string()),
            Some(name) => return Err(format!("invalid parameter name `{name}` in `{text}`")),
            None if part.contains(['{', '}']) => {
                return Err(format!("a parameter must be a whole segment in `{text}`"))
            }
            None => Segment::Literal(part.to_string()),
        };
        if let Segment::Param(name) = &segment {
            if segments.contains(&segment) {
                return Err(format!("parameter `{name}` appears twice in `{text}`"));
            }
        }
        segments.push(segment);
    }
    Ok(Pattern {
        text: text.to_string(),
        segments,
    })
}

fn parse_action(text: &str, pattern: &Pattern) -> Result<Action, String> {
    let (keyword, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    match keyword {
        "json" => parse_respond(rest.trim(), pattern, "application/json"),
        "text" => parse_respond(rest.trim(), pattern, "text/plain; charset=utf-8"),
        "call" => parse_calls(text, pattern),
        other => Err(format!(
            "unknown action `{other}` (expected `json`, `text` or `call`)"
        )),
    }
}

fn template(text: &str, pattern: &Pattern) -> Result<Template, String> {
    Template::new(text, |name| pattern.params().any(|param| param == name))
        .map_err(|name| format!("`{{{name}}}` is not a parameter of `{}`", pattern.text))
}

fn parse_respond(
    text: &str,
    pattern: &Pattern,
    content_type: &'static str,
) -> Result<Action, String> {
    let (status, body) = match text.split_once(char::is_whitespace).unwrap_or((text, "")) {
        (code, body) if code.len() == 3 && code.chars().all(|c| c.is_ascii_digit()) => {
            (code.parse::<u16>().map_err(|e| e.to_string())?, body.trim())
        }
        _ => (200, text),
    };
    if !(200..=599).contains(&status) {
        return Err(format!("status {status} is outside 200..=599"));
    }
    let body = template(body, pattern)?;
    let sample: super::Params = pattern
        .params()
        .map(|n| (n.to_string(), "x".to_string()))
        .collect();
    if content_type == "application/json"
        && !body.text().is_empty()
        && !crate::json::is_valid(&body.render(&sample, crate::json::escape))
    {
        return Err(format!("json body `{}` is not valid JSON", body.text()));
    }
    Ok(Action::Respond {
        status,
        content_type,
        body,
    })
}

/// `call URL [as NAME] [, call URL [as NAME]]...`
fn parse_calls(text: &str, pattern: &Pattern) -> Result<Action, String> {
    let spaced = text.replace(',', " , ");
    let mut words = spaced.split_whitespace().peekable();
    let mut calls: Vec<Call> = Vec::new();
    loop {
        if words.next() != Some("call") {
            return Err("expected `call URL [as NAME]`".to_string());
        }
        let url = words.next().ok_or("`call` needs a URL")?;
        let host = crate::http::client::Url::parse(url)
            .map_err(|message| format!("call URL `{url}`: {message}"))?
            .host;
        let name = match words.peek() {
            Some(&"as") => {
                words.next();
                words.next().ok_or("`as` needs a name")?.to_string()
            }
            _ => host,
        };
        if calls.iter().any(|call| call.name == name) {
            return Err(format!(
                "two calls are named `{name}`: add `as NAME` to one"
            ));
        }
        calls.push(Call {
            url: template(url, pattern)?,
            name,
        });
        match words.next() {
            None => return Ok(Action::Call(calls)),
            Some(",") => {}
            Some(other) => {
                return Err(format!(
                    "unexpected `{other}` after call (separate calls with `,`)"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "ITEM_URL" => Some("http://item:8080".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(
            expand_env("${ITEM_URL}/items/{id} ${NOPE:-x} ${EMPTY:-y} $HOME", env),
            Ok("http://item:8080/items/{id} x y $HOME".to_string())
        );
        let error = expand_env("${NOPE}", env).expect_err("unset");
        assert_eq!(
            error.to_string(),
            "invalid `ROUTES`: environment variable `NOPE` is not set"
        );
    }

    #[test]
    fn parses_the_chain_example() {
        let routes = parse(
            r#"GET /items/{id} => json {"id": "{id}", "name": "item {id}"};
               GET /users/{id} => call http://item:8080/items/{id} as item"#,
        )
        .expect("valid routes");
        assert_eq!(routes.len(), 2);
        assert!(matches!(
            &routes[0].action,
            Action::Respond { status: 200, .. }
        ));
        let Action::Call(calls) = &routes[1].action else {
            panic!("expected a call: {:?}", routes[1].action);
        };
        assert_eq!(calls[0].name, "item");
        assert_eq!(calls[0].url.text(), "http://item:8080/items/{id}");
    }

    #[test]
    fn semicolons_inside_json_do_not_split_entries() {
        let routes =
            parse("GET /a => json {\"text\": \"x;y\"}\n# comment\n\nPOST /b => text 201 ok")
                .expect("valid routes");
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[1].method.as_deref(), Some("POST"));
        assert!(matches!(
            routes[1].action,
            Action::Respond { status: 201, .. }
        ));
    }

    #[test]
    fn several_calls_default_to_host_names() {
        let routes = parse(
            "GET /o/{id} => call http://item:8080/items/{id}, call http://stock/s/{id} as stock",
        )
        .expect("valid routes");
        let Action::Call(calls) = &routes[0].action else {
            panic!("expected calls");
        };
        let names: Vec<_> = calls.iter().map(|call| call.name.as_str()).collect();
        assert_eq!(names, ["item", "stock"]);
    }

    #[test]
    fn errors_name_the_entry_and_the_problem() {
        let cases = [
            ("GET /a", "expected `METHOD /path => ACTION`"),
            ("GET a => json {}", "path `a` must start with `/`"),
            (
                "GET /a/{id} => call http://x/{idd}",
                "`{idd}` is not a parameter of `/a/{id}`",
            ),
            (
                "GET /a => json {nope",
                "json body `{nope` is not valid JSON",
            ),
            (
                "GET /a => call https://x/",
                "call URL `https://x/`: only `http://` URLs are supported",
            ),
            (
                "GET /a => call http://x/, call http://x/y",
                "two calls are named `x`: add `as NAME` to one",
            ),
            (
                "GET /a => redirect /b",
                "unknown action `redirect` (expected `json`, `text` or `call`)",
            ),
            (
                "GET /a/x{id} => json {}",
                "a parameter must be a whole segment in `/a/x{id}`",
            ),
            ("GET /a => json 700 {}", "status 700 is outside 200..=599"),
        ];
        for (entry, message) in cases {
            let error = parse(entry).expect_err(entry);
            assert_eq!(error.entry, entry);
            assert_eq!(error.message, message, "{entry}");
        }
    }
}
