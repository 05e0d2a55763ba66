//! The Prometheus endpoint (`--metrics ADDR:PORT`): `GET /metrics` (and `HEAD`) over
//! HTTP/1.1, served by hyper with an axum router on a tokio current-thread runtime of its
//! own thread, so no client can hold up the packet path or another client.
//!
//! Limits, each a constant below: a request head over [`MAX_HEAD`] bytes is answered
//! `431` and the connection closed (hyper stops reading there); at most
//! [`MAX_CONNECTIONS`] connections are served at once (further ones wait in the listen
//! backlog until one ends); a connection must send a complete request head within
//! [`HEAD_TIMEOUT`] of opening and lives at most [`CONNECTION_TIME`] (which bounds idle
//! keep-alive connections). Other methods on `/metrics` get `405` with `Allow: GET,HEAD`,
//! other paths `404`.
//!
//! The text is formatted on tokio's blocking pool from a view of the engine the worker
//! copies out ([`super::control::render_metrics`]).

use super::control::{Shared, render_metrics};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The largest request head (request line and headers) read; hyper's smallest allowed
/// buffer is 8 KiB.
pub(super) const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once.
pub(super) const MAX_CONNECTIONS: usize = 256;
/// Time allowed for a request head to arrive from the connection's start (hyper's
/// `header_read_timeout`; Prometheus sends its request at once).
pub(super) const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection's whole life, keep-alive included (Prometheus reconnects).
pub(super) const CONNECTION_TIME: Duration = Duration::from_secs(60);

/// Bind `addr` (errors name it) and serve it from a thread of its own.
pub(super) fn start_metrics(addr: std::net::SocketAddr, shared: Shared) -> io::Result<()> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("metrics endpoint {addr}: {e}")))?;
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .thread_name("rvs-metrics-blk")
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("rvs-metrics".into())
        .spawn(move || {
            // Renders run on blocking threads this one starts: they inherit it.
            super::priority::lower("metrics endpoint");
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => serve(l, shared).await,
                    Err(e) => tracing::error!("metrics endpoint {addr}: {e}"),
                }
            });
        })?;
    Ok(())
}

/// The router: `/metrics` for GET and HEAD, 405 for other methods, 404 elsewhere.
fn router(shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(shared)
}

/// Accept connections while fewer than [`MAX_CONNECTIONS`] are open, each on a task.
async fn serve(listener: tokio::net::TcpListener, shared: Shared) {
    let app = router(shared);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and the like: wait rather than spin.
                tracing::warn!("metrics endpoint: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIME, conn).await;
            drop(slot);
        });
    }
}

/// `GET /metrics`: the text format 0.0.4; 503 with the reason when the text cannot be had.
async fn metrics(State(shared): State<Shared>) -> Response {
    let text = tokio::task::spawn_blocking(move || render_metrics(&shared))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    match text {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    }
}
