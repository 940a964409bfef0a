//! `upkeep report version|history` in text, HTML and JSON, from a product directory and from
//! Host objects in the in-memory API server.

use std::collections::BTreeSet;

use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use upkeep::api::Host;
use upkeep::cli::report::{self, Format, ReportKind, Source};
use upkeep::sim::apiserver::ApiServer;

use super::fixtures::*;

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

fn installed() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempdir();
    let root = product(tmp.path());
    let fp = fix_pack(tmp.path());
    let fix = interim_fix(tmp.path());
    assert!(
        host(
            "install",
            &root,
            &[fp.to_str().unwrap(), fix.to_str().unwrap()]
        )
        .status
        .success()
    );
    assert!(
        host("uninstall", &root, &["9.0.5.23-WS-WAS-IFPH12345"])
            .status
            .success()
    );
    (tmp, root)
}

fn report(kind: &str, root: &std::path::Path, more: &[&str]) -> String {
    let dir = root.to_str().unwrap();
    let mut args = vec!["report", kind, "--product-dir", dir];
    args.extend_from_slice(more);
    let out = upkeep(&args);
    assert!(out.status.success(), "{}", text(&out));
    stdout(&out)
}

#[test]
fn json_reports_have_exactly_the_contracts_fields() {
    let (_tmp, root) = installed();
    let version: Value = serde_json::from_str(&report("version", &root, &["-o", "json"])).unwrap();
    assert_eq!(keys(&version), ["products"].into());
    let product = &version["products"][0];
    assert_eq!(
        keys(product),
        ["host", "id", "name", "version", "location", "packages"].into()
    );
    assert_eq!(product["id"], "was");
    assert_eq!(product["version"], "9.0.5.23");
    assert_eq!(product["location"], root.display().to_string());
    let package = &product["packages"][0];
    assert_eq!(
        keys(package),
        ["id", "type", "installedAt", "fixes", "backup"].into()
    );
    assert_eq!(package["id"], "9.0.5-WS-WAS-FP023");
    assert_eq!(package["type"], "FixPack");
    assert_eq!(package["installedAt"], AT);
    assert_eq!(package["fixes"], json!(["PH10001", "PH10002"]));
    assert_eq!(package["backup"], true);
    assert_eq!(product["packages"].as_array().unwrap().len(), 1);

    let history: Value = serde_json::from_str(&report("history", &root, &["-o", "json"])).unwrap();
    assert_eq!(keys(&history), ["events"].into());
    let events = history["events"].as_array().unwrap();
    let expected: BTreeSet<&str> = [
        "host",
        "product",
        "eventType",
        "id",
        "action",
        "updateType",
        "primaryContent",
        "logName",
        "backupName",
        "startTime",
        "endTime",
        "result",
    ]
    .into();
    assert!(events.iter().all(|e| keys(e) == expected));
    let ptf: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["eventType"] == "ptf")
        .map(|e| (e["id"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ptf,
        [
            ("9.0.5-WS-WAS-FP023", "install"),
            ("9.0.5.23-WS-WAS-IFPH12345", "install"),
            ("9.0.5.23-WS-WAS-IFPH12345", "uninstall")
        ]
    );
    assert_eq!(events[0]["updateType"], "replace");
    assert_eq!(events[0]["product"], "was");
    assert_eq!(events[0]["result"], "success");
    assert_eq!(events[1]["eventType"], "component");
    assert_eq!(events[1]["primaryContent"], Value::Null);

    let filtered: Value = serde_json::from_str(&report(
        "history",
        &root,
        &["-o", "json", "--package", "9.0.5.23-WS-WAS-IFPH12345"],
    ))
    .unwrap();
    let filtered = filtered["events"].as_array().unwrap();
    assert_eq!(
        filtered.len(),
        4,
        "two package events and their one component each"
    );
    assert!(
        filtered
            .iter()
            .all(|e| e["eventType"] == "component" || e["id"] == "9.0.5.23-WS-WAS-IFPH12345")
    );
}

#[test]
fn text_and_html_reports_show_every_package_and_event() {
    let (_tmp, root) = installed();
    let text = report("version", &root, &[]);
    assert!(
        text.contains("was WebSphere Application Server 9.0.5.23"),
        "{text}"
    );
    assert!(text.contains("9.0.5-WS-WAS-FP023  FixPack  installed 2026-12-05 22:00:00 UTC  backup yes  fixes PH10001, PH10002"), "{text}");
    let history = report("history", &root, &[]);
    assert!(
        history.contains("package: 9.0.5.23-WS-WAS-IFPH12345 uninstall replace"),
        "{history}"
    );
    assert!(
        history.contains("component: tools install add"),
        "{history}"
    );

    for kind in ["version", "history"] {
        let html = report(kind, &root, &["-o", "html"]);
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.contains("@media print"));
        assert!(
            !html.contains("<script") && !html.contains("http://") && !html.contains("https://")
        );
        assert!(html.contains("9.0.5-WS-WAS-FP023"));
        assert_eq!(
            html.matches("<table").count(),
            html.matches("</table>").count()
        );
    }
    let html = report("history", &root, &["-o", "html"]);
    assert!(
        html.contains("<tr class=\"component\"><td class=\"id\">web</td>"),
        "{html}"
    );
    assert!(html.contains("class=\"success\">success</td>"));
}

#[tokio::test]
async fn reports_read_hosts_from_the_cluster() {
    let (_tmp, root) = installed();
    let source = Source::from_dir(&root, None).unwrap();
    let server = ApiServer::builder(jiff::Timestamp::now)
        .crds(upkeep::api::crds())
        .build();
    let client = server.client();
    let api: Api<Host> = Api::namespaced(client.clone(), "default");
    for name in ["web-1", "web-2"] {
        let host: Host = serde_json::from_value(json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "Host",
            "metadata": {"name": name},
            "spec": {"products": [{"id": "was", "location": root.display().to_string()}]}
        }))
        .unwrap();
        api.create(&PostParams::default(), &host).await.unwrap();
        let status = json!({"status": {
            "products": source.products,
            "history": if name == "web-1" { source.history.clone() } else { vec![] },
        }});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }
    let hosts = report::hosts_from_cluster(client.clone(), Some("default"), &[])
        .await
        .unwrap();
    let sources: Vec<Source> = hosts.iter().map(Source::from_host).collect();
    let version = report::version_report(&sources, Some("was"));
    let value = serde_json::to_value(&version).unwrap();
    let hosts: Vec<&str> = value["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["web-1", "web-2"]);
    assert_eq!(
        value["products"][1]["packages"][0]["fixes"],
        json!(["PH10001", "PH10002"])
    );

    let history = report::history_report(&sources, None, Some("9.0.5-WS-WAS-FP023"));
    assert_eq!(history.events.len(), 5);
    assert!(
        history
            .events
            .iter()
            .all(|e| e.host.as_deref() == Some("web-1"))
    );

    let one = report::hosts_from_cluster(client.clone(), Some("default"), &["web-2".into()])
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    let missing = report::hosts_from_cluster(client, Some("default"), &["nope".into()])
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("no Host \"nope\""),
        "{missing}"
    );
    let _ = (ReportKind::Version, Format::Json);
}
