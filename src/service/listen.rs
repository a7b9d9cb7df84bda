//! The service's HTTP/1 server, held to bounds a client cannot move: a connection must send its
//! request headers within a time limit (also between requests on a kept-alive connection), there is
//! a cap on connections in all and per client address, a cap on requests being answered at once, and
//! a request body must arrive within a time limit. Connections past a cap are closed at once; a
//! request past the cap is answered 503.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::ApiError;

/// The server's bounds.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// How long a client may take to send a request's headers (and to start its next request).
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body.
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    /// Requests answered at once; more get 503 until one ends.
    pub max_requests: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_client: 128,
            max_requests: 256,
        }
    }
}

/// Connections open per client address.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

impl PerClient {
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(ClientSlot { clients: Arc::clone(self), ip })
    }
}

struct ClientSlot {
    clients: Arc<PerClient>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.clients.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `stop`, then lets the connections finish what they are
/// answering and returns.
pub async fn serve(listener: TcpListener, router: Router, limits: ServerLimits, stop: CancellationToken) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Arc::new(PerClient::default());
    let requests = Arc::new(Semaphore::new(limits.max_requests));
    let router = router.layer(axum::middleware::from_fn_with_state((Arc::clone(&requests), limits.body_timeout), admit));
    let tasks = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else { continue };
        let Some(slot) = clients.enter(peer.ip(), limits.max_connections_per_client) else { continue };
        let router = router.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            let _held = (permit, slot);
            let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let router = router.clone();
                async move { tower::ServiceExt::oneshot(router, request.map(axum::body::Body::new)).await }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(30), connection).await;
                }
            }
        });
    }
    tasks.close();
    tasks.wait().await;
}

/// Takes a request slot (503 when none is free) and reads the body within its time limit.
async fn admit(State((requests, body_timeout)): State<(Arc<Semaphore>, Duration)>, request: Request, next: Next) -> Response {
    let Ok(_slot) = requests.try_acquire() else {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the service is answering as many requests as it takes; try again shortly")
            .into_response();
    };
    let (parts, body) = request.into_parts();
    let body = match tokio::time::timeout(body_timeout, read_body(body)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(BodyError::Broken)) => return ApiError::new(StatusCode::BAD_REQUEST, "the request body broke off").into_response(),
        Ok(Err(BodyError::TooLarge)) => {
            let mut response =
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the request body is larger than {} bytes", super::BODY_LIMIT))
                    .into_response();
            response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
            return response;
        }
        Err(_) => return ApiError::new(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time").into_response(),
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(body))).await
}

enum BodyError {
    /// Over [`super::BODY_LIMIT`].
    TooLarge,
    /// The client stopped sending part way.
    Broken,
}

/// The body, up to the limit. Past it, what the client still sends is read and dropped (up to four
/// times the limit), so it is reading when the 413 comes rather than writing into a closed socket
/// and seeing only a reset.
async fn read_body(body: axum::body::Body) -> Result<bytes::Bytes, BodyError> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut kept = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        seen = seen.saturating_add(chunk.len());
        if seen <= super::BODY_LIMIT {
            kept.extend_from_slice(&chunk);
        } else if seen > 4 * super::BODY_LIMIT {
            break;
        }
    }
    if seen > super::BODY_LIMIT { Err(BodyError::TooLarge) } else { Ok(kept.freeze()) }
}

/// The client's address, when the request came through [`serve`].
pub fn client_of(request: &axum::http::request::Parts) -> Option<SocketAddr> {
    request.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
