//! `${VAR}` and `${VAR:-default}` in pipeline files, so secrets and ports stay out of them.
//! `$$` writes a literal `$`; a `$` not followed by `{` is kept as it is.

/// Replaces every `${VAR}` / `${VAR:-default}` in `text`. An unset variable without a default is an
/// error naming the variable (never its value).
pub fn interpolate(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(body) = tail.strip_prefix("${") {
            let end = body.find('}').ok_or_else(|| format!("unclosed `${{` in `{text}`"))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`${{{expr}}}` is not a valid variable reference"));
            }
            match (env(name).filter(|v| !(v.is_empty() && default.is_some())), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(format!("environment variable {name} is not set (write ${{{name}:-default}} for a default)"));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("example.org".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_variables_and_defaults() {
        assert_eq!(interpolate("http://${HOST}/x", &env).unwrap(), "http://example.org/x");
        assert_eq!(interpolate("${PORT:-8080}", &env).unwrap(), "8080");
        assert_eq!(interpolate("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(interpolate("cost $$5 and $x", &env).unwrap(), "cost $5 and $x");
        assert_eq!(interpolate("plain", &env).unwrap(), "plain");
    }

    #[test]
    fn unset_without_default_is_an_error() {
        let err = interpolate("${TOKEN}", &env).unwrap_err();
        assert!(err.contains("TOKEN"));
        assert!(interpolate("${bad name}", &env).is_err());
        assert!(interpolate("${OPEN", &env).is_err());
    }
}
