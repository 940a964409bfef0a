//! The image server: GET and HEAD of repository images, nothing else.

use reqwest::StatusCode;

#[tokio::test]
async fn serves_images_read_only_with_their_length() {
    let catalog = "images:\n  - { name: bios-2.5.0.bin, version: \"2.5.0\" }\n";
    let (_repo, base, dir) =
        crate::common::image_repository(&[("bios-2.5.0.bin", b"0123456789")], catalog).await;
    std::fs::write(dir.path().join(".secret"), b"x").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/inner.bin"), b"x").unwrap();
    let http = upkeep::drivers::http::client(
        &upkeep::drivers::http::TlsSettings::default(),
        std::time::Duration::from_secs(5),
    )
    .unwrap();

    let got = http
        .get(format!("{base}/bios-2.5.0.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["content-length"], "10");
    assert_eq!(got.headers()["content-type"], "application/octet-stream");
    assert_eq!(
        got.headers()["x-checksum-sha256"],
        "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882"
    );
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"0123456789");

    let head = http
        .head(format!("{base}/bios-2.5.0.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], "10");
    assert!(head.bytes().await.unwrap().is_empty());

    for path in [
        "/",
        "",
        "/catalog.yaml",
        "/.secret",
        "/sub",
        "/sub/inner.bin",
        "/sub%2Finner.bin",
        "/..%2Fcatalog.yaml",
        "/%2E%2E",
        "/missing.bin",
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let post = http
        .post(format!("{base}/bios-2.5.0.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}
