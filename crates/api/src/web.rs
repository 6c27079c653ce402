//! Serving the web app's static files: `index.html` for every client-side route (and never
//! cached, so a new release is picked up at once), hashed assets (`app-3f9c2a.wasm`, or any
//! file in a hashed folder such as `app-3f9c2a7b1d/`) cached for a year. The paths the
//! server answers itself (`shipshape_domain::wire::is_server_path`) are never the web app's.

use std::path::{Path, PathBuf};

use actix_web::http::header::{self, AcceptEncoding, Encoding, Header};
use actix_web::{HttpRequest, HttpResponse};

/// Where the built web app lives, if it does.
#[derive(Debug, Clone)]
pub struct WebRoot(Option<PathBuf>);

impl WebRoot {
    /// The folder, when it holds an `index.html`.
    pub fn new(dir: &Path) -> Self {
        WebRoot(dir.join("index.html").is_file().then(|| dir.to_path_buf()))
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// A file or folder name that carries a content hash (`name-<hex>.ext`, `name.<hex>.ext` or
/// `name-<hex>`, at least eight hex digits): its content never changes, so it may be cached
/// for good.
fn is_hashed(name: &str) -> bool {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    stem.rsplit_once(['-', '.']).is_some_and(|(name, hash)| {
        !name.is_empty() && hash.len() >= 8 && hash.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Whether the client prefers gzip to the plain file (`Accept-Encoding`, q-values honoured).
fn accepts_gzip(req: &HttpRequest) -> bool {
    let supported = [Encoding::gzip(), Encoding::identity()];
    AcceptEncoding::parse(req)
        .ok()
        .and_then(|accept| accept.negotiate(supported.iter()))
        .is_some_and(|chosen| chosen == Encoding::gzip())
}

/// The file a request names inside the root: plain segments only, no hidden files, no `..`,
/// nothing encoded.
fn file_for(root: &Path, path: &str) -> Option<PathBuf> {
    let mut file = root.to_path_buf();
    for segment in path.trim_start_matches('/').split('/') {
        if segment.is_empty() || segment.starts_with('.') || segment.contains(['%', '\\', ':']) {
            return None;
        }
        file.push(segment);
    }
    file.is_file().then_some(file)
}

/// Answers a GET for the web app, or `None` when there is no web app to answer with.
pub fn serve(root: &WebRoot, req: &HttpRequest) -> Option<HttpResponse> {
    let dir = root.0.as_ref()?;
    let (file, hashed) = match file_for(dir, req.path()) {
        // A file whose name, or whose folder's name, carries a hash.
        Some(f) => (f, req.path().split('/').any(is_hashed)),
        // A missing file (an asset of an older build, say) is a 404, not the app: a page
        // asking for a script must not be handed HTML.
        None if req
            .path()
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.')) =>
        {
            return None;
        }
        // Client-side routes (`/runs/…`) are the app's: it reads the path itself.
        None => (dir.join("index.html"), false),
    };
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let cache = if hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut res = HttpResponse::Ok();
    res.content_type(content_type(name))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::VARY, "Accept-Encoding"));
    // The build gzips each asset at the best level beside it (`app-….wasm.gz`); a client
    // that accepts gzip gets that file as is (the compression middleware leaves a response
    // that already has a `Content-Encoding` alone).
    let gzipped = file.with_file_name(format!("{name}.gz"));
    if accepts_gzip(req)
        && gzipped.is_file()
        && let Ok(body) = std::fs::read(&gzipped)
    {
        res.insert_header((header::CONTENT_ENCODING, "gzip"));
        return Some(res.body(body));
    }
    let body = std::fs::read(&file).ok()?;
    Some(res.body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_asset_names_are_recognised() {
        assert!(is_hashed("shipshape-frontend-3f9c2a7b1d.wasm"));
        assert!(is_hashed("app.0123abcd.js"));
        assert!(!is_hashed("index.html"));
        assert!(!is_hashed("favicon.ico"));
        assert!(!is_hashed("app-v2.js"));
        assert!(is_hashed("app-0123abcd4567ef89"));
        assert!(!is_hashed("20260101"));
        assert!(!is_hashed("-0123abcd"));
    }

    #[test]
    fn requests_cannot_leave_the_web_root() {
        let root = std::env::temp_dir();
        for path in [
            "/../etc/passwd",
            "/a/../../b",
            "/.env",
            "/%2e%2e/x",
            "/a\\b",
            "/c:/x",
        ] {
            assert!(file_for(&root, path).is_none(), "{path}");
        }
    }
}
