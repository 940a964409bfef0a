//! The readings: facts, licenses, domain status and patches.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::requests::caller;
use super::{DeviceContext, answers};
use crate::drivers::upkeep::wire::{
    DomainStatusBody, FactsBody, LicensesBody, PatchBody, PatchesBody,
};

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

/// `GET patches`.
pub(super) async fn patches(State(ctx): State<DeviceContext>, headers: HeaderMap) -> Response {
    let now = ctx.sim.clock.now();
    let reply = ctx.sim.model.patches(&ctx.device, caller(&headers), now);
    answers::reading(reply, |patches| PatchesBody {
        patches: patches.iter().map(PatchBody::from).collect(),
    })
    .await
}
