//! A Source's `configuration`, which is what OpenConnector really sends (Guzzle request options, reference
//! §2), folded into syncline's own source fields: `headers`, `query`, `timeout`, `connectTimeout`, `tls`,
//! `auth` and `authentication` (OAuth and JWT). Header and query values keep their templates
//! (`Bearer {{ oauthToken(source) }}`): the API client renders them per request.

use serde_json::{Map, Value};

/// Folds an expanded `configuration` into the source entity `fields`; `note` reports what is left out.
pub fn fold_into_source(configuration: Map<String, Value>, fields: &mut Map<String, Value>, note: &mut impl FnMut(&str, String)) {
    for (key, value) in configuration {
        let at = format!("configuration.{key}");
        match key.as_str() {
            "headers" | "query" => {
                let Value::Object(pairs) = value else {
                    if !super::quirks::is_empty(&value) {
                        note(&at, "left out: not an object of names and values".into());
                    }
                    continue;
                };
                let slot = fields.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
                super::quirks::empty_list_to_object(slot);
                if let Value::Object(existing) = slot {
                    for (name, value) in pairs {
                        // The source's own field wins: it is syncline's spelling, written on purpose.
                        existing.entry(name).or_insert(value);
                    }
                }
            }
            "timeout" => {
                fields.entry("timeout").or_insert(value);
            }
            "connect_timeout" => {
                fields.entry("connectTimeout").or_insert(value);
            }
            "verify" => fold_verify(value, fields, note),
            "cert" | "ssl_key" => fold_client_identity(&key, value, fields, note),
            "authentication" => fold_authentication(value, fields, note),
            "auth" => fold_guzzle_auth(value, fields, note),
            // OpenConnector forces it off itself: responses are inspected, never thrown.
            "http_errors" => {}
            _ => note(&at, "not honoured yet: syncline leaves this request option out".into()),
        }
    }
}

/// `verify`: `false` turns certificate checks off; a string is a CA bundle in PEM. The strings
/// `"false"`/`"0"` are what OpenConnector's UI stores for "off", but OpenConnector itself would take
/// them as a (broken) CA bundle and keep verifying; syncline does what the user meant, and says so.
fn fold_verify(value: Value, fields: &mut Map<String, Value>, note: &mut impl FnMut(&str, String)) {
    let tls = tls_of(fields);
    match value {
        Value::Bool(verify) => {
            tls.insert("verify".into(), verify.into());
        }
        Value::String(text) if matches!(text.trim().to_ascii_lowercase().as_str(), "false" | "0" | "no" | "off") => {
            tls.insert("verify".into(), false.into());
            note(
                "configuration.verify",
                format!(
                    "the string \"{text}\" is read as false, so certificates are NOT verified; OpenConnector would have taken it as a CA bundle and kept verifying. Write `verify: false` (a boolean) to say so"
                ),
            );
        }
        Value::String(text) if matches!(text.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on") => {
            tls.insert("verify".into(), true.into());
        }
        Value::String(pem) => {
            tls.insert("ca".into(), unescape_newlines(&pem).into());
        }
        other => note("configuration.verify", format!("left out: `{other}` is neither a boolean nor a CA bundle")),
    }
}

/// `cert` and `ssl_key`: PEM text, or `[pem, passphrase]`.
fn fold_client_identity(key: &str, value: Value, fields: &mut Map<String, Value>, note: &mut impl FnMut(&str, String)) {
    let (pem, passphrase) = match value {
        Value::String(pem) => (pem, None),
        Value::Array(items) => {
            let text = |i: usize| items.get(i).and_then(Value::as_str).map(str::to_string);
            match text(0) {
                Some(pem) => (pem, text(1).filter(|p| !p.is_empty())),
                None => return note(&format!("configuration.{key}"), "left out: expected PEM text or [pem, passphrase]".into()),
            }
        }
        _ => return note(&format!("configuration.{key}"), "left out: expected PEM text or [pem, passphrase]".into()),
    };
    if passphrase.is_some() {
        // rustls reads only unencrypted keys; a silently ignored passphrase would fail later, vaguely.
        note(
            &format!("configuration.{key}"),
            "left out: a key with a passphrase cannot be read; decrypt it once (`openssl pkey -in key.pem -out plain.pem`) and give the plain PEM".into(),
        );
        return;
    }
    tls_of(fields).insert(if key == "cert" { "cert" } else { "key" }.into(), unescape_newlines(&pem).into());
}

/// The settings `AuthenticationDef` knows.
const AUTHENTICATION_KEYS: [&str; 13] = [
    "grant_type",
    "tokenUrl",
    "scope",
    "authentication",
    "client_id",
    "client_secret",
    "username",
    "password",
    "tokenLocation",
    "algorithm",
    "secret",
    "payload",
    "x5t",
];

/// `authentication` (OAuth and JWT settings); keys of grants syncline does not speak (client assertions,
/// Decos) are reported.
fn fold_authentication(value: Value, fields: &mut Map<String, Value>, note: &mut impl FnMut(&str, String)) {
    let Value::Object(mut settings) = value else {
        if !super::quirks::is_empty(&value) {
            note("configuration.authentication", "left out: not an object".into());
        }
        return;
    };
    settings.retain(|key, _| {
        let known = AUTHENTICATION_KEYS.contains(&key.as_str());
        if !known {
            note(
                &format!("configuration.authentication.{key}"),
                "not honoured yet: syncline speaks the client_credentials and password grants and HS/RS/PS JWTs".into(),
            );
        }
        known
    });
    fields.entry("authentication").or_insert(Value::Object(settings));
}

/// Guzzle's `auth: [user, password]` (basic); digest and NTLM are not spoken.
fn fold_guzzle_auth(value: Value, fields: &mut Map<String, Value>, note: &mut impl FnMut(&str, String)) {
    let items = value.as_array().cloned().unwrap_or_default();
    let text = |i: usize| items.get(i).and_then(Value::as_str);
    let basic = text(2).is_none_or(|kind| kind.eq_ignore_ascii_case("basic"));
    match (text(0), text(1)) {
        (Some(user), Some(password)) if basic => {
            fields.entry("auth").or_insert_with(|| serde_json::json!({"type": "basic", "username": user, "password": password}));
        }
        _ => note("configuration.auth", "not honoured: only basic `[user, password]` authentication is spoken".into()),
    }
}

fn tls_of(fields: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let slot = fields.entry("tls").or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("made an object above")
}

/// OpenConnector turns a literal `\n` in PEM text into a newline (the UI stores one line).
fn unescape_newlines(pem: &str) -> String {
    pem.replace("\\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fold(configuration: Value, source: Value) -> (Value, Vec<String>) {
        let mut fields = source.as_object().unwrap().clone();
        let mut notes = Vec::new();
        fold_into_source(configuration.as_object().unwrap().clone(), &mut fields, &mut |k: &str, m: String| {
            notes.push(format!("{k}: {m}"))
        });
        (Value::Object(fields), notes)
    }

    #[test]
    fn request_options_become_source_fields() {
        let (source, notes) = fold(
            json!({"headers": {"Accept": "*/*", "X-Id": "44"}, "query": {"rows": "50"}, "timeout": 12, "connect_timeout": "3",
                   "verify": false, "auth": ["ann", "pw"], "http_errors": false, "logBody": true,
                   "authentication": {"grant_type": "client_credentials", "tokenUrl": "http://t"}}),
            json!({"location": "http://x", "headers": {"Accept": "application/json"}}),
        );
        assert_eq!(
            source,
            json!({"location": "http://x", "headers": {"Accept": "application/json", "X-Id": "44"}, "query": {"rows": "50"},
                   "timeout": 12, "connectTimeout": "3", "tls": {"verify": false}, "auth": {"type": "basic", "username": "ann", "password": "pw"},
                   "authentication": {"grant_type": "client_credentials", "tokenUrl": "http://t"}})
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("configuration.logBody"));
    }

    #[test]
    fn verify_strings() {
        let (source, notes) = fold(json!({"verify": "false"}), json!({}));
        assert_eq!(source, json!({"tls": {"verify": false}}));
        assert!(notes[0].contains("NOT verified"), "{notes:?}");
        let (source, _) = fold(json!({"verify": "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----"}), json!({}));
        assert_eq!(source["tls"]["ca"], "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
        let (source, notes) = fold(json!({"cert": ["PEM", ""], "ssl_key": ["KEY", "secret"]}), json!({}));
        assert_eq!(source, json!({"tls": {"cert": "PEM"}}));
        assert!(notes[0].starts_with("configuration.ssl_key") && notes[0].contains("openssl pkey"), "{notes:?}");
    }
}
