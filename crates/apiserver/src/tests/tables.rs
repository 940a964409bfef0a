//! `Table` output of the built-in kinds: the columns and cells `kubectl get` shows against a
//! real server.

use std::time::Duration;

use super::*;

/// The `Table` of a list.
async fn table(server: &ApiServer, uri: &str) -> Value {
    let request = http::Request::get(uri)
        .header(
            http::header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())
        .unwrap();
    let table: Value = server.client().request(request).await.unwrap();
    assert_eq!(table["kind"], "Table", "{table}");
    table
}

/// The column names, and priority-1 names marked with `*`.
fn columns(table: &Value) -> Vec<String> {
    table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap().to_string();
            if c["priority"] == 1 {
                format!("*{name}")
            } else {
                name
            }
        })
        .collect()
}

/// The cells of the row named `name` (its metadata name).
fn row<'t>(table: &'t Value, name: &str) -> &'t Value {
    &table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["object"]["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {table}"))["cells"]
}

async fn post(server: &ApiServer, uri: &str, body: Value) -> Value {
    let (code, created) = raw(
        &server.client(),
        http::Method::POST,
        uri,
        "application/json",
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    created
}

async fn status(server: &ApiServer, uri: &str, status: Value) {
    let (code, body) = raw(
        &server.client(),
        http::Method::PATCH,
        uri,
        "application/merge-patch+json",
        serde_json::to_vec(&json!({"status": status})).unwrap(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test(start_paused = true)]
async fn events_print_last_seen_type_reason_object_message() {
    bounded(async {
        let server = server();
        post(
            &server,
            "/apis/events.k8s.io/v1/namespaces/default/events",
            json!({
                "apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"name": "e1"},
                "eventTime": "2026-03-01T00:00:00.000000Z",
                "regarding": {"kind": "UpgradeTask", "name": "t1", "fieldPath": "spec"},
                "reason": "Started", "type": "Normal", "action": "Run",
                "note": "  it started  ",
                "reportingController": "upkeep.dev/upkeep", "reportingInstance": "upkeep-0",
            }),
        )
        .await;
        post(
            &server,
            "/api/v1/namespaces/default/events",
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "e2"},
                "involvedObject": {"kind": "Pod", "name": "p"},
                "reason": "Pulled", "type": "Normal", "message": "pulled",
                "source": {"component": "kubelet"},
                "count": 3,
                "firstTimestamp": "2026-03-01T00:00:00Z", "lastTimestamp": "2026-03-01T00:01:00Z",
            }),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(300)).await;
        let expected_columns = [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "*Subobject",
            "*Source",
            "Message",
            "*First Seen",
            "*Count",
            "*Name",
        ];
        for uri in [
            "/api/v1/namespaces/default/events",
            "/apis/events.k8s.io/v1/namespaces/default/events",
        ] {
            let t = table(&server, uri).await;
            assert_eq!(columns(&t), expected_columns, "{uri}");
            assert_eq!(
                row(&t, "e1"),
                &json!([
                    "5m",
                    "Normal",
                    "Started",
                    "upgradetask/t1",
                    "spec",
                    "upkeep.dev/upkeep, upkeep-0",
                    "it started",
                    "5m",
                    1,
                    "e1"
                ]),
                "{uri}"
            );
            assert_eq!(
                row(&t, "e2"),
                &json!([
                    "4m", "Normal", "Pulled", "pod/p", "", "kubelet", "pulled", "5m", 3, "e2"
                ]),
                "{uri}"
            );
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn pods_nodes_and_namespaces() {
    bounded(async {
        let server = server();
        post(
            &server,
            "/api/v1/namespaces/default/pods",
            json!({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                "spec": {"nodeName": "node-1", "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]},
            }),
        )
        .await;
        post(
            &server,
            "/api/v1/namespaces/default/pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "new"},
                   "spec": {"containers": [{"name": "a", "image": "x"}]}}),
        )
        .await;
        status(
            &server,
            "/api/v1/namespaces/default/pods/web/status",
            json!({
                "phase": "Running", "podIP": "10.1.0.1", "podIPs": [{"ip": "10.1.0.1"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 2, "image": "x", "imageID": "",
                     "state": {"running": {"startedAt": "2026-03-01T00:00:00Z"}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-03-01T00:00:30Z"}}},
                    {"name": "b", "ready": false, "restartCount": 0, "image": "y", "imageID": "",
                     "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                ],
            }),
        )
        .await;
        post(
            &server,
            "/api/v1/nodes",
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "node-1", "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
                "spec": {"unschedulable": true},
                "status": {
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                    "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 12",
                                 "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7.0",
                                 "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": "",
                                 "operatingSystem": "linux", "architecture": "amd64"},
                },
            }),
        )
        .await;
        post(
            &server,
            "/api/v1/nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-2"}}),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(90)).await;
        let pods = table(&server, "/api/v1/namespaces/default/pods").await;
        assert_eq!(
            columns(&pods),
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "*IP",
                "*Node",
                "*Nominated Node",
                "*Readiness Gates"
            ]
        );
        assert_eq!(
            row(&pods, "web"),
            &json!([
                "web",
                "1/2",
                "CrashLoopBackOff",
                "2 (60s ago)",
                "90s",
                "10.1.0.1",
                "node-1",
                "<none>",
                "<none>"
            ])
        );
        assert_eq!(
            row(&pods, "new"),
            &json!([
                "new", "0/1", "Pending", "0", "90s", "<none>", "<none>", "<none>", "<none>"
            ])
        );
        let nodes = table(&server, "/api/v1/nodes").await;
        assert_eq!(
            columns(&nodes),
            [
                "Name",
                "Status",
                "Roles",
                "Age",
                "Version",
                "*Internal-IP",
                "*External-IP",
                "*OS-Image",
                "*Kernel-Version",
                "*Container-Runtime"
            ]
        );
        assert_eq!(
            row(&nodes, "node-1"),
            &json!([
                "node-1",
                "Ready,SchedulingDisabled",
                "control-plane,worker",
                "90s",
                "v1.33.0",
                "10.0.0.1",
                "<none>",
                "Debian GNU/Linux 12",
                "6.1.0",
                "containerd://1.7.0"
            ])
        );
        assert_eq!(
            row(&nodes, "node-2"),
            &json!([
                "node-2",
                "Unknown",
                "<none>",
                "90s",
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ])
        );
        let namespaces = table(&server, "/api/v1/namespaces").await;
        assert_eq!(columns(&namespaces), ["Name", "Status", "Age"]);
        assert_eq!(row(&namespaces, "default"), &json!(["default", "Active", "90s"]));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn secrets_configmaps_leases_jobs_and_the_apps_kinds() {
    bounded(async {
        let server = server();
        let ns = "/namespaces/default";
        post(
            &server,
            &format!("/api/v1{ns}/secrets"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "1", "b": "2"}}),
        )
        .await;
        post(
            &server,
            &format!("/api/v1{ns}/configmaps"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"b": "AA=="}}),
        )
        .await;
        post(
            &server,
            &format!("/apis/coordination.k8s.io/v1{ns}/leases"),
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "upkeep-0"}}),
        )
        .await;
        let template = json!({"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        post(
            &server,
            &format!("/apis/batch/v1{ns}/jobs"),
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                   "spec": {"completions": 3, "selector": {"matchLabels": {"app": "w"}}, "template": template}}),
        )
        .await;
        status(
            &server,
            &format!("/apis/batch/v1{ns}/jobs/j/status"),
            json!({"succeeded": 3, "startTime": "2026-03-01T00:00:00Z", "completionTime": "2026-03-01T00:02:05Z",
                   "conditions": [{"type": "Complete", "status": "True"}]}),
        )
        .await;
        post(
            &server,
            &format!("/apis/apps/v1{ns}/deployments"),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                   "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "w"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["z", "a"]}]}, "template": template}}),
        )
        .await;
        post(
            &server,
            &format!("/apis/apps/v1{ns}/daemonsets"),
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds"},
                   "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": {"metadata": {"labels": {"app": "w"}}, "spec": {"nodeSelector": {"os": "linux"}, "containers": [{"name": "a", "image": "x"}]}}}}),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
        let t = table(&server, &format!("/api/v1{ns}/secrets")).await;
        assert_eq!(columns(&t), ["Name", "Type", "Data", "Age"]);
        assert_eq!(row(&t, "s"), &json!(["s", "Opaque", 2, "3h"]));
        let t = table(&server, &format!("/api/v1{ns}/configmaps")).await;
        assert_eq!(columns(&t), ["Name", "Data", "Age"]);
        assert_eq!(row(&t, "c"), &json!(["c", 2, "3h"]));
        let t = table(&server, &format!("/apis/coordination.k8s.io/v1{ns}/leases")).await;
        assert_eq!(columns(&t), ["Name", "Holder", "Age"]);
        assert_eq!(row(&t, "l"), &json!(["l", "upkeep-0", "3h"]));
        let t = table(&server, &format!("/apis/batch/v1{ns}/jobs")).await;
        assert_eq!(
            columns(&t),
            [
                "Name",
                "Status",
                "Completions",
                "Duration",
                "Age",
                "*Containers",
                "*Images",
                "*Selector"
            ]
        );
        assert_eq!(
            row(&t, "j"),
            &json!(["j", "Complete", "3/3", "2m5s", "3h", "a,b", "x,y", "app=w"])
        );
        let t = table(&server, &format!("/apis/apps/v1{ns}/deployments")).await;
        assert_eq!(
            columns(&t),
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "*Containers",
                "*Images",
                "*Selector"
            ]
        );
        assert_eq!(
            row(&t, "d"),
            &json!(["d", "0/3", 0, 0, "3h", "a,b", "x,y", "app=w,tier in (a,z)"])
        );
        let t = table(&server, &format!("/apis/apps/v1{ns}/daemonsets")).await;
        assert_eq!(
            row(&t, "ds"),
            &json!([
                "ds", 0, 0, 0, 0, 0, "os=linux", "3h", "a", "x", "app=w"
            ])
        );
    })
    .await;
}
