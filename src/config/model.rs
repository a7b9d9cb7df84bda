//! The shapes a pipeline file is written in. Each field's `///` is its user documentation.
//! OpenConnector's own field names (`sourceId`, `sourceTargetMapping`, `targetType`, `targetId`,
//! `apikey`, …) are accepted next to syncline's, so payloads from the seeds load unchanged; fields that
//! OpenConnector stores but that do not change a run (`uuid`, `version`, `created`, …) are accepted and
//! ignored. Any other key is an error naming it.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Settings;
use super::de::{Flag, Secret, Span, Text, TextMap};

/// Fields OpenConnector keeps on every entity; accepted, not used by a run. They are taken out of an
/// entity before it is parsed (serde cannot combine `flatten` with `deny_unknown_fields`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bookkeeping {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing)]
    pub id: Option<Text>,
    #[serde(skip_serializing)]
    pub uuid: Option<String>,
    #[serde(skip_serializing)]
    pub slug: Option<String>,
    #[serde(skip_serializing)]
    pub reference: Option<String>,
    #[serde(skip_serializing)]
    pub version: Option<Text>,
    #[serde(skip_serializing)]
    pub created: Option<Value>,
    #[serde(skip_serializing)]
    pub updated: Option<Value>,
    #[serde(skip_serializing)]
    pub date_created: Option<Value>,
    #[serde(skip_serializing)]
    pub date_modified: Option<Value>,
    #[serde(skip_serializing)]
    pub status: Option<Value>,
    #[serde(skip_serializing)]
    pub configurations: Option<Value>,
}

/// How a file's bytes become records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    #[serde(alias = "jsonl")]
    Ndjson,
    Json,
    Xlsx,
    Xls,
    Xlsb,
    Ods,
    Parquet,
}

impl FileFormat {
    /// The format a file name's extension says, if it says one.
    pub fn from_name(name: &str) -> Option<FileFormat> {
        let lower = name.to_ascii_lowercase();
        let ext = lower.rsplit_once('.')?.1;
        Some(match ext {
            "csv" | "tsv" | "txt" => FileFormat::Csv,
            "ndjson" | "jsonl" => FileFormat::Ndjson,
            "json" => FileFormat::Json,
            "xlsx" | "xlsm" => FileFormat::Xlsx,
            "xls" => FileFormat::Xls,
            "xlsb" => FileFormat::Xlsb,
            "ods" => FileFormat::Ods,
            "parquet" | "pq" => FileFormat::Parquet,
            _ => return None,
        })
    }

    pub fn is_spreadsheet(self) -> bool {
        matches!(self, FileFormat::Xlsx | FileFormat::Xls | FileFormat::Xlsb | FileFormat::Ods)
    }
}

/// Whether files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputCompression {
    Gzip,
    None,
}

/// How CSV values are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnTypes {
    /// Each column is typed from the first 1,000 rows: integers, decimals and booleans become JSON numbers
    /// and booleans (a value with a leading zero, like a postcode, stays text).
    #[default]
    Infer,
    /// Every value stays a string.
    Text,
}

/// A source: where data comes from and how to talk to it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceDef {
    /// The connector: `api` (the default), `ftp`, `sftp`, `database`, `excel`, `file`, … (the kinds
    /// `sources::registry()` lists).
    #[serde(rename = "type", default = "api")]
    pub kind: String,
    /// Base URL; a synchronization's `endpoint` is appended to it. Which locations a kind reads, and
    /// whether it needs one, its connector says.
    #[serde(default)]
    pub location: String,
    /// `none`, `basic`, `bearer` or `apiKey`, or a map `{type, username, password, token, name, in}`.
    #[serde(default)]
    pub auth: AuthDef,
    /// User name for `basic` auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password for `basic` auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Token for `bearer` auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// Key for `apiKey` auth (OpenConnector spells it `apikey`).
    #[serde(default, alias = "apikey", skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// Extra headers sent with every request.
    #[serde(default)]
    pub headers: TextMap,
    /// Extra query parameters sent with every request.
    #[serde(default)]
    pub query: TextMap,
    /// Whole-request timeout (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
    /// Connect timeout (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Span>,
    /// Retries on connect errors, 429 and 5xx.
    #[serde(default)]
    pub retries: RetryDef,
    /// At most this many requests per period, e.g. `10/s` or `{requests: 100, per: 1m}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitDef>,
    /// TLS settings; certificates are verified unless `verify: false`.
    #[serde(default)]
    pub tls: TlsDef,
    /// Token authentication (OAuth 2, JWT) for `{{ oauthToken(source) }}` / `{{ jwtToken(source) }}` in
    /// `headers` and `query` values (OpenConnector's `configuration.authentication`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<AuthenticationDef>,
    /// A disabled source is never called (OpenConnector's `isEnabled`).
    #[serde(default = "enabled", skip_serializing_if = "is_enabled")]
    pub is_enabled: Flag,
    /// API: follow next links, `Link` headers and redirects to another scheme, host or port (default
    /// false: such a link fails the run). They are followed without the source's credentials and
    /// headers, with a warning naming the host.
    #[serde(default, skip_serializing_if = "is_off")]
    pub allow_cross_origin_links: Flag,
    /// Bounds on what the source may hand over (`maxResponseBytes`, `maxRecordBytes`, `maxDepth`, …);
    /// each key left out keeps its default.
    #[serde(default, skip_serializing_if = "is_default_limits")]
    pub limits: crate::limits::ReadLimits,
    /// How long and how many of its requests the call log keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_log_retention: Option<CallLogRetention>,
    /// The keys only its connector reads (an sftp source's `privateKey`, an ftp source's `passive`),
    /// read apart by that connector (see [`Settings`]).
    #[serde(skip)]
    pub settings: Settings,
    /// Where a run's HTTP clients record the requests made with this source (set per run).
    #[serde(skip)]
    pub calls: Option<crate::calls::CallTap>,
    /// Its connector names each record's id itself (an Airbyte stream's primary key), so a
    /// synchronization may leave `idPosition` out; set when loading.
    #[serde(skip)]
    pub names_ids: bool,
    /// Name, description and OpenConnector's bookkeeping fields, read apart (see `config::load`).
    #[serde(skip)]
    pub bookkeeping: Bookkeeping,
}

fn api() -> String {
    "api".into()
}

/// How long and how many calls a source's call log keeps (`callLogRetention: {maxAge: 7d, maxCount:
/// 10000}`, the defaults); `maxCount: 0` records none.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CallLogRetention {
    #[serde(default = "week")]
    pub max_age: Span,
    #[serde(default = "ten_thousand")]
    pub max_count: u64,
}

impl Default for CallLogRetention {
    fn default() -> Self {
        CallLogRetention { max_age: week(), max_count: ten_thousand() }
    }
}

fn week() -> Span {
    Span(std::time::Duration::from_secs(7 * 24 * 3600))
}

fn ten_thousand() -> u64 {
    10_000
}

/// A flag that is on unless written off; connectors' settings use it too.
pub fn enabled() -> Flag {
    Flag(true)
}

/// Whether a default-on flag is left on (so it is not written out).
pub fn is_enabled(flag: &Flag) -> bool {
    flag.0
}

fn is_off(flag: &Flag) -> bool {
    !flag.0
}

fn is_default_limits<T: Default + PartialEq>(limits: &T) -> bool {
    *limits == T::default()
}

/// How requests authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum AuthKind {
    #[default]
    #[serde(rename = "none")]
    None,
    #[serde(rename = "basic")]
    Basic,
    #[serde(rename = "bearer")]
    Bearer,
    #[serde(rename = "apiKey", alias = "apikey", alias = "api_key")]
    ApiKey,
}

/// Where an API key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyPlacement {
    #[default]
    Header,
    Query,
}

/// Authentication: a kind, written alone (`auth: bearer`) or with its settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthSettings {
    #[serde(rename = "type", default)]
    pub kind: AuthKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// The API key itself.
    #[serde(default, alias = "value", skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    /// Header or query parameter name for the API key (default `X-API-Key`, or `api_key` in a query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `header` (default) or `query`.
    #[serde(default, rename = "in")]
    pub placement: KeyPlacement,
}

/// `auth:` as written: a kind name or a map of settings.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct AuthDef(pub AuthSettings);

impl<'de> Deserialize<'de> for AuthDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AuthVisitor;
        impl<'de> Visitor<'de> for AuthVisitor {
            type Value = AuthDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("none, basic, bearer, apiKey, or a map with `type`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AuthDef, E> {
                let kind = AuthKind::deserialize(de::value::StrDeserializer::<E>::new(v))?;
                Ok(AuthDef(AuthSettings { kind, ..AuthSettings::default() }))
            }
            fn visit_unit<E: de::Error>(self) -> Result<AuthDef, E> {
                Ok(AuthDef::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<AuthDef, A::Error> {
                AuthSettings::deserialize(de::value::MapAccessDeserializer::new(map)).map(AuthDef)
            }
        }
        deserializer.deserialize_any(AuthVisitor)
    }
}

/// Retry policy for transient failures.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryDef {
    /// Attempts per request, the first included (default 5; 1 = no retry).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First backoff (default 200ms); doubles each attempt, with jitter.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff: Span,
    /// Longest backoff (default 30s).
    #[serde(default = "default_max_backoff")]
    pub max_backoff: Span,
    /// The longest `Retry-After` honoured (default 5m); a longer one fails the request.
    #[serde(default = "default_max_retry_after")]
    pub max_retry_after: Span,
}

fn default_attempts() -> u32 {
    5
}
fn default_initial_backoff() -> Span {
    Span(std::time::Duration::from_millis(200))
}
fn default_max_backoff() -> Span {
    Span(std::time::Duration::from_secs(30))
}
fn default_max_retry_after() -> Span {
    Span(std::time::Duration::from_secs(300))
}

impl Default for RetryDef {
    fn default() -> Self {
        RetryDef {
            max_attempts: default_attempts(),
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
            max_retry_after: default_max_retry_after(),
        }
    }
}

/// A request budget: `requests` per `per`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RateLimitDef {
    pub requests: u32,
    pub per: Span,
}

impl<'de> Deserialize<'de> for RateLimitDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            requests: u32,
            per: Span,
        }
        struct RateVisitor;
        impl<'de> Visitor<'de> for RateVisitor {
            type Value = RateLimitDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a rate such as 10/s or 100/1m, or {requests, per}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RateLimitDef, E> {
                let bad = || E::custom(format!("`{v}` is not a rate (write 10/s or 100/1m)"));
                let (count, per) = v.split_once('/').ok_or_else(bad)?;
                let requests: u32 = count.trim().parse().map_err(|_| bad())?;
                let per = per.trim();
                let per = if per.starts_with(|c: char| c.is_ascii_digit()) { per.to_string() } else { format!("1{per}") };
                let per = Span::parse(&per).ok_or_else(bad)?;
                if requests == 0 || per.is_zero() {
                    return Err(bad());
                }
                Ok(RateLimitDef { requests, per: Span(per) })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RateLimitDef, A::Error> {
                let full = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if full.requests == 0 || full.per.0.is_zero() {
                    return Err(de::Error::custom("a rate limit needs requests > 0 and per > 0"));
                }
                Ok(RateLimitDef { requests: full.requests, per: full.per })
            }
        }
        deserializer.deserialize_any(RateVisitor)
    }
}

/// TLS settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsDef {
    /// Verify server certificates (default true). Turn off only for trusted networks.
    #[serde(default = "enabled")]
    pub verify: Flag,
    /// API: extra CA certificates (PEM text) trusted next to the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// API: a client certificate (PEM text) for mutual TLS, with `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// API: the client certificate's private key (unencrypted PEM text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
}

impl Default for TlsDef {
    fn default() -> Self {
        TlsDef { verify: Flag(true), ca: None, cert: None, key: None }
    }
}

/// Token authentication in OpenConnector's shape (`configuration.authentication`), used by the
/// template functions `oauthToken(source)` and `jwtToken(source)` in header and query values.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationDef {
    /// OAuth 2: `client_credentials` or `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    /// OAuth 2: the token endpoint.
    #[serde(default, rename = "tokenUrl", skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// OAuth 2: how the client authenticates, `body` (default) or `basic_auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// OAuth 2 password grant: the resource owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// OAuth 2: dot path of the token in the token response (default `access_token`).
    #[serde(default, rename = "tokenLocation", skip_serializing_if = "Option::is_none")]
    pub token_location: Option<String>,
    /// JWT: HS256, HS384, HS512 (with `secret`), or RS256, RS384, RS512, PS256 (with a PEM private key
    /// in `secret`, plain or base64-encoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// JWT: the HMAC secret or the RSA private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// JWT: the claims, a JSON object or JSON text; string values may be templates (`{{ 'now'|date('U') }}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// JWT: the `x5t` header (certificate thumbprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5t: Option<String>,
}

/// A mapping: one source record to one target object.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MappingDef {
    /// Target field (a dot path) → template (`{{ name }}`), a dot path into the source, or a constant.
    #[serde(default, deserialize_with = "super::de::php_object")]
    pub mapping: Map<String, Value>,
    /// Dot paths removed from the result.
    #[serde(default, deserialize_with = "super::de::string_list")]
    pub unset: Vec<String>,
    /// Dot path → cast(s), `"int"`, `"string,nullStringToNull"` or a list.
    #[serde(default, deserialize_with = "super::de::php_object")]
    pub cast: Map<String, Value>,
    /// Start from a copy of the source record instead of an empty object.
    #[serde(default)]
    pub pass_through: Flag,
    /// Bounds on each template (`templateFuel`, `maxTemplateOutputBytes`); keys left out keep their
    /// defaults.
    #[serde(default, skip_serializing_if = "is_default_limits")]
    pub limits: crate::limits::TemplateLimits,
    /// Name, description and OpenConnector's bookkeeping fields, read apart (see `config::load`).
    #[serde(skip)]
    pub bookkeeping: Bookkeeping,
}

/// A register: a set of schemas objects are validated against.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterDef {
    /// Schema name → JSON Schema, inline or `{$ref: "schemas/x.json"}` relative to the pipeline file.
    #[serde(default)]
    pub schemas: BTreeMap<String, Value>,
    /// Name, description and OpenConnector's bookkeeping fields, read apart (see `config::load`).
    #[serde(skip)]
    pub bookkeeping: Bookkeeping,
}
