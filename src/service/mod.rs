//! Service mode (`syncline serve`): the HTTP API over the same engine. Definitions live in the catalog,
//! runs go to the runner as background jobs, a scheduler starts the scheduled ones, and every endpoint
//! but `/api/health` asks for an `x-api-key`. Webhook deliveries go out from a task of their own
//! (`crate::webhooks::dispatch`).

pub mod auth;
pub(crate) mod calls;
mod catalog;
mod compat;
// The console (crate::console) fills its pages from these same handlers: one data path.
pub(crate) mod definitions;
pub(crate) mod deliveries;
mod error;
mod hooks;
mod listen;
pub(crate) mod operations;
mod preview;
mod runner;
mod scheduler;
#[cfg(feature = "sql")]
mod sql;
mod vault;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;
use axum::{Json, Router};
use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

pub use catalog::{Catalog, CatalogError, Section};
pub use error::{ApiError, ServiceError};
pub use listen::{ServerLimits, client_of};
pub use runner::Runner;

use crate::config::Secret;
use crate::store::StateDir;

/// Request bodies above this are refused (413): definitions and test records are small.
pub(crate) const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What every handler shares.
pub struct AppState {
    pub state: StateDir,
    pub catalog: Catalog,
    pub runner: Arc<Runner>,
    /// The API keys' digests (see [`auth::key_matches`]).
    keys: Vec<blake3::Hash>,
    started: chrono::DateTime<chrono::Utc>,
    /// Failed key checks per client, for refusing one that keeps guessing.
    pub(crate) attempts: auth::Attempts,
    /// Where users reach the service (`--public-url`), when it is said.
    public_url: Option<url::Url>,
    /// Each source's last Test connection answer.
    pub(crate) source_tests: SourceTests,
}

/// Each source's last Test connection answer and when (the console's dashboard shows it as the
/// source's health).
#[derive(Default)]
pub struct SourceTests(std::sync::Mutex<std::collections::HashMap<String, serde_json::Value>>);

impl SourceTests {
    pub fn record(&self, source: &str, answer: &serde_json::Value) {
        let mut entry = answer.clone();
        entry["at"] = serde_json::Value::String(crate::store::now_text());
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(source.to_string(), entry);
    }

    pub fn last(&self, source: &str) -> Option<serde_json::Value> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(source).cloned()
    }
}

/// A front end served beside the API (the web console): it adds its routes and layers to the
/// service's router. The service knows it only as this function.
pub type Front = fn(Router<Shared>) -> Router<Shared>;

impl AppState {
    pub(crate) fn key_matches(&self, given: &[u8]) -> bool {
        auth::key_matches(&self.keys, given)
    }

    /// Whether users reach the service over HTTPS (its public URL says so).
    pub(crate) fn public_https(&self) -> bool {
        self.public_url.as_ref().is_some_and(|u| u.scheme() == "https")
    }
}

pub type Shared = Arc<AppState>;

/// How to serve.
pub struct ServeOptions {
    /// Where `spawn` binds (`serve` takes a bound listener).
    pub listen: SocketAddr,
    pub files: Vec<PathBuf>,
    pub api_keys: Vec<Secret>,
    /// How often the scheduler looks for due runs.
    pub tick: Duration,
    /// Where users reach the service (behind a proxy: its HTTPS address), for `Secure` cookies.
    pub public_url: Option<url::Url>,
    /// The HTTP server's timeouts and caps.
    pub server: ServerLimits,
    /// What to serve beside the API (`Some(syncline::console::mount)` for the web console).
    pub front: Option<Front>,
    /// Whether sources made over the API may run programs (`command`, `airbyte`): off, since whoever
    /// holds an API key could then run anything on this machine.
    pub allow_programs: bool,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "syncline", description = "Sources, mappings and synchronizations, run as jobs into a register."),
    paths(
        health, ready,
        definitions::list, definitions::get_one, definitions::create, definitions::replace, definitions::remove,
        definitions::test_source, definitions::test_mapping,
        operations::run, operations::jobs, operations::job, operations::cancel, operations::logs,
        preview::preview,
        operations::contracts, operations::remove_contract, operations::objects, operations::changes, operations::object, operations::dashboard,
        compat::import, compat::export,
        deliveries::list, deliveries::redeliver, calls::list, hooks::receive,
    ),
    modifiers(&ApiKeyScheme)
)]
struct ApiDoc;

/// The OpenAPI document, with the routes of the features this build has.
fn openapi() -> utoipa::openapi::OpenApi {
    #[allow(unused_mut)]
    let mut doc = ApiDoc::openapi();
    #[cfg(feature = "sql")]
    doc.merge(sql::SqlDoc::openapi());
    doc
}

struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))));
        openapi.security = Some(vec![SecurityRequirement::new("api_key", Vec::<String>::new())]);
    }
}

/// The service's routes, with `front`'s beside them; `shared` holds its state.
pub fn router(shared: Shared, front: Option<Front>) -> Router {
    let api = Router::new()
        .route("/api/openapi.json", get(|| async { Json(openapi()) }))
        .merge(definitions::routes())
        .merge(operations::routes())
        .merge(deliveries::routes())
        .merge(calls::routes())
        .merge(compat::routes())
        .route("/api/sources/{id}/preview", get(preview::preview))
        .route("/metrics", get(metrics));
    #[cfg(feature = "sql")]
    let api = api.route("/api/sql", axum::routing::post(sql::query));
    let api = api.route_layer(middleware::from_fn_with_state(Arc::clone(&shared), auth::require_key));
    // Hooks check their own key or signature: their callers are other systems, not API clients.
    let app = Router::new().route("/api/health", get(health)).route("/api/ready", get(ready)).merge(hooks::routes()).merge(api);
    let app = match front {
        Some(mount) => mount(app),
        None => app,
    };
    app.layer(DefaultBodyLimit::max(BODY_LIMIT)).with_state(shared)
}

/// Liveness, without a key.
#[utoipa::path(get, path = "/api/health", security(()), responses((status = 200, description = "The service answers")))]
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Readiness, without a key: whether the state answers (each store opens and reads, the state
/// directory takes a write), each check within 5 seconds so a hung disk does not hang the probe.
/// Names the checks that failed, never a path or an error's text.
#[utoipa::path(get, path = "/api/ready", security(()), responses((status = 200, description = "Every check passed"),
    (status = 503, description = "A check failed: `checks` says which")))]
async fn ready(axum::extract::State(shared): axum::extract::State<Shared>) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    type Check = fn(&StateDir) -> Result<(), String>;
    let checks: [(&str, Check); 5] = [
        ("jobs", |s| s.jobs().and_then(|j| j.status_counts()).map(drop).map_err(|e| e.to_string())),
        ("register", |s| s.register().and_then(|r| r.origin_ids_of("")).map(drop).map_err(|e| e.to_string())),
        ("calls", |s| s.calls().map(drop).map_err(|e| e.to_string())),
        ("webhooks", |s| s.webhooks().and_then(|w| w.status_counts()).map(drop).map_err(|e| e.to_string())),
        ("disk", |s| {
            let probe = s.root().join(".ready");
            std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe)).map_err(|e| e.to_string())
        }),
    ];
    let mut results = serde_json::Map::new();
    for (name, check) in checks {
        let state = shared.state.clone();
        let outcome = tokio::time::timeout(Duration::from_secs(5), tokio::task::spawn_blocking(move || check(&state))).await;
        let verdict = match outcome {
            Ok(Ok(Ok(()))) => "ok",
            Ok(Ok(Err(error))) => {
                tracing::warn!("readiness: {name}: {error}");
                "failed"
            }
            Ok(Err(_)) => "failed",
            Err(_) => "timed out",
        };
        results.insert(name.to_string(), verdict.into());
    }
    // The shared backends, when this process uses them: another machine's view of them is the point.
    let state = &shared.state;
    type SharedCheck<'a> = Option<futures::future::BoxFuture<'a, Result<(), crate::store::StoreError>>>;
    let shared_checks: [(&str, SharedCheck<'_>); 2] = [
        (
            "contracts",
            matches!(state.contract_store(), crate::store::ContractStore::Shared { .. }).then(|| state.contract_store().check().boxed()),
        ),
        ("leases", state.leases().map(|leases| leases.check().boxed())),
    ];
    for (name, check) in shared_checks {
        let Some(check) = check else { continue };
        let verdict = match tokio::time::timeout(Duration::from_secs(5), check).await {
            Ok(Ok(())) => "ok",
            Ok(Err(error)) => {
                tracing::warn!("readiness: {name}: {error}");
                "failed"
            }
            Err(_) => "timed out",
        };
        results.insert(name.to_string(), verdict.into());
    }
    let ready = results.values().all(|v| v == "ok");
    let status = if ready { axum::http::StatusCode::OK } else { axum::http::StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "status": if ready { "ready" } else { "not ready" }, "checks": results })))
}

/// Prometheus metrics (see [`crate::metrics`]), behind the API key like the rest.
async fn metrics(axum::extract::State(shared): axum::extract::State<Shared>) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let text = crate::metrics::render(&shared.state, chrono::Utc::now()).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}

/// Runs the service on `listener` until `stop` (or SIGTERM / Ctrl-C): then takes no new runs, cancels
/// the running jobs, waits for them to record CANCELLED, and returns.
pub async fn serve(
    state: StateDir,
    listener: tokio::net::TcpListener,
    options: ServeOptions,
    stop: CancellationToken,
) -> Result<(), ServiceError> {
    if options.api_keys.iter().all(|k| k.expose().is_empty()) {
        return Err(ServiceError::NoKey);
    }
    let catalog = Catalog::open(state.root(), &options.files)?.allowing_programs(options.allow_programs);
    let runner = Arc::new(Runner::new(state.clone()));
    let orphans = runner.take_over_orphans()?;
    if orphans > 0 {
        tracing::warn!(
            "jobs of {orphans} synchronization(s) left running by an earlier process were marked FAILED; their next runs adopt what they wrote"
        );
    }
    let keys = options.api_keys.iter().filter(|k| !k.expose().is_empty()).map(|k| blake3::hash(k.expose().as_bytes())).collect();
    let shared = Arc::new(AppState {
        state,
        catalog,
        runner: Arc::clone(&runner),
        keys,
        started: chrono::Utc::now(),
        attempts: Default::default(),
        public_url: options.public_url,
        source_tests: Default::default(),
    });
    // Subscriptions in the files start where the register is now, before any run this service starts.
    if let Err(error) = crate::webhooks::dispatch::take_events(&shared.state, &shared.catalog.webhooks()) {
        tracing::warn!("webhooks: reading events: {error}");
    }
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let scheduler = tokio::spawn(scheduler::run(Arc::clone(&shared), options.tick, stop.clone()));
    let subscriptions = {
        let shared = Arc::clone(&shared);
        Box::new(move || shared.catalog.webhooks()) as crate::webhooks::dispatch::Subscriptions
    };
    let webhooks = tokio::spawn(crate::webhooks::dispatch::run(shared.state.clone(), subscriptions, options.tick, stop.clone()));
    let signal = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown_signal() => signal.cancel(),
            _ = signal.cancelled() => {}
        }
    });
    listen::serve(listener, router(shared, options.front), options.server, stop.clone()).await;
    runner.shutdown().await;
    let _ = scheduler.await;
    let _ = webhooks.await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Starts the service on a loopback port of its own (tests, the demo): its address, the token that
/// stops it, and the task to await after.
pub async fn spawn(
    state: StateDir,
    options: ServeOptions,
) -> Result<(SocketAddr, CancellationToken, tokio::task::JoinHandle<Result<(), ServiceError>>), ServiceError> {
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let address = listener.local_addr()?;
    let stop = CancellationToken::new();
    let handle = tokio::spawn(serve(state, listener, options, stop.clone()));
    Ok((address, stop, handle))
}
