//! The web console `syncline serve` answers at `/`: OpenConnector's screens (dashboard, sources,
//! mappings, synchronizations, jobs, contracts, objects) as server-rendered pages. The pages are filled
//! by calling the very handlers behind `/api` (one data path), and every change the pages make goes to
//! `/api` from the browser with the session cookie and the CSRF token. Templates and assets are
//! compiled into the binary, so there is no separate front end to deploy.

mod chart;
mod pages;
mod session;
mod sql;

use axum::Router;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::service::Shared;

/// What the console keeps between requests: its sign-in sessions. It travels with each request as
/// an extension, so the service's own state knows nothing of the console.
#[derive(Default)]
pub struct ConsoleState {
    sessions: session::Sessions,
}

/// Mounts the console on the service's router (pass it as `ServeOptions::front`): its pages, and a
/// layer that lets a signed-in browser's session stand in for the API key.
pub fn mount(app: Router<Shared>) -> Router<Shared> {
    let console = std::sync::Arc::new(ConsoleState::default());
    app.merge(routes()).layer(middleware::from_fn(session::credential)).layer(axum::Extension(console))
}

/// Why a console page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    Api(String, StatusCode),
    #[error("the page could not be rendered: {0}")]
    Template(#[from] minijinja::Error),
}

impl From<crate::service::ApiError> for ConsoleError {
    fn from(error: crate::service::ApiError) -> Self {
        ConsoleError::Api(error.message, error.status)
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = match &self {
            ConsoleError::Api(_, status) => *status,
            ConsoleError::Template(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // The error page is itself a template; should that fail too, plain text still says why.
        let mut response = pages::render("error.html", serde_json::json!({ "title": "Error", "message": self.to_string() }));
        *response.status_mut() = status;
        response
    }
}

/// The console's routes, next to `/api` (which they leave alone).
fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/sources", get(pages::sources))
        .route("/sources/{id}", get(pages::source))
        .route("/mappings", get(pages::mappings))
        .route("/mappings/{id}", get(pages::mapping))
        .route("/synchronizations", get(pages::synchronizations))
        .route("/synchronizations/{id}", get(pages::synchronization))
        .route("/synchronizations/{id}/contracts", get(pages::contracts))
        .route("/registers", get(pages::registers))
        .route("/registers/{id}", get(pages::register))
        .route("/registers/{id}/schemas/{schema}", get(pages::objects))
        .route("/objects/{id}", get(pages::object))
        .route("/jobs", get(pages::jobs))
        .route("/jobs/{id}", get(pages::job))
        .route("/webhooks", get(pages::webhooks))
        .route("/sql", get(sql::page))
        .layer(middleware::from_fn(page_headers))
        .route("/assets/{file}", get(asset))
}

/// Pages may run only our own script and never be framed, and no cache keeps a signed-in page.
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    );
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

/// The stylesheet and the script, from the binary. Their content is tied to the binary, so a day of
/// caching is safe enough across an upgrade (the pages themselves are never cached).
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    ([(CONTENT_TYPE, kind), (CACHE_CONTROL, "public, max-age=86400")], body).into_response()
}
