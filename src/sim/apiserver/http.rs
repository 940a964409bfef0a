//! The HTTP transport: the same handler served over a TCP listener (plain HTTP/1.1), so
//! `kubectl --server http://127.0.0.1:PORT` can look at the simulated cluster.

use std::net::SocketAddr;

use tokio::task::JoinHandle;

use super::service::ApiService;

/// The router serving every path with the API server.
pub(super) fn router(service: ApiService) -> axum::Router {
    axum::Router::new().fallback_service(service)
}

/// A running HTTP server. Dropping it (or [`HttpServer::shutdown`]) stops it, open watches
/// included.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    /// Binds `addr` (port 0 picks a free port) and serves `service` on it.
    pub(super) async fn start(service: ApiService, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move { axum::serve(listener, router(service)).await });
        Ok(Self { addr, task })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
