//! `/metrics` over HTTP: a router for processes that already run tokio, and a small
//! server on its own thread for the ones that do not (the rollout loop).

use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::oneshot;

use crate::Metrics;

/// Content type of the OpenMetrics text format that `prometheus-client` writes.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A router serving `GET /metrics` (and `/` as a pointer to it).
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { ([(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)], m.encode()).into_response() }
            }),
        )
        .route("/", get(|| async { "zelda-rl metrics: GET /metrics\n" }))
}

/// A running `/metrics` server; stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// The address it listens on (the real port when `:0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds `addr` now (so a taken port fails here, naming the address) and serves
/// `/metrics` from a background thread with its own single-threaded runtime.
pub fn serve_metrics(metrics: Metrics, addr: &str) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("metrics address {addr}: {e}")))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "metrics server: no runtime");
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "metrics server: listener");
                        return;
                    }
                };
                let serve =
                    axum::serve(listener, metrics_router(metrics)).with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "metrics server stopped");
                }
            });
        })?;
    tracing::info!(addr = %local, "serving Prometheus metrics on /metrics");
    Ok(MetricsServer {
        addr: local,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_exposition_and_rejects_a_taken_port() {
        let m = Metrics::new();
        m.env_steps(42);
        let server = serve_metrics(m.clone(), "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (status, ctype, body) = rt.block_on(async {
            let resp = reqwest::get(format!("http://{addr}/metrics"))
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let ctype = resp.headers()[CONTENT_TYPE].to_str().unwrap().to_string();
            (status, ctype, resp.text().await.unwrap())
        });
        assert_eq!(status, 200);
        assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
        assert!(body.contains("zelda_rl_env_steps_total 42"), "{body}");
        let err = serve_metrics(m, &addr.to_string()).unwrap_err();
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        drop(server);
    }
}
