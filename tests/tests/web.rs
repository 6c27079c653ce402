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
    assert!(
        escape.text().await.unwrap().starts_with("<!doctype html>"),
        "no file outside the web folder"
    );

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
