//! Discovery, `Table` output and the HTTP transport.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube::discovery::{Discovery, Scope};
use serde_json::Value;

use super::*;

#[tokio::test(start_paused = true)]
async fn kube_discovery_finds_the_crds_and_built_ins() {
    bounded(async {
        let server = server();
        let discovery = Discovery::new(server.client()).run().await.unwrap();
        let group = discovery
            .groups()
            .find(|g| g.name() == "upkeep.dev")
            .expect("the upkeep.dev group");
        let kinds: Vec<String> = group
            .recommended_resources()
            .into_iter()
            .map(|(ar, _)| ar.kind)
            .collect();
        for kind in [
            "MaintenanceWindow",
            "Device",
            "FirmwareUpgrade",
            "PatchJob",
            "UpgradeTask",
        ] {
            assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
        }
        let (ar, caps) = group
            .recommended_resources()
            .into_iter()
            .find(|(ar, _)| ar.kind == "UpgradeTask")
            .unwrap();
        assert_eq!(ar.plural, "upgradetasks");
        assert_eq!(caps.scope, Scope::Namespaced);
        assert!(
            caps.subresources
                .iter()
                .any(|(s, _)| s.plural == "upgradetasks/status" || s.plural == "status")
        );
        for group in ["", "events.k8s.io", "coordination.k8s.io", "batch"] {
            assert!(discovery.has_group(group) || group.is_empty(), "{group}");
        }
        let core = discovery.groups().find(|g| g.name().is_empty()).unwrap();
        let core_kinds: Vec<String> = core
            .recommended_resources()
            .into_iter()
            .map(|(ar, _)| ar.kind)
            .collect();
        for kind in ["Namespace", "Node", "Secret", "ConfigMap", "Pod"] {
            assert!(
                core_kinds.iter().any(|k| k == kind),
                "{kind} in {core_kinds:?}"
            );
        }
    })
    .await;
}

async fn get_with_accept(client: &kube::Client, uri: &str, accept: &str) -> Value {
    let request = http::Request::get(uri)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .unwrap();
    client.request::<Value>(request).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn tables_carry_the_printer_columns() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        api.patch_status(
            "t1",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                serde_json::json!({"status": {"code": "SUCCESS", "result": "Succeeded"}}),
            ),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_secs(125)).await;
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
        let table = get_with_accept(
            &server.client(),
            "/apis/upkeep.dev/v1alpha1/namespaces/default/upgradetasks",
            accept,
        )
        .await;
        assert_eq!(table["kind"], "Table");
        let columns: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            columns,
            [
                "Name", "Parent", "Target", "Code", "Result", "Message", "Age"
            ]
        );
        let cells = &table["rows"][0]["cells"];
        assert_eq!(cells[0], "t1");
        assert_eq!(cells[2], "dp-1");
        assert_eq!(cells[3], "SUCCESS");
        assert_eq!(cells[4], "Succeeded");
        assert_eq!(cells[5], Value::Null);
        assert_eq!(cells[6], "2m5s");
        assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn partial_object_metadata_lists() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        let list = api.list_metadata(&ListParams::default()).await.unwrap();
        assert_eq!(list.items.len(), 1);
        assert_eq!(list.items[0].metadata.name.as_deref(), Some("t1"));
    })
    .await;
}

/// Over a real socket, on real time (paused time would fire the client's timeouts while it
/// waits for the socket).
#[tokio::test]
async fn http_transport_serves_kube_clients() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = server();
        let http = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let config = kube::Config::new(http.url().parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let api: Api<UpgradeTask> = Api::default_namespaced(client.clone());
        api.create(&PostParams::default(), &task("t1", "dp-1"))
            .await
            .unwrap();
        let list = api.list(&ListParams::default()).await.unwrap();
        assert_eq!(list.items.len(), 1);
        let rv = list.metadata.resource_version.unwrap();
        let mut stream = api
            .watch(&WatchParams::default().timeout(5), &rv)
            .await
            .unwrap()
            .boxed();
        api.create(&PostParams::default(), &task("t2", "dp-2"))
            .await
            .unwrap();
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(t) => assert_eq!(t.metadata.name.as_deref(), Some("t2")),
            other => panic!("expected ADDED, got {other:?}"),
        }
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(version.major, "1");
        http.shutdown();
    })
    .await
    .expect("the HTTP test hung");
}

#[tokio::test(start_paused = true)]
async fn openapi_v3_tells_kubectl_about_field_validation() {
    bounded(async {
        let server = server();
        let client = server.client();
        let root = get_with_accept(&client, "/openapi/v3", "application/json").await;
        let url = root["paths"]["apis/upkeep.dev/v1alpha1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .to_string();
        let doc = get_with_accept(&client, &url, "application/json").await;
        let patch = &doc["paths"]
            ["/apis/upkeep.dev/v1alpha1/namespaces/{namespace}/upgradetasks/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            serde_json::json!({"group": "upkeep.dev", "version": "v1alpha1", "kind": "UpgradeTask"})
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        let core = get_with_accept(&client, "/openapi/v3/api/v1", "application/json").await;
        assert!(core["paths"]["/api/v1/nodes/{name}"]["patch"].is_object());
    })
    .await;
}

/// A plain HTTP/1.1 GET over a blocking socket: (status line, body).
fn blocking_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The threaded server keeps serving while a paused-time runtime drives the simulation.
#[test]
fn threaded_http_server_serves_a_paused_simulation() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let server = runtime.block_on(async { server() });
    let http = server
        .serve_on_thread("127.0.0.1:0".parse().unwrap())
        .unwrap();
    runtime.block_on(bounded_for(Duration::from_secs(8 * 24 * 3600), async {
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        // A simulated week passes in moments; the HTTP thread is not disturbed.
        tokio::time::sleep(Duration::from_secs(7 * 24 * 3600)).await;
    }));
    let (status, body) = blocking_get(
        http.local_addr(),
        "/apis/upkeep.dev/v1alpha1/namespaces/default/upgradetasks/t1",
    );
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("\"target\":\"dp-1\""), "{body}");
    http.shutdown();
}
