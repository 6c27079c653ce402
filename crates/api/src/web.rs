//! Serving the web app's static files (by `actix-files`: ranges, validators, and file reads
//! off the worker threads): `index.html` for every client-side route (and never cached, so a
//! new release is picked up at once), hashed assets (`app-3f9c2a.wasm`, or any file in a
//! hashed folder such as `app-3f9c2a7b1d/`) cached for a year. The paths the server answers
//! itself (`shipshape_domain::wire::is_server_path`) are never the web app's.
//!
//! The app is served with a Content-Security-Policy that allows its own files only (its one
//! inline script by hash, WebAssembly compilation, no framing), `nosniff` and a referrer
//! policy.

use std::path::{Path, PathBuf};

use actix_files::NamedFile;
use actix_web::http::header::{
    self, AcceptEncoding, ContentEncoding, Encoding, Header, HeaderValue,
};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use sha2::{Digest, Sha256};

/// Where the built web app lives, if it does.
#[derive(Debug, Clone)]
pub struct WebRoot(Option<PathBuf>);

impl WebRoot {
    /// The folder, when it holds an `index.html`.
    pub fn new(dir: &Path) -> Self {
        WebRoot(dir.join("index.html").is_file().then(|| dir.to_path_buf()))
    }
}

/// The bodies of a page's inline scripts (`<script>` without `src`).
fn inline_scripts(html: &str) -> Vec<&str> {
    let mut scripts = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(open_end) = after.find('>') else {
            break;
        };
        let open = &after[..open_end];
        let body = &after[open_end + 1..];
        let Some(close) = body.find("</script>") else {
            break;
        };
        if !open.contains("src=") {
            scripts.push(&body[..close]);
        }
        rest = &body[close..];
    }
    scripts
}

/// The page's policy: its own origin only; its inline scripts by their SHA-256; WebAssembly
/// compiled from its own files; inline styles (set by the app on elements); never framed.
fn content_security_policy(html: &str) -> String {
    // A browser hashes a script as parsed: with its line breaks made `\n`.
    let html = html.replace("\r\n", "\n").replace('\r', "\n");
    let hashes: String = inline_scripts(&html)
        .into_iter()
        .map(|s| {
            format!(
                " 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
            )
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
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
pub async fn serve(root: &WebRoot, req: &HttpRequest) -> Option<HttpResponse> {
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
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_owned();
    let cache = if hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mime = actix_files::file_extension_to_mime(name.rsplit('.').next().unwrap_or(""));
    // The build gzips each asset at the best level beside it (`app-….wasm.gz`); a client
    // that accepts gzip gets that file as is (the compression middleware leaves a response
    // that already has a `Content-Encoding` alone).
    let gzipped = file.with_file_name(format!("{name}.gz"));
    let gzip = accepts_gzip(req);
    // Opening (and reading the metadata) off the worker thread too. The page's policy is
    // read from the page each time, so a new build is served right without a restart.
    let (named, policy) = actix_web::web::block(move || {
        let policy = (name == "index.html")
            .then(|| std::fs::read_to_string(&file).ok())
            .flatten()
            .map(|html| content_security_policy(&html));
        if gzip && let Ok(f) = NamedFile::open(&gzipped) {
            return Ok((f.set_content_encoding(ContentEncoding::Gzip), policy));
        }
        // Without an encoding of its own: the compression middleware compresses it for a
        // client that takes that.
        NamedFile::open(&file).map(|f| (f, policy))
    })
    .await
    .ok()?
    .ok()?;
    let mut res = named
        .set_content_type(mime)
        .disable_content_disposition()
        .into_response(req);
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Some(policy) = policy.and_then(|p| HeaderValue::from_str(&p).ok()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    Some(res)
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
    fn the_policy_names_the_inline_script_by_its_hash_and_forbids_framing() {
        let html = "<head><script type=\"module\" src=\"/a.js\"></script></head>\
                    <body><script type=\"module\">\nimport init from \"/x.js\";\n</script></body>";
        assert_eq!(
            inline_scripts(html),
            vec!["\nimport init from \"/x.js\";\n"]
        );
        let policy = content_security_policy(html);
        let hash = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(b"\nimport init from \"/x.js\";\n"));
        assert!(policy.contains(&format!("'sha256-{hash}'")), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"));
        assert_eq!(
            content_security_policy(&html.replace('\n', "\r\n")),
            policy,
            "a page saved with CRLF line breaks is hashed as the browser parses it"
        );
        assert!(!policy.contains("'unsafe-eval'"));
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
