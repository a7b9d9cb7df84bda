//! OpenTelemetry traces over OTLP (HTTP/protobuf), off unless configured by the standard variables:
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL) or `OTEL_EXPORTER_OTLP_ENDPOINT` (+
//! `/v1/traces`), `OTEL_EXPORTER_OTLP[_TRACES]_HEADERS`, `…_TIMEOUT`, `…_PROTOCOL` (only
//! `http/protobuf`), `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_EXPORTER=none` and
//! `OTEL_SDK_DISABLED=true`. Off means no layer at all: the spans in the code then cost a disabled
//! callsite check.
//!
//! The spans are the ones syncline makes (target `syncline…`): a job, its source's requests, its
//! sink's transactions. Their attributes are ids, counts, statuses and redacted URLs, and every text
//! passes the secrets scrubber on its way out; the headers (an ingest key) are remembered as secrets.

pub mod layer;
pub mod otlp;

use std::time::Duration;

pub use layer::{OtlpLayer, Telemetry};
use otlp::AttributeValue;

/// Where and how traces go, read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: url::Url,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub resource: Vec<(String, AttributeValue)>,
}

impl Config {
    /// `Ok(None)`: traces are off. `Err`: they were asked for in a way we cannot honour.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Config>, String> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let traces_or = |specific: &str, general: &str| var(specific).or_else(|| var(general));
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match var("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => return Err(format!("OTEL_TRACES_EXPORTER={other}: only `otlp` (or `none`) is supported")),
        }
        let endpoint = match (var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), var("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            (Some(full), _) => full,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        let shown = crate::secrets::mask_unparsed_url(&endpoint);
        let endpoint = url::Url::parse(&endpoint).map_err(|e| format!("the OTLP endpoint `{shown}` is not a URL: {e}"))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(format!("the OTLP endpoint `{shown}` is not http(s)"));
        }
        match traces_or("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
            None | Some("http/protobuf") => {}
            Some(other) => return Err(format!("OTLP protocol `{other}` is not supported: use http/protobuf")),
        }
        let headers = pairs(&traces_or("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS").unwrap_or_default());
        for (_, value) in &headers {
            crate::secrets::remember(value);
        }
        let timeout = traces_or("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .map_or(Duration::from_secs(10), Duration::from_millis);
        let mut resource: Vec<(String, AttributeValue)> = pairs(&var("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default())
            .into_iter()
            .filter(|(k, _)| k != "service.name")
            .map(|(k, v)| (k, AttributeValue::String(v)))
            .collect();
        let service = var("OTEL_SERVICE_NAME")
            .or_else(|| {
                pairs(&var("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default()).into_iter().find(|(k, _)| k == "service.name").map(|(_, v)| v)
            })
            .unwrap_or_else(|| "syncline".into());
        resource.insert(0, ("service.name".into(), AttributeValue::String(service)));
        resource.push(("service.version".into(), AttributeValue::String(env!("CARGO_PKG_VERSION").into())));
        Ok(Some(Config { endpoint, headers, timeout, resource }))
    }
}

/// `k=v,k2=v2` with percent-encoded values (the W3C baggage form the OTLP variables use).
fn pairs(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| percent_decode(s.trim());
            (decode(k), decode(v))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B").replace('&', "%26")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Option<Config>, String> {
        Config::from_env(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn traces_are_off_unless_an_endpoint_is_set_and_honour_the_standard_variables() {
        assert!(config(&[]).unwrap().is_none());
        assert!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_SDK_DISABLED", "true")]).unwrap().is_none());
        assert!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_TRACES_EXPORTER", "none")]).unwrap().is_none());
        let on = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-ingest-key=k%3Dv%2Cw,other = two"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,service.name=ignored"),
            ("OTEL_SERVICE_NAME", "sync-prod"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(on.endpoint.as_str(), "http://collector:4318/v1/traces");
        assert_eq!(on.headers, [("x-ingest-key".to_string(), "k=v,w".to_string()), ("other".into(), "two".into())]);
        assert_eq!(on.timeout, Duration::from_millis(2500));
        assert_eq!(on.resource[0], ("service.name".into(), AttributeValue::String("sync-prod".into())));
        assert!(on.resource.contains(&("deployment.environment".into(), AttributeValue::String("test".into()))));
        let full = config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c/x"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://other")]);
        assert_eq!(full.unwrap().unwrap().endpoint.as_str(), "https://c/x", "the traces' own endpoint is used as it is");
        assert!(
            config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).unwrap_err().contains("grpc")
        );
    }
}
