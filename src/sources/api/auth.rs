//! Header and query values that are templates, as OpenConnector's Source `configuration` writes them:
//! `"headers.Authorization": "Bearer {{ oauthToken(source) }}"`. They render before every request, with
//! `source` (the source's definition, secrets masked) and the token functions:
//! - `oauthToken(source)`: an OAuth 2 access token (client_credentials or password grant) from
//!   `authentication.tokenUrl`, kept until shortly before it expires;
//! - `jwtToken(source)`: a JWT signed with `authentication.algorithm` over the rendered `payload`,
//!   its key and claims template prepared once.

use std::time::Duration;

use minijinja::{Environment, Error, ErrorKind, State};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{AuthenticationDef, SourceDef, Text};
use crate::path::DotPath;
use crate::sources::SourceError;

/// A token is renewed this long before the server says it expires, so no request carries a stale one.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// The most of a token endpoint's answer that is read.
const MAX_TOKEN_RESPONSE: usize = 1024 * 1024;
/// How long a token whose response gives no `expires_in` is kept.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// The templated header and query values of one source.
pub struct RequestTemplates {
    env: Environment<'static>,
    headers: Vec<(HeaderName, String)>,
    query: Vec<(String, String)>,
    source: Value,
    tokens: Option<Tokens>,
    uses_oauth: bool,
}

fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

impl RequestTemplates {
    /// Takes the templated values out of `headers` and `query` (the rest stay static); `None` when there
    /// are none.
    pub fn take(
        source: &SourceDef,
        headers: &mut Vec<(String, Text)>,
        query: &mut Vec<(String, String)>,
        client: &reqwest::Client,
    ) -> Result<Option<RequestTemplates>, SourceError> {
        let templated_headers: Vec<(String, Text)> = headers.extract_if(.., |(_, v)| is_template(&v.0)).collect();
        let templated_query: Vec<(String, String)> = query.extract_if(.., |(_, v)| is_template(v)).collect();
        if templated_headers.is_empty() && templated_query.is_empty() {
            return Ok(None);
        }
        let mut env = Environment::new();
        // Headers and query values are rendered for every request: bounded as a mapping's are.
        env.set_fuel(Some(crate::limits::TemplateLimits::default().template_fuel));
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        crate::mapping::twig::install(&mut env);
        env.add_function("oauthToken", |state: &State, _source: minijinja::Value| token(state, "__oauth_token"));
        env.add_function("jwtToken", |state: &State, _source: minijinja::Value| token(state, "__jwt_token"));
        let mut sources = String::new();
        let mut add = |env: &mut Environment<'static>, text: &str, what: &str| -> Result<String, SourceError> {
            let name = format!("v{}", env.templates().count());
            let translated =
                crate::mapping::twig::translate(text).map_err(|e| SourceError::Config(format!("{what} is not a valid template: {e}")))?;
            env.add_template_owned(name.clone(), translated.source)
                .map_err(|e| SourceError::Config(format!("{what} is not a valid template: {e}")))?;
            sources.push_str(text);
            Ok(name)
        };
        let mut header_templates = Vec::new();
        for (name, value) in templated_headers {
            let header =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| SourceError::Config(format!("`{name}` is not a header name")))?;
            header_templates.push((header, add(&mut env, &value.0, &format!("header `{name}`"))?));
        }
        let mut query_templates = Vec::new();
        for (name, value) in templated_query {
            let template = add(&mut env, &value, &format!("query parameter `{name}`"))?;
            query_templates.push((name, template));
        }
        let uses_oauth = sources.contains("oauthToken");
        let uses_jwt = sources.contains("jwtToken");
        let tokens = match &source.authentication {
            Some(def) => {
                // The signing key and the claims template are made once, and a bad one is a setup error.
                let mut jwt = None;
                if uses_jwt {
                    jwt = Some(signer(def)?);
                    let payload = match &def.payload {
                        None => "{}".to_string(),
                        Some(Value::String(text)) => text.clone(),
                        Some(other) => other.to_string(),
                    };
                    let payload = crate::mapping::twig::translate(&payload)
                        .map_err(|e| SourceError::Config(format!("the JWT payload is not a valid template: {e}")))?;
                    env.add_template_owned(JWT_PAYLOAD, payload.source)
                        .map_err(|e| SourceError::Config(format!("the JWT payload is not a valid template: {e}")))?;
                }
                Some(Tokens { def: def.clone(), client: client.clone(), oauth: Mutex::new(None), jwt })
            }
            None if uses_oauth || uses_jwt => {
                return Err(SourceError::Config("oauthToken/jwtToken need the source's `authentication` settings".into()));
            }
            None => None,
        };
        let source = serde_json::to_value(source).unwrap_or_default();
        Ok(Some(RequestTemplates { env, headers: header_templates, query: query_templates, source, tokens, uses_oauth }))
    }

    /// Renders every value for the next request.
    pub async fn render(&self) -> Result<(Vec<(HeaderName, HeaderValue)>, Vec<(String, String)>), SourceError> {
        let mut context = serde_json::Map::new();
        context.insert("source".into(), self.source.clone());
        if let Some(tokens) = &self.tokens {
            if self.uses_oauth {
                context.insert("__oauth_token".into(), tokens.oauth().await?.into());
            }
            if let Some((header, key)) = &tokens.jwt {
                // Signed anew for each request: payloads carry times (`{{ 'now'|date('U') }}`).
                let claims = self.env.get_template(JWT_PAYLOAD).and_then(|t| {
                    t.render(minijinja::context! { source => minijinja::Value::from(minijinja::value::Serde(&self.source)) })
                });
                let claims: Value = serde_json::from_str(&claims.map_err(|e| SourceError::Config(format!("the JWT payload failed: {e}")))?)
                    .map_err(|e| SourceError::Config(format!("the JWT payload does not render to JSON: {e}")))?;
                let token =
                    jsonwebtoken::encode(header, &claims, key).map_err(|e| SourceError::Config(format!("cannot sign the JWT: {e}")))?;
                context.insert("__jwt_token".into(), token.into());
            }
        }
        let context = minijinja::Value::from(minijinja::value::Serde(&context));
        let render = |name: &str| {
            self.env
                .get_template(name)
                .and_then(|t| t.render(&context))
                .map_err(|e| SourceError::Config(format!("a templated header or query value failed: {e}")))
        };
        let mut headers = Vec::with_capacity(self.headers.len());
        for (header, template) in &self.headers {
            let text = render(template)?;
            let value = HeaderValue::from_str(&text)
                .map_err(|_| SourceError::Config(format!("header `{header}` rendered to a value that cannot be sent")))?;
            headers.push((header.clone(), value));
        }
        let mut query = Vec::with_capacity(self.query.len());
        for (name, template) in &self.query {
            query.push((name.clone(), render(template)?));
        }
        Ok((headers, query))
    }
}

fn token(state: &State, key: &str) -> Result<minijinja::Value, Error> {
    state.lookup(key).ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "no token was fetched for this source"))
}

/// Token issuing for one source.
struct Tokens {
    def: AuthenticationDef,
    client: reqwest::Client,
    oauth: Mutex<Option<(String, Instant)>>,
    /// When a template calls `jwtToken`: the header and key it signs with.
    jwt: Option<(jsonwebtoken::Header, jsonwebtoken::EncodingKey)>,
}

impl Tokens {
    /// The cached OAuth token, or a new one when it is about to expire.
    async fn oauth(&self) -> Result<String, SourceError> {
        let mut cached = self.oauth.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch_oauth().await?;
        *cached = Some((token.clone(), Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN)));
        Ok(token)
    }

    async fn fetch_oauth(&self) -> Result<(String, Duration), SourceError> {
        let def = &self.def;
        let url = def.token_url.clone().ok_or_else(|| SourceError::Config("oauthToken needs `authentication.tokenUrl`".into()))?;
        let grant = def.grant_type.clone().unwrap_or_else(|| "client_credentials".into());
        let auth_error = |reason: String| SourceError::Auth { url: url.clone(), reason };
        let mut form: Vec<(&str, String)> = vec![("grant_type", grant.clone())];
        if let Some(scope) = &def.scope {
            form.push(("scope", scope.clone()));
        }
        if grant == "password" {
            form.push(("username", def.username.clone().unwrap_or_default()));
            form.push(("password", def.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default()));
        } else if grant != "client_credentials" {
            return Err(SourceError::Config(format!("grant_type `{grant}` is not supported (client_credentials or password)")));
        }
        let client_id = def.client_id.clone().unwrap_or_default();
        let secret = def.client_secret.as_ref().map(|s| s.expose().to_string()).unwrap_or_default();
        let mut request = self.client.post(&url);
        if def.authentication.as_deref() == Some("basic_auth") {
            request = request.basic_auth(&client_id, Some(&secret));
        } else {
            form.push(("client_id", client_id));
            form.push(("client_secret", secret));
        }
        let mut response = request.form(&form).send().await.map_err(|e| auth_error(format!("the token request failed: {e}")))?;
        let status = response.status();
        // A token answer is a few hundred bytes: read no more than a small bound of it.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| auth_error(format!("the token response was cut off: {e}")))? {
            if body.len() + chunk.len() > MAX_TOKEN_RESPONSE {
                return Err(auth_error(format!("the token response is larger than {MAX_TOKEN_RESPONSE} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(auth_error(format!("the token endpoint answered HTTP {}: {text}", status.as_u16())));
        }
        let json: Value = serde_json::from_slice(&body).map_err(|e| auth_error(format!("the token response is not JSON: {e}")))?;
        let location = DotPath::parse(def.token_location.as_deref().unwrap_or("access_token"));
        let token = match location.get(&json) {
            Some(Value::String(token)) if !token.is_empty() => token.clone(),
            _ => return Err(auth_error(format!("no token at `{}` in the token response", location.segments().join(".")))),
        };
        // Capped at a day: an `expires_in` of 10^19 would overflow the clock it is added to.
        let lifetime = json
            .get("expires_in")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .map(|s| Duration::from_secs(s.min(86_400)));
        Ok((token, lifetime.unwrap_or(DEFAULT_LIFETIME)))
    }
}

/// The name of the JWT claims template (OpenConnector's `payload`, JSON text rendered as a template).
const JWT_PAYLOAD: &str = "jwt_payload";

/// The JWT header and signing key of `authentication`: HMAC with `secret`, or RSA with `secret` as a PEM
/// private key (OpenConnector stores it base64-encoded; plain PEM is taken as it is).
fn signer(def: &AuthenticationDef) -> Result<(jsonwebtoken::Header, jsonwebtoken::EncodingKey), SourceError> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let name = def.algorithm.as_deref().unwrap_or("HS256");
    let algorithm: Algorithm = name.parse().map_err(|_| SourceError::Config(format!("JWT algorithm `{name}` is not supported")))?;
    let secret = def
        .secret
        .as_ref()
        .map(|s| s.expose().to_string())
        .ok_or_else(|| SourceError::Config("jwtToken needs `authentication.secret`".into()))?;
    let key = match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => EncodingKey::from_secret(secret.as_bytes()),
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => {
            let pem = if secret.contains("-----BEGIN") {
                secret.into_bytes()
            } else {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(secret.trim())
                    .map_err(|_| SourceError::Config("the JWT secret is neither PEM nor base64-encoded PEM".into()))?
            };
            EncodingKey::from_rsa_pem(&pem).map_err(|e| SourceError::Config(format!("the JWT secret is not an RSA private key: {e}")))?
        }
        _ => return Err(SourceError::Config(format!("JWT algorithm `{name}` is not supported"))),
    };
    let mut header = Header::new(algorithm);
    header.x5t = def.x5t.clone();
    Ok((header, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(value: Value) -> SourceDef {
        serde_json::from_value(value).unwrap()
    }

    #[tokio::test]
    async fn jwt_tokens_sign_the_rendered_payload() {
        let def = source(json!({"location": "http://x", "authentication": {"algorithm": "HS256", "secret": "k3y",
            "payload": "{\"iss\": \"syncline\", \"iat\": {{ 'now'|date('U') }}}"}}));
        let mut headers =
            vec![("Authorization".to_string(), Text("Bearer {{ jwtToken(source) }}".into())), ("Accept".into(), Text("*/*".into()))];
        let mut query = Vec::new();
        let templates = RequestTemplates::take(&def, &mut headers, &mut query, &reqwest::Client::new()).unwrap().unwrap();
        assert_eq!(headers.len(), 1, "the static header stays static");
        let (rendered, _) = templates.render().await.unwrap();
        let value = rendered[0].1.to_str().unwrap();
        let token = value.strip_prefix("Bearer ").unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_secret(b"k3y"), &validation).unwrap();
        assert_eq!(data.claims["iss"], "syncline");
        assert!(data.claims["iat"].as_i64().unwrap() > 1_700_000_000);
    }

    #[test]
    fn token_functions_need_settings() {
        let def = source(json!({"location": "http://x"}));
        let mut headers = vec![("Authorization".to_string(), Text("Bearer {{ oauthToken(source) }}".into()))];
        let error = RequestTemplates::take(&def, &mut headers, &mut Vec::new(), &reqwest::Client::new()).err().unwrap();
        assert!(error.to_string().contains("authentication"), "{error}");
    }
}
