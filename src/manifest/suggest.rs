//! "Did you mean" by edit distance.

/// The candidate closest to `word` if it is close enough to be a likely typo.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lowered = word.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| (strsim::osa_distance(&lowered, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.chars().count() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// `` `a`, `b`, `c` `` for hints.
pub fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &["depends_on", "healthcheck", "environment", "port", "ports"];

    #[test]
    fn suggests_close_words() {
        assert_eq!(
            did_you_mean("depend_on", KEYS.iter().copied()),
            Some("depends_on")
        );
        assert_eq!(
            did_you_mean("helthcheck", KEYS.iter().copied()),
            Some("healthcheck")
        );
        assert_eq!(
            did_you_mean("enviroment", KEYS.iter().copied()),
            Some("environment")
        );
        assert_eq!(did_you_mean("Ports", KEYS.iter().copied()), Some("ports"));
        assert_eq!(did_you_mean("itme", ["item", "user"]), Some("item"));
    }

    #[test]
    fn stays_silent_for_far_words() {
        assert_eq!(did_you_mean("networks", KEYS.iter().copied()), None);
        assert_eq!(did_you_mean("db", ["web"]), None);
        assert_eq!(did_you_mean("x", std::iter::empty()), None);
    }

    #[test]
    fn lists_names() {
        assert_eq!(list(&["a", "b"]), "`a`, `b`");
    }
}
