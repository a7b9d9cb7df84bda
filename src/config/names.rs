//! Names of sources, mappings, registers, schemas and synchronizations: identifiers, because they
//! become parts of paths (contract files, journals, locks) and of URLs (`/api/sources/{id}`).

/// The longest name accepted.
pub const MAX_NAME_LEN: usize = 128;

/// Why `name` is not an identifier: letters, digits, `-`, `_` and `.`, not starting with `.` or `-`.
pub fn problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a name cannot be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!("a name may be at most {MAX_NAME_LEN} characters"));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Some(format!("`{}` is not a name: use letters, digits, `-`, `_` and `.` (found {bad:?})", shown(name)));
    }
    if name.starts_with(['.', '-']) {
        return Some(format!("`{}` is not a name: it may not start with `.` or `-`", shown(name)));
    }
    None
}

/// A name as it may appear in a message: short, and without control characters.
fn shown(name: &str) -> String {
    let cleaned: String = name.chars().map(|c| if c.is_control() { '?' } else { c }).take(60).collect();
    if name.chars().count() > 60 { format!("{cleaned}…") } else { cleaned }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_only() {
        for good in ["pets", "pets-to-datasets", "dcat.v2", "a_1", "5"] {
            assert_eq!(problem(good), None, "{good}");
        }
        for bad in ["", "../../victim", "a/b", ".hidden", "-flag", "with space", "tab\there", "é", &"x".repeat(129)] {
            assert!(problem(bad).is_some(), "{bad:?}");
        }
        assert!(problem("../../victim").unwrap().contains("`../../victim` is not a name"));
    }
}
