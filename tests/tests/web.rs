//! The web app's files: `index.html` for client-side routes and never cached, hashed assets
//! cached for good, compressed when the client accepts it; API paths stay the API's.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use shipshape_api::config::{Config, Secret};
use shipshape_tests::{Backend, TestDb};

async fn web_app_files_are_served_with_the_right_caching(backend: Backend) {
    let (_db, url) = TestDb::create(backend);
    let dir = std::env::temp_dir().join(format!("shipshape-web-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let index = "<!doctype html><title>Shipshape</title><script src=\"/app-0123abcd.js\"></script>";
    std::fs::write(dir.join("index.html"), index).unwrap();
    std::fs::write(
        dir.join("app-0123abcd.js"),
        "console.log('shipshape');".repeat(200),
    )
    .unwrap();
    // The build's modules live in a folder named by their hash.
    std::fs::create_dir_all(dir.join("app-4567cdef89")).unwrap();
    std::fs::write(dir.join("app-4567cdef89/split_run.wasm"), b"\0asm").unwrap();
    std::fs::create_dir_all(dir.join("extra")).unwrap();
    std::fs::write(dir.join("extra/notes.txt"), "notes").unwrap();
    let mut config = Config::for_database(&url);
    config.admin_password = Some(Secret::new("web-test-admin-password"));
    config.web_dir = dir.clone();
    let (server, addr) = shipshape_api::server::start(config).await.unwrap();
    let handle = server.handle();
    tokio::spawn(server);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();

    for path in [
        "/",
        "/runs/5d0c3c1e-7f0b-4c52-9a57-3f6f0e2d1a01",
        "/templates",
    ] {
        let res = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path}");
        assert_eq!(res.headers()["cache-control"], "no-cache", "{path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(res.text().await.unwrap(), index, "{path} is the app's");
    }

    for (path, cache) in [
        (
            "/app-4567cdef89/split_run.wasm",
            "public, max-age=31536000, immutable",
        ),
        ("/extra/notes.txt", "no-cache"),
    ] {
        let res = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path}");
        assert_eq!(res.headers()["cache-control"], cache, "{path}");
    }

    let asset = client
        .get(format!("{base}/app-0123abcd.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status().as_u16(), 200);
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(
        asset.headers()["content-encoding"],
        "gzip",
        "assets are compressed"
    );

    // An asset the build gzipped ahead is sent as that file, to clients that take gzip only.
    let wasm: Vec<u8> = (0..4096u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
    std::fs::write(dir.join("app-89abcdef.wasm"), &wasm).unwrap();
    let pre = b"\x1f\x8b pre-compressed by the build";
    std::fs::write(dir.join("app-89abcdef.wasm.gz"), pre).unwrap();
    let gz = client
        .get(format!("{base}/app-89abcdef.wasm"))
        .header("accept-encoding", "gzip, deflate")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.headers()["content-type"], "application/wasm");
    assert_eq!(gz.headers()["vary"], "Accept-Encoding");
    assert_eq!(gz.bytes().await.unwrap().as_ref(), pre.as_slice());
    let plain = client
        .get(format!("{base}/app-89abcdef.wasm"))
        .header("accept-encoding", "gzip;q=0, identity")
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.bytes().await.unwrap().as_ref(), wasm.as_slice());

    let refused = client
        .get(format!("{base}/app-89abcdef.wasm"))
        .header("accept-encoding", "gzip;q=0, *")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.bytes().await.unwrap().as_ref(), wasm.as_slice());
    // An asset that is not there (of an older build) is a 404, never the app's HTML.
    let gone = client
        .get(format!("{base}/app-00000000.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status().as_u16(), 404);

    // API paths stay the API's; nothing outside the folder is reachable.
    let api = client
        .get(format!("{base}/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 404);
    assert_eq!(api.headers()["content-type"], "application/problem+json");
    let escape = client
        .get(format!("{base}/../Cargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        escape.status().as_u16(),
        404,
        "no file outside the web folder"
    );
    assert!(!escape.text().await.unwrap().contains("[workspace]"));

    handle.stop(false).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_web_app_files_are_served_with_the_right_caching() {
    web_app_files_are_served_with_the_right_caching(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_web_app_files_are_served_with_the_right_caching() {
    web_app_files_are_served_with_the_right_caching(Backend::Postgres).await;
}
