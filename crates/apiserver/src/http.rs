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

/// An HTTP server running on its own thread with its own real-time tokio runtime, so that it
/// keeps serving (and its watches keep real-time timeouts and bookmarks) while the caller's
/// runtime runs on paused, virtual time. Dropping it stops the server and joins the thread.
#[derive(Debug)]
pub struct ThreadedHttpServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ThreadedHttpServer {
    /// Binds `addr` now (so errors surface here) and serves `service` from a new thread.
    pub(super) fn start(service: ApiService, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("apiserver-http-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        result = axum::serve(listener, router(service)) => {
                            if let Err(e) = result {
                                tracing::warn!(error = %e, "the simulated API server's HTTP listener failed");
                            }
                        }
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here cancels open connections and watches.
            })?;
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for ThreadedHttpServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
