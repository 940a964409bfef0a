//! The in-process transport: a `tower::Service` that `kube::Client::new` runs on, with no
//! sockets and no timers of its own (so it runs on a current-thread runtime with paused time).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::HttpBody;
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::BodyExt as _;
use tower::BoxError;

use super::Shared;
use super::routes::{self, ResponseBody};
use super::status::ApiError;

/// The API server as a `tower::Service` over HTTP requests (any body type, e.g.
/// `kube::client::Body` or `axum::body::Body`). Cheap to clone; every clone serves the same
/// server.
#[derive(Clone)]
pub struct ApiService {
    pub(super) shared: Arc<Shared>,
    /// Read the server's clock (false: use the time it last gave).
    pub(super) live_clock: bool,
}

impl std::fmt::Debug for ApiService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiService").finish_non_exhaustive()
    }
}

impl<B> tower::Service<http::Request<B>> for ApiService
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        let live_clock = self.live_clock;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    let e: BoxError = e.into();
                    let err =
                        ApiError::bad_request(format!("could not read the request body: {e}"));
                    return Ok(routes::error_response(&err));
                }
            };
            Ok(routes::handle(&shared, &parts, bytes, live_clock))
        })
    }
}
