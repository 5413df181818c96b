//! Templates over path parameters: `{name}` is replaced, everything else is literal.

use super::Params;

/// A string with `{name}` placeholders for path parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Param(String),
}

impl Template {
    /// Splits `text` into literals and placeholders. `{` followed by an identifier and `}` is a placeholder
    /// when `is_param` accepts the name; it is an error (returned as the name) when it does not. Any other
    /// `{` (as in JSON objects) is literal.
    pub fn new(text: &str, is_param: impl Fn(&str) -> bool) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match placeholder(after) {
                Some(name) if is_param(name) => {
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Param(name.to_string()));
                    rest = &after[name.len() + 1..];
                }
                Some(name) => return Err(name.to_string()),
                None => {
                    literal.push('{');
                    rest = after;
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self {
            text: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Fills placeholders with `encode(value)`; unknown names render empty.
    pub fn render(&self, params: &Params, encode: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Param(name) => {
                    if let Some((_, value)) = params.iter().find(|(key, _)| key == name) {
                        out.push_str(&encode(value));
                    }
                }
            }
        }
        out
    }
}

/// The identifier of a `{name}` placeholder starting right after `{`.
fn placeholder(after_brace: &str) -> Option<&str> {
    let end = after_brace.find('}')?;
    let name = &after_brace[..end];
    is_identifier(name).then_some(name)
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_identifier(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|rest| rest.is_ascii_alphanumeric() || rest == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        vec![("id".to_string(), "a\"b".to_string())]
    }

    #[test]
    fn replaces_parameters_and_keeps_json_braces() {
        let template = Template::new(r#"{"id": "{id}", "nested": {}}"#, |name| name == "id")
            .expect("valid template");
        assert_eq!(
            template.render(&params(), crate::json::escape),
            r#"{"id": "a\"b", "nested": {}}"#
        );
    }

    #[test]
    fn unknown_placeholder_is_an_error_naming_it() {
        assert_eq!(
            Template::new("http://item/items/{idd}", |name| name == "id"),
            Err("idd".to_string())
        );
    }

    #[test]
    fn placeholders_at_both_ends() {
        let template = Template::new("{id}-{id}", |_| true).expect("valid template");
        assert_eq!(template.render(&params(), str::to_string), "a\"b-a\"b");
    }
}
