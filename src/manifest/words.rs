//! Splitting a command string into words the way a shell would (quotes and backslashes; no expansion).

/// `echo "a b" 'c d' e\ f` → `["echo", "a b", "c d", "e f"]`; `None` when a quote is not closed.
pub fn split(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        match character {
            '\'' => {
                in_word = true;
                loop {
                    match characters.next()? {
                        '\'' => break,
                        other => word.push(other),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match characters.next()? {
                        '"' => break,
                        '\\' => match characters.next()? {
                            escaped @ ('"' | '\\' | '$' | '`') => word.push(escaped),
                            other => {
                                word.push('\\');
                                word.push(other);
                            }
                        },
                        other => word.push(other),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(escaped) = characters.next() {
                    word.push(escaped);
                }
            }
            space if space.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split(r#"echo "a b" 'c d' e\ f"#).unwrap(),
            ["echo", "a b", "c d", "e f"]
        );
        assert_eq!(
            split("  run   --port=8080 ").unwrap(),
            ["run", "--port=8080"]
        );
        assert_eq!(
            split(r#"sh -c "echo \"hi\" \$HOME""#).unwrap(),
            ["sh", "-c", r#"echo "hi" $HOME"#]
        );
        assert_eq!(split(r#"a""b '' "#).unwrap(), ["ab", ""]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn unclosed_quotes_fail() {
        assert_eq!(split("echo 'oops"), None);
        assert_eq!(split("echo \"oops"), None);
        assert_eq!(split("echo \"oops\\"), None);
    }
}
