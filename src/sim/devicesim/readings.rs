//! The readings: facts, licenses and domain status.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::requests::caller;
use super::{DeviceContext, answers};
use crate::drivers::upkeep::wire::{DomainStatusBody, FactsBody, LicensesBody};

/// `GET facts`.
pub(super) async fn facts(State(ctx): State<DeviceContext>, headers: HeaderMap) -> Response {
    let now = ctx.sim.clock.now();
    let reply = ctx.sim.model.inventory(&ctx.device, caller(&headers), now);
    answers::reading(reply, |inventory| FactsBody::from(&inventory)).await
}

/// `GET licenses`.
pub(super) async fn licenses(State(ctx): State<DeviceContext>, headers: HeaderMap) -> Response {
    let now = ctx.sim.clock.now();
    let reply = ctx.sim.model.licenses(&ctx.device, caller(&headers), now);
    answers::reading(reply, |features| LicensesBody { features }).await
}

/// `GET domains`.
pub(super) async fn domains(State(ctx): State<DeviceContext>, headers: HeaderMap) -> Response {
    let now = ctx.sim.clock.now();
    let reply = ctx
        .sim
        .model
        .domain_status(&ctx.device, caller(&headers), now);
    answers::reading(reply, |status| DomainStatusBody::from(&status)).await
}
