//! Label selectors (every operator) and field selectors on list.

use kube::api::{ListParams, Patch, PatchParams};

use super::*;

async fn names(api: &Api<UpgradeTask>, lp: &ListParams) -> Vec<String> {
    api.list(lp)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|t| t.metadata.name.unwrap())
        .collect()
}

async fn seeded() -> (ApiServer, Api<UpgradeTask>) {
    let server = server();
    let api = tasks(&server);
    create(&api, &labelled("a", &[("site", "x"), ("tier", "1")])).await;
    create(&api, &labelled("b", &[("site", "y"), ("tier", "2")])).await;
    create(&api, &labelled("c", &[("site", "z")])).await;
    create(&api, &labelled("d", &[])).await;
    (server, api)
}

#[tokio::test(start_paused = true)]
async fn every_label_operator() {
    bounded(async {
        let (_server, api) = seeded().await;
        let cases: &[(&str, &[&str])] = &[
            ("site=x", &["a"]),
            ("site==y", &["b"]),
            ("site!=x", &["b", "c", "d"]),
            ("site in (x, z)", &["a", "c"]),
            ("site notin (x,z)", &["b", "d"]),
            ("tier", &["a", "b"]),
            ("!tier", &["c", "d"]),
            ("tier>1", &["b"]),
            ("tier<2", &["a"]),
            ("site,tier=2", &["b"]),
            ("site in (x,y),!tier", &[]),
            ("", &["a", "b", "c", "d"]),
        ];
        for (selector, expected) in cases {
            let lp = ListParams::default().labels(selector);
            assert_eq!(names(&api, &lp).await, *expected, "selector {selector:?}");
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_malformed_label_selector_is_a_bad_request() {
    bounded(async {
        let (_server, api) = seeded().await;
        for selector in ["site in x", "site=(a)", "=x", "site notin (a,"] {
            let err = api_error(api.list(&ListParams::default().labels(selector)).await);
            assert_eq!(err.code, 400, "selector {selector:?}: {}", err.message);
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn field_selectors() {
    bounded(async {
        let (server, api) = seeded().await;
        assert_eq!(
            names(&api, &ListParams::default().fields("metadata.name=b")).await,
            ["b"]
        );
        assert_eq!(
            names(&api, &ListParams::default().fields("metadata.name!=b")).await,
            ["a", "c", "d"]
        );
        assert_eq!(
            names(
                &api,
                &ListParams::default().fields("metadata.namespace==default,metadata.name=c")
            )
            .await,
            ["c"]
        );
        let elsewhere: Api<UpgradeTask> = Api::all(server.client());
        assert!(
            names(
                &elsewhere,
                &ListParams::default().fields("metadata.namespace=other")
            )
            .await
            .is_empty()
        );
        let err = api_error(
            api.list(&ListParams::default().fields("spec.target=a"))
                .await,
        );
        assert_eq!(err.code, 400);
        assert_eq!(err.message, "field label not supported: spec.target");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_list_by_one_label_value_follows_relabels_deletes_and_namespaces() {
    bounded(async {
        let (server, api) = seeded().await;
        let site = |v: &str| ListParams::default().labels(&format!("site={v}"));
        let relabel = |v: &str| Patch::Merge(json!({"metadata": {"labels": {"site": v}}}));
        api.patch("b", &PatchParams::default(), &relabel("x"))
            .await
            .unwrap();
        api.patch("d", &PatchParams::default(), &relabel("x"))
            .await
            .unwrap();
        assert_eq!(names(&api, &site("x")).await, ["a", "b", "d"]);
        assert_eq!(names(&api, &site("y")).await, Vec::<String>::new());
        api.delete("a", &Default::default()).await.unwrap();
        let both = ListParams::default().labels("site=x,tier=2");
        assert_eq!(names(&api, &both).await, ["b"]);
        assert_eq!(names(&api, &site("x")).await, ["b", "d"]);
        // Another namespace's object with the label is not this namespace's.
        let other: Api<UpgradeTask> = Api::namespaced(server.client(), "other");
        create(&other, &labelled("e", &[("site", "x")])).await;
        assert_eq!(names(&api, &site("x")).await, ["b", "d"]);
        assert_eq!(names(&other, &site("x")).await, ["e"]);
        let all: Api<UpgradeTask> = Api::all(server.client());
        assert_eq!(names(&all, &site("x")).await, ["b", "d", "e"]);
    })
    .await;
}
