//! Variable interpolation in scalar values (compose's rules) and `.env`-style files. Pure: the caller
//! passes the variables in.
//!
//! - `$VAR`, `${VAR}`: the value, or empty when unset.
//! - `${VAR:-default}` (unset or empty), `${VAR-default}` (unset): the default, itself interpolated.
//! - `${VAR:+other}` (set and not empty), `${VAR+other}` (set): `other`.
//! - `${VAR:?message}` (unset or empty), `${VAR?message}` (unset): an error naming the variable.
//! - `$$`: a literal `$`.

use std::collections::BTreeMap;

/// How deeply `${A:-${B:-...}}` may nest.
const MAX_NESTING: usize = 16;

/// Why a value could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationError {
    /// `${VAR:?message}` with `VAR` unset (or empty).
    Required { variable: String, message: String },
    /// Not a valid `${...}` expression.
    Invalid { message: String },
}

impl InterpolationError {
    /// The message and the hint a person reads.
    pub fn explain(&self) -> (String, String) {
        match self {
            InterpolationError::Required { variable, message } => {
                let text = if message.is_empty() {
                    format!("required variable `{variable}` is not set")
                } else {
                    format!("required variable `{variable}` is not set: {message}")
                };
                let hint =
                    format!("set `{variable}` in the environment or in `.env` beside the manifest");
                (text, hint)
            }
            InterpolationError::Invalid { message } => (
                format!("invalid variable: {message}"),
                "write `${VAR}`, `${VAR:-default}` or `${VAR:?message}`; `$$` is a literal `$`"
                    .into(),
            ),
        }
    }
}

/// Replaces variables in `text` with values from `variables`.
pub fn interpolate(
    text: &str,
    variables: &BTreeMap<String, String>,
) -> Result<String, InterpolationError> {
    expand(text, variables, 0)
}

fn expand(
    text: &str,
    variables: &BTreeMap<String, String>,
    depth: usize,
) -> Result<String, InterpolationError> {
    if depth > MAX_NESTING {
        return Err(invalid("variables are nested too deeply"));
    }
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        output.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            output.push('$');
            rest = tail;
        } else if let Some(inside) = after.strip_prefix('{') {
            let close = matching_brace(inside)
                .ok_or_else(|| invalid(&format!("`${{{inside}` has no closing `}}`")))?;
            output.push_str(&braced(&inside[..close], variables, depth)?);
            rest = &inside[close + 1..];
        } else {
            let length = name_length(after);
            if length == 0 {
                output.push('$'); // a lone `$` stays as it is
            } else {
                output.push_str(lookup(variables, &after[..length]).unwrap_or(""));
            }
            rest = &after[length..];
        }
    }
    output.push_str(rest);
    Ok(output)
}

/// `VAR`, `VAR:-default`, `VAR?message`, ... (the text between `${` and `}`).
fn braced(
    expression: &str,
    variables: &BTreeMap<String, String>,
    depth: usize,
) -> Result<String, InterpolationError> {
    let length = name_length(expression);
    let (name, operator) = expression.split_at(length);
    if name.is_empty() {
        return Err(invalid(&format!(
            "`${{{expression}}}` is not a variable name"
        )));
    }
    let value = lookup(variables, name);
    if operator.is_empty() {
        return Ok(value.unwrap_or("").to_string());
    }
    let (colon, rest) = match operator.strip_prefix(':') {
        Some(rest) => (true, rest),
        None => (false, operator),
    };
    // With `:`, an empty value counts as unset.
    let set = value.is_some_and(|value| !(colon && value.is_empty()));
    let argument = rest.get(1..).unwrap_or("");
    match rest.chars().next() {
        Some('-') if set => Ok(value.unwrap_or("").to_string()),
        Some('-') => expand(argument, variables, depth + 1),
        Some('+') if set => expand(argument, variables, depth + 1),
        Some('+') => Ok(String::new()),
        Some('?') if set => Ok(value.unwrap_or("").to_string()),
        Some('?') => Err(InterpolationError::Required {
            variable: name.to_string(),
            message: expand(argument, variables, depth + 1)?,
        }),
        _ => Err(invalid(&format!(
            "`${{{expression}}}` is not a valid expression"
        ))),
    }
}

fn lookup<'a>(variables: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    variables.get(name).map(String::as_str)
}

/// Length of the variable name at the start of `text` (`[A-Za-z_][A-Za-z0-9_]*`).
fn name_length(text: &str) -> usize {
    let mut length = 0;
    for (index, character) in text.char_indices() {
        let allowed = character == '_'
            || character.is_ascii_alphabetic()
            || (index > 0 && character.is_ascii_digit());
        if !allowed {
            break;
        }
        length = index + 1;
    }
    length
}

/// Index of the `}` closing an expression whose `${` is just before `text`.
fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (index, character) in text.char_indices() {
        match character {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(index),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn invalid(message: &str) -> InterpolationError {
    InterpolationError::Invalid {
        message: message.to_string(),
    }
}

/// One line of an env file that is not `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

/// Reads `KEY=VALUE` lines: `#` comments, blank lines, optional `export `, single or double quotes.
/// A line with only `KEY` gives `(KEY, None)`: take the value from the environment.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, Option<String>)>, EnvFileError> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key.trim(), Some(unquote(value.trim()))),
            None => (line, None),
        };
        if key.is_empty() || key.chars().any(|character| character.is_whitespace()) {
            return Err(EnvFileError {
                line: index + 1,
                message: format!("`{line}` is not a `KEY=VALUE` line"),
            });
        }
        entries.push((key.to_string(), value));
    }
    Ok(entries)
}

fn unquote(value: &str) -> String {
    let quoted =
        |quote: char| value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote);
    if quoted('\'') {
        value[1..value.len() - 1].to_string()
    } else if quoted('"') {
        value[1..value.len() - 1]
            .replace("\\n", "\n")
            .replace("\\\"", "\"")
            .replace("\\\\", "\\")
    } else {
        // `KEY=value # comment`
        match value.find(" #") {
            Some(comment) => value[..comment].trim_end().to_string(),
            None => value.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variables() -> BTreeMap<String, String> {
        [("NAME", "alice"), ("EMPTY", ""), ("PORT", "8080")]
            .into_iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    fn run(text: &str) -> Result<String, InterpolationError> {
        interpolate(text, &variables())
    }

    #[test]
    fn replaces_plain_and_braced_variables() {
        assert_eq!(run("hello $NAME!").unwrap(), "hello alice!");
        assert_eq!(run("${NAME}_x").unwrap(), "alice_x");
        assert_eq!(run("$PORT$NAME").unwrap(), "8080alice");
        assert_eq!(run("$UNSET|${UNSET}").unwrap(), "|");
        assert_eq!(run("no variables").unwrap(), "no variables");
    }

    #[test]
    fn dollar_dollar_is_a_literal_dollar() {
        assert_eq!(run("$$NAME costs $$5").unwrap(), "$NAME costs $5");
        assert_eq!(run("trailing $").unwrap(), "trailing $");
        assert_eq!(run("$ 1").unwrap(), "$ 1");
    }

    #[test]
    fn defaults() {
        assert_eq!(run("${UNSET:-x}").unwrap(), "x");
        assert_eq!(run("${EMPTY:-x}").unwrap(), "x");
        assert_eq!(run("${EMPTY-x}").unwrap(), "");
        assert_eq!(run("${UNSET-x}").unwrap(), "x");
        assert_eq!(run("${NAME:-x}").unwrap(), "alice");
        assert_eq!(run("${UNSET:-${NAME}-2}").unwrap(), "alice-2");
        assert_eq!(run("${UNSET:-}").unwrap(), "");
    }

    #[test]
    fn alternatives() {
        assert_eq!(run("${NAME:+set}").unwrap(), "set");
        assert_eq!(run("${EMPTY:+set}").unwrap(), "");
        assert_eq!(run("${EMPTY+set}").unwrap(), "set");
        assert_eq!(run("${UNSET+set}").unwrap(), "");
    }

    #[test]
    fn required_variables() {
        assert_eq!(run("${NAME:?need it}").unwrap(), "alice");
        assert_eq!(run("${EMPTY?need it}").unwrap(), "");
        assert_eq!(
            run("${EMPTY:?need it}"),
            Err(InterpolationError::Required {
                variable: "EMPTY".into(),
                message: "need it".into()
            })
        );
        assert_eq!(
            run("x ${TOKEN?}"),
            Err(InterpolationError::Required {
                variable: "TOKEN".into(),
                message: String::new()
            })
        );
    }

    #[test]
    fn invalid_expressions() {
        assert!(matches!(run("${"), Err(InterpolationError::Invalid { .. })));
        assert!(matches!(
            run("${}"),
            Err(InterpolationError::Invalid { .. })
        ));
        assert!(matches!(
            run("${1A}"),
            Err(InterpolationError::Invalid { .. })
        ));
        assert!(matches!(
            run("${A B}"),
            Err(InterpolationError::Invalid { .. })
        ));
        let deep = format!("{}x{}", "${A:-".repeat(100), "}".repeat(100));
        assert!(matches!(
            run(&deep),
            Err(InterpolationError::Invalid { .. })
        ));
    }

    #[test]
    fn non_ascii_text_is_kept() {
        assert_eq!(run("héllo ${NAME} ✓ $").unwrap(), "héllo alice ✓ $");
    }

    #[test]
    fn env_files() {
        let text = "# comment\n\nA=1\nexport B = two \nC=\"quoted # not a comment\"\nD='single'\nE=x # comment\nF\nG=\n";
        let entries = parse_env_file(text).unwrap();
        let expected: Vec<(String, Option<String>)> = vec![
            ("A".into(), Some("1".into())),
            ("B".into(), Some("two".into())),
            ("C".into(), Some("quoted # not a comment".into())),
            ("D".into(), Some("single".into())),
            ("E".into(), Some("x".into())),
            ("F".into(), None),
            ("G".into(), Some(String::new())),
        ];
        assert_eq!(entries, expected);
    }

    #[test]
    fn env_file_errors_name_the_line() {
        let error = parse_env_file("A=1\nnot a line\n").unwrap_err();
        assert_eq!(error.line, 2);
    }
}
