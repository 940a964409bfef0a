//! `docs/device-api.yaml` and the implementation agree: the document lists exactly the resources
//! and operation kinds the driver and the simulator use, and every answer the simulator gives
//! (firmware and patch operations alike) validates against the document's schema for it.

use std::time::Duration;

use serde_json::{Value, json};
use upkeep::drivers::credentials::Credentials;
use upkeep::drivers::http::{TlsSettings, client};
use upkeep::drivers::upkeep::wire;
use upkeep::sim::devicesim::{self, Options};
use upkeep::sim::fleet_file::Fleet;

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/device-api.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// Asserts `value` validates against the document's schema `name`.
fn conforms(document: &Value, name: &str, value: &Value) {
    let mut schema = json!({ "$ref": format!("#/components/schemas/{name}") });
    schema["components"] = document["components"].clone();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {value}: {errors:?}");
}

#[test]
fn the_schemas_reject_what_the_api_does_not_allow() {
    let doc = document();
    for (name, bad) in [
        ("Facts", json!({"virtual": true, "firmware": "7.5.1.7"})),
        (
            "Operation",
            json!({"key": "k", "kind": "upgrade", "state": "paused"}),
        ),
        ("OperationRequest", json!({"kind": "reboot", "key": "k"})),
        ("Error", json!({"error": "no message"})),
        ("Patch", json!({"id": "SPH106", "state": "halfway"})),
        ("Patches", json!({"patches": [{"state": "running"}]})),
        ("PatchRequest", json!({"activationDelaySeconds": -1})),
    ] {
        let mut schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        schema["components"] = doc["components"].clone();
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(!validator.is_valid(&bad), "{name} accepts {bad}");
    }
}

#[test]
fn the_document_lists_the_resources_the_code_uses() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0."));
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected = [
        format!("/{}", wire::DOMAINS),
        format!("/{}", wire::FACTS),
        format!("/{}/{{name}}", wire::IMAGES),
        format!("/{}", wire::LICENSES),
        format!("/{}", wire::OPERATIONS),
        format!("/{}/{{key}}", wire::OPERATIONS),
        format!("/{}", wire::PATCHES),
    ];
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    assert_eq!(doc["security"], json!([{"basicAuth": []}]));
    let kinds: Vec<Value> = wire::OperationKind::ALL
        .iter()
        .map(|k| serde_json::to_value(k).unwrap())
        .collect();
    assert_eq!(
        doc["components"]["schemas"]["OperationKind"]["enum"],
        Value::Array(kinds)
    );
    let headers: Vec<String> = doc
        .pointer("/paths/~1images~1{name}/put/parameters")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_ascii_lowercase))
        .collect();
    for header in [wire::SHA256_HEADER, wire::SIZE_HEADER, wire::OFFSET_HEADER] {
        assert!(headers.iter().any(|h| h == header), "{header}");
    }
    for name in ["Task", "Phase"] {
        let header = doc["components"]["parameters"][name]["name"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!([wire::TASK_HEADER, wire::PHASE_HEADER].contains(&header.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulators_answers_follow_the_document() {
    let doc = document();
    let fleet = Fleet::from_yaml(
        "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\ndevices:\n  - name: dp-1\n    timings: { uploadRate: 16Mi }\n  - name: off\n    available: false\n  - name: ne-1\n    family: NetworkElement\n    patchBehaviour: { activationDelay: 24h }\n    patches: [ { id: SPH105, state: running } ]\n",
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sim = devicesim::start(
        &fleet,
        listener,
        Options {
            credentials: Some(Credentials::new("admin", "pw")),
            tls: None,
        },
    )
    .unwrap();
    let base = sim.device_url("default", "dp-1").unwrap();
    let http = client(&TlsSettings::default(), Duration::from_secs(5)).unwrap();
    let call = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{base}/{path}"))
            .basic_auth("admin", Some("pw"))
    };
    let answer = |response: reqwest::Response, status: u16| async move {
        assert_eq!(response.status().as_u16(), status, "{}", response.url());
        response.json::<Value>().await.unwrap()
    };

    for (path, schema) in [
        ("facts", "Facts"),
        ("licenses", "Licenses"),
        ("domains", "DomainStatus"),
    ] {
        let body = answer(call(reqwest::Method::GET, path).send().await.unwrap(), 200).await;
        conforms(&doc, schema, &body);
    }
    let missing = answer(
        call(reqwest::Method::GET, "images/x.scrypt4")
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    conforms(&doc, "Error", &missing);

    let bytes = vec![1u8; 4096];
    let sha256 = upkeep::drivers::upkeep::upload::hex(&{
        use sha2::Digest as _;
        sha2::Sha256::digest(&bytes)
    });
    let put = call(reqwest::Method::PUT, "images/idg7519.oradco.scrypt4")
        .header(wire::SHA256_HEADER, &sha256)
        .header(wire::SIZE_HEADER, bytes.len())
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    let held = answer(put, 201).await;
    conforms(&doc, "ImageStatus", &held);
    let held = answer(
        call(reqwest::Method::GET, "images/idg7519.oradco.scrypt4")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    conforms(&doc, "ImageStatus", &held);
    assert_eq!(held["complete"], true);

    let image = json!({"name": "idg7519.oradco.scrypt4", "size": bytes.len(), "sha256": sha256});
    for (kind, status) in [("upload", 201), ("upload", 200), ("secondQuiesce", 201)] {
        let request = json!({"kind": kind, "key": format!("t/{kind}"), "image": image});
        conforms(&doc, "OperationRequest", &request);
        let started = call(reqwest::Method::POST, "operations")
            .json(&request)
            .send()
            .await
            .unwrap();
        let operation = answer(started, status).await;
        conforms(&doc, "Operation", &operation);
    }
    let polled = answer(
        call(reqwest::Method::GET, "operations/t%2FsecondQuiesce")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    conforms(&doc, "Operation", &polled);
    assert_eq!(polled["state"], "running");
    let unknown = answer(
        call(reqwest::Method::GET, "operations/nope")
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    conforms(&doc, "Error", &unknown);

    // A network element: board space and patches in its readings, and the patch operations.
    let ne = sim.device_url("default", "ne-1").unwrap();
    let call_ne = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{ne}/{path}"))
            .basic_auth("admin", Some("pw"))
    };
    let facts = answer(
        call_ne(reqwest::Method::GET, "facts").send().await.unwrap(),
        200,
    )
    .await;
    conforms(&doc, "Facts", &facts);
    assert!(facts["freeSpace"]["board"].is_u64(), "{facts}");
    let put = call_ne(reqwest::Method::PUT, "images/SPH106.pkg")
        .header(wire::SHA256_HEADER, &sha256)
        .header(wire::SIZE_HEADER, bytes.len())
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    answer(put, 201).await;
    let package = json!({"name": "SPH106.pkg", "size": bytes.len(), "sha256": sha256});
    for (kind, extra, status) in [
        (
            "patchLoad",
            json!({"image": package, "patch": {"id": "SPH106"}}),
            201,
        ),
        (
            "patchLoad",
            json!({"image": package, "patch": {"id": "SPH106"}}),
            200,
        ),
    ] {
        let mut request = json!({"kind": kind, "key": format!("t/{kind}")});
        request
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        conforms(&doc, "OperationRequest", &request);
        let started = call_ne(reqwest::Method::POST, "operations")
            .json(&request)
            .send()
            .await
            .unwrap();
        let operation = answer(started, status).await;
        conforms(&doc, "Operation", &operation);
    }
    let patches = answer(
        call_ne(reqwest::Method::GET, "patches")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    conforms(&doc, "Patches", &patches);
    let polled = answer(
        call_ne(reqwest::Method::GET, "operations/t%2FpatchLoad")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    conforms(&doc, "Operation", &polled);
    assert_eq!(polled["kind"], "patchLoad");
    // A patch operation without its patch, and a set-delay without a delay, are bad requests.
    for request in [
        json!({"kind": "patchActivate", "key": "t/bad"}),
        json!({"kind": "patchSetDelay", "key": "t/bad2", "patch": {"id": "SPH105"}}),
    ] {
        let refused = call_ne(reqwest::Method::POST, "operations")
            .json(&request)
            .send()
            .await
            .unwrap();
        conforms(&doc, "Error", &answer(refused, 400).await);
    }
    // A patch the element holds from the start: the set-delay, activation and confirm answers.
    for (kind, extra) in [
        (
            "patchSetDelay",
            json!({"id": "SPH105", "activationDelaySeconds": 0}),
        ),
        ("patchActivate", json!({"id": "SPH105"})),
        ("patchConfirm", json!({"id": "SPH105"})),
    ] {
        let request = json!({"kind": kind, "key": format!("held/{kind}"), "patch": extra});
        conforms(&doc, "OperationRequest", &request);
        let started = call_ne(reqwest::Method::POST, "operations")
            .json(&request)
            .send()
            .await
            .unwrap();
        conforms(&doc, "Operation", &answer(started, 201).await);
    }

    let unauthorized = http.get(format!("{base}/facts")).send().await.unwrap();
    assert!(unauthorized.headers().contains_key("www-authenticate"));
    conforms(&doc, "Error", &answer(unauthorized, 401).await);
    let off = sim.device_url("default", "off").unwrap();
    let unavailable = http
        .get(format!("{off}/facts"))
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap();
    conforms(&doc, "Error", &answer(unavailable, 503).await);
}
