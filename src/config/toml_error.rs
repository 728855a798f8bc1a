//! A TOML error told without the file's text: the config file holds client
//! secrets and caller tokens inline, and the parser's own message quotes the
//! offending line (and serde's quotes the offending value). This names the
//! line, the column, the table and the key instead.

/// Describes `error` for the file `text` without quoting any of it.
pub(super) fn describe(text: &str, error: &toml::de::Error) -> String {
    let message = without_values(error.message());
    let Some(span) = error.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let mut place = format!("line {line}, column {column}");
    let line_text = text[line_start..].lines().next().unwrap_or_default();
    if let Some(key) = key_of(line_text) {
        place.push_str(&format!(", key `{key}`"));
    }
    if let Some(table) = table_before(&text[..line_start]) {
        place.push_str(&format!(" in [{table}]"));
    }
    format!("{place}: {message}")
}

/// The key a `key = value` line sets, if it is a plain dotted key.
fn key_of(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    plain(key).then_some(key)
}

/// The last `[table]` or `[[table]]` header before the line.
fn table_before(text: &str) -> Option<&str> {
    text.lines().rev().find_map(|line| {
        let line = line.trim();
        let inner = line
            .strip_prefix("[[")
            .and_then(|l| l.strip_suffix("]]"))
            .or_else(|| line.strip_prefix('[').and_then(|l| l.strip_suffix(']')))?;
        let inner = inner.trim();
        plain(inner).then_some(inner)
    })
}

/// A bare dotted key: safe to repeat, it cannot be a secret's value.
fn plain(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 100
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// serde's "invalid type: string \"…\", expected …" quotes the value: keep
/// only its kind. Other messages (unknown field, missing field, syntax)
/// name keys and expectations, never values.
fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((found, expected)) = rest.split_once(", expected")
        {
            let kind = found
                .split([' ', '`', '"'])
                .next()
                .filter(|k| !k.is_empty())
                .unwrap_or("value");
            return format!("{prefix}{kind}, expected{expected}");
        }
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        let err = toml::from_str::<super::super::RawConfig>(text)
            .err()
            .expect("an error");
        describe(text, &err)
    }

    #[test]
    fn a_syntax_error_names_its_place_without_the_line() {
        let text = "listen = \"127.0.0.1:1\"\n\n[providers.ares]\nclient_secret = \"s3cr3t-value\nclient_id = \"x\"\n";
        let told = error_of(text);
        assert!(!told.contains("s3cr3t"), "{told}");
        assert!(told.contains("line 4"), "{told}");
        assert!(told.contains("key `client_secret`"), "{told}");
        assert!(told.contains("[providers.ares]"), "{told}");
    }

    #[test]
    fn a_wrong_type_names_the_kind_not_the_value() {
        let text = "[[callers]]\nname = \"billing\"\ntoken = 123456789\n";
        let told = error_of(text);
        assert!(!told.contains("123456789"), "{told}");
        assert!(told.contains("invalid type: integer"), "{told}");
        let text = "state_ttl_secs = \"hunter2-secret\"\n";
        let told = error_of(text);
        assert!(!told.contains("hunter2"), "{told}");
        assert!(told.contains("line 1"), "{told}");
    }

    #[test]
    fn an_unknown_key_is_named() {
        let told = error_of("[[callers]]\nname = \"b\"\ntokn = \"x-secret\"\n");
        assert!(told.contains("tokn"), "{told}");
        assert!(!told.contains("x-secret"), "{told}");
    }
}
