//! The service's own routes, from the `ROUTES` environment variable (syntax in `demo/README.md`).
//! Owns the route model, parsing and matching; executing a `call` lives in `crate::call`, serving in
//! `crate::server`.

mod parse;
mod template;

pub use parse::{expand_env, parse, RouteError};
pub use template::Template;

/// Path parameters captured by a match, in pattern order: `(name, raw value)`.
pub type Params = Vec<(String, String)>;

/// One `METHOD PATTERN => ACTION` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Uppercase method, or `None` for `*` (any method).
    pub method: Option<String>,
    /// The path pattern.
    pub pattern: Pattern,
    /// What the route does.
    pub action: Action,
}

impl Route {
    /// The route as the `/` listing and the startup line show it.
    pub fn describe(&self) -> String {
        let method = self.method.as_deref().unwrap_or("*");
        format!(
            "{method} {} => {}",
            self.pattern.text,
            self.action.describe()
        )
    }

    /// Parameters when `method` and `path` match this route.
    pub fn matches(&self, method: &str, path: &str) -> Option<Params> {
        let method_matches = match &self.method {
            None => true,
            Some(expected) => expected == method || (expected == "GET" && method == "HEAD"),
        };
        method_matches.then(|| self.pattern.matches(path)).flatten()
    }
}

/// What a route answers with.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A fixed response whose body is a template over the path parameters.
    Respond {
        /// Response status.
        status: u16,
        /// `application/json` or `text/plain; charset=utf-8`.
        content_type: &'static str,
        /// Body template; JSON bodies get parameter values JSON-escaped.
        body: Template,
    },
    /// One or more downstream GETs whose responses are embedded in a JSON answer.
    Call(Vec<Call>),
}

impl Action {
    fn describe(&self) -> String {
        match self {
            Action::Respond {
                status,
                content_type,
                body,
            } => {
                let kind = if content_type.starts_with("application/json") {
                    "json"
                } else {
                    "text"
                };
                format!("{kind} {status} {}", body.text())
            }
            Action::Call(calls) => calls
                .iter()
                .map(|call| format!("call {} as {}", call.url.text(), call.name))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// One downstream call of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `http://` URL template over the route's path parameters (environment already expanded).
    pub url: Template,
    /// The key under which the downstream body is embedded.
    pub name: String,
}

/// A path pattern such as `/users/{id}`: literal segments and whole-segment parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    /// The pattern as written.
    pub text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param(String),
}

impl Pattern {
    /// The parameter names, in order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Param(name) => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Captured parameters when `path` (without query) matches; a trailing `/` is ignored.
    pub fn matches(&self, path: &str) -> Option<Params> {
        let parts = split_path(path);
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = Params::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Param(name) if !part.is_empty() => {
                    params.push((name.clone(), part.to_string()));
                }
                _ => return None,
            }
        }
        Some(params)
    }
}

fn split_path(path: &str) -> Vec<&str> {
    let trimmed = path.trim_start_matches('/').trim_end_matches('/');
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

/// Decodes `%XX` escapes (invalid escapes stay as written; invalid UTF-8 is replaced).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes.get(index + 1..index + 3).and_then(|digits| {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|digits| u8::from_str_radix(digits, 16).ok())
        });
        match (bytes[index], hex) {
            (b'%', Some(value)) => {
                out.push(value);
                index += 3;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(text: &str) -> Route {
        parse(text).expect("valid route").remove(0)
    }

    #[test]
    fn pattern_captures_whole_segments() {
        let route = route("GET /users/{id}/orders/{order} => json {}");
        assert_eq!(
            route.matches("GET", "/users/7/orders/42"),
            Some(vec![
                ("id".to_string(), "7".to_string()),
                ("order".to_string(), "42".to_string())
            ])
        );
        assert_eq!(
            route.matches("GET", "/users/7/orders/42/"),
            route.matches("GET", "/users/7/orders/42")
        );
        assert_eq!(route.matches("GET", "/users/7/orders"), None);
        assert_eq!(route.matches("GET", "/users//orders/42"), None);
        assert_eq!(route.matches("POST", "/users/7/orders/42"), None);
    }

    #[test]
    fn get_routes_answer_head_and_star_answers_everything() {
        assert!(route("GET /a => json {}").matches("HEAD", "/a").is_some());
        assert!(route("* /a => json {}").matches("DELETE", "/a").is_some());
        assert!(route("* / => json {}").matches("GET", "/").is_some());
    }

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn describe_round_trips_the_essentials() {
        let route = route("GET /users/{id} => call http://item:8080/items/{id}");
        assert_eq!(
            route.describe(),
            "GET /users/{id} => call http://item:8080/items/{id} as item"
        );
    }
}
