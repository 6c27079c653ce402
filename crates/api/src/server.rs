//! Start-up and serving: connect and migrate the store, make sure the built-in template and
//! the first admin exist, then serve the API, its OpenAPI document, Swagger UI and the web
//! app's files.

use std::net::SocketAddr;

use actix_web::dev::Server;
use actix_web::{App, HttpMessage, HttpResponse, HttpServer, middleware, web};
use rand::Rng;
use shipshape_domain::{EDULIBRA_TEMPLATE_MD, Role, markdown};
use shipshape_store::{EDULIBRA_TEMPLATE_ID, NewUser, Store, StoreError};
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{TokenKeys, hash_password};
use crate::config::Config;
use crate::error::{ApiError, json_error};
use crate::{AppState, openapi, routes};

/// The largest body read (a Markdown template; JSON bodies are limited further).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Binding or running failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Something else.
    #[error("{0}")]
    Other(String),
}

fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Connects, migrates, and makes sure the built-in template, the first admin and the token
/// key exist.
pub fn prepare(config: &Config) -> Result<AppState, StartError> {
    let store = Store::connect(config.database_url.expose(), config.db_pool_size)?;
    store.migrate()?;
    let builtin = markdown::parse(EDULIBRA_TEMPLATE_MD)
        .map_err(|e| StartError::Other(format!("built-in template: {e}")))?;
    store.ensure_builtin_template(EDULIBRA_TEMPLATE_ID, &builtin)?;
    if store.count_users()? == 0 {
        let (password, generated) = match &config.admin_password {
            Some(p) => (p.expose().to_owned(), false),
            None => (random_string(20), true),
        };
        shipshape_domain::role::check_password(&password)
            .map_err(|e| StartError::Other(format!("SHIPSHAPE_ADMIN_PASSWORD: {e}")))?;
        let hash = hash_password(&password).map_err(|e| StartError::Other(e.to_string()))?;
        // The first admin is created by no one: the audit entry has no actor.
        let first = NewUser {
            username: "admin",
            password_hash: &hash,
            role: Role::Admin,
        };
        match store.create_user(first, &shipshape_store::Auditor::default()) {
            // Another instance starting on the same database created it first.
            Ok(_) | Err(StoreError::Duplicate(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if generated {
            // Printed once, on the first start; it is not stored anywhere in clear.
            println!("Created user `admin` with password: {password}");
        }
        tracing::info!("created the admin user");
    }
    let secret = match &config.jwt_secret {
        Some(s) => s.expose().to_owned(),
        None => store.setting_or_init("jwt_secret", || random_string(64))?,
    };
    let allow = shipshape_domain::outbound::AllowList::parse(
        config.outbound_allow.as_deref().unwrap_or(""),
    )
    .map_err(|e| StartError::Other(format!("SHIPSHAPE_OUTBOUND_ALLOW: {e}")))?
    .with_public(config.outbound_public);
    let guard = crate::outbound::Guard::new(
        allow,
        std::time::Duration::from_secs(config.webhook_timeout_secs),
    )
    .map_err(|e| StartError::Other(e.to_string()))?;
    let public_url = match config.public_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(u) => Some(
            crate::outbound::Guard::parse(u)
                .map_err(|e| StartError::Other(format!("SHIPSHAPE_PUBLIC_URL {e}")))?
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
        ),
    };
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
    store.on_checkout({
        let metrics = metrics.clone();
        move |pool, waited, had| metrics.checkout(pool, waited, had)
    });
    let bus = crate::bus::Bus::start(&store, config.bus_capacity, metrics)?;
    let idempotency_secret = store
        .setting_or_init("idempotency_secret", || random_string(64))?
        .into_bytes();
    if let Some(url) = &config.smtp_url {
        crate::mail::start(
            &store,
            &bus,
            crate::mail::MailSettings {
                url: url.expose().to_owned(),
                from: config.mail_from.clone(),
                batch: std::time::Duration::from_secs(config.mail_batch_secs),
                public_url: public_url.clone(),
            },
        )
        .map_err(StartError::Other)?;
    }
    crate::deliver::start(
        &store,
        &bus,
        guard.clone(),
        crate::deliver::DeliveryPolicy {
            retry_schedule: config.webhook_retry_schedule.clone(),
            disable_after: config.webhook_disable_after,
            public_url: public_url.clone(),
        },
    )?;
    crate::probe::start(
        &store,
        &bus,
        guard.clone(),
        crate::probe::ScheduleSettings {
            poll: config.schedule_poll,
            mail: config.smtp_url.is_some(),
        },
    )?;
    Ok(AppState {
        mail_enabled: config.smtp_url.is_some(),
        public_url,
        outbound: guard,
        store,
        keys: TokenKeys::new(secret.as_bytes(), config.token_ttl_secs),
        trusted_proxies: config.trusted_proxies.clone(),
        metrics_token: config.metrics_token.clone(),
        idempotency_secret,
        bus,
        hashing: tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()) * 2,
        ),
    })
}

/// Applies pending migrations.
pub fn migrate(config: &Config) -> Result<(), StartError> {
    let store = Store::connect(config.database_url.expose(), 1)?;
    store.migrate()?;
    tracing::info!(backend = store.backend(), "migrations applied");
    Ok(())
}

/// Adds a made-up history of finished runs of the built-in template (for a demo of
/// Insights on a fresh install): `runs` runs over the last `days` days, across a few
/// products and the environments production, staging and qa.
pub fn seed_demo(config: &Config, runs: usize, days: i64) -> Result<(), StartError> {
    let store = Store::connect(config.database_url.expose(), 1)?;
    store.migrate()?;
    let builtin = markdown::parse(EDULIBRA_TEMPLATE_MD)
        .map_err(|e| StartError::Other(format!("built-in template: {e}")))?;
    store.ensure_builtin_template(EDULIBRA_TEMPLATE_ID, &builtin)?;
    let seeded = store.seed_history(&shipshape_store::SeedPlan {
        template_id: EDULIBRA_TEMPLATE_ID.to_owned(),
        runs,
        products: ["EduLibra", "EduLibra Mobile", "Catalogue API"]
            .map(str::to_owned)
            .to_vec(),
        days,
        seed: u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(1),
    })?;
    tracing::info!(runs = seeded, days, "seeded a demo history");
    println!("Added {seeded} finished runs over the last {days} days: see Insights.");
    Ok(())
}

/// Builds the HTTP server on a prepared state; returns it with the address it listens on.
pub fn build(config: &Config, state: AppState) -> Result<(Server, SocketAddr), StartError> {
    let state = web::Data::new(state);
    let web_root = crate::web::WebRoot::new(&config.web_dir);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(256 * 1024)
                    .error_handler(|e, _| json_error(e).into()),
            )
            .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
            .app_data(
                web::PathConfig::default()
                    .error_handler(|_, _| ApiError::not_found("no such resource").into()),
            )
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::bad_request("bad_query", e.to_string()).into()),
            )
            .service(web::scope("/api/v1").configure(routes::api))
            .configure(routes::ops)
            .service(
                SwaggerUi::new("/docs/{_:.*}")
                    .config(utoipa_swagger_ui::Config::from("/api-docs/openapi.json")),
            )
            .route(
                "/api-docs/openapi.json",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type(actix_web::http::header::ContentType::json())
                        .body(described().document.clone())
                }),
            )
            .route(
                "/docs",
                web::get().to(|| async {
                    HttpResponse::PermanentRedirect()
                        .insert_header(("Location", "/docs/"))
                        .finish()
                }),
            )
            .app_data(web::Data::new(web_root.clone()))
            .default_service(web::to(unmatched))
            // Problems are made before compression, so a rewritten body is compressed (or not)
            // like any other.
            .wrap(middleware::ErrorHandlers::new().default_handler(as_problem))
            // Sees answers as problems and before compression: a replay is compressed anew.
            .wrap(middleware::from_fn(crate::idempotency::idempotent))
            .wrap(middleware::Compress::default())
            .wrap(middleware::from_fn(edge))
            .wrap(middleware::from_fn(log_request))
    });
    let server = match config.workers {
        Some(n) => server.workers(n.max(1)),
        None => server,
    };
    // Event streams never end on their own: do not wait long for them at shutdown. A client
    // that closes its side is gone: without this, a closed event stream would hold its place
    // (and its polling) until a keep-alive write failed, up to half a minute later.
    let server = server
        .shutdown_timeout(10)
        .h1_allow_half_closed(false)
        .bind(&config.bind)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| StartError::Other("bound to no address".into()))?;
    Ok((server.run(), addr))
}

/// The API as its OpenAPI document describes it: the document as served, and its routes.
struct Described {
    document: web::Bytes,
    routes: KnownRoutes,
}

/// The API's description, made once, when first asked for (by a client reading the
/// document, or by a request no route matched): a server that is never asked keeps neither
/// the document nor the code that makes it in memory.
fn described() -> &'static Described {
    static DESCRIBED: std::sync::LazyLock<Described> = std::sync::LazyLock::new(|| {
        let document = openapi::document();
        let routes = KnownRoutes::from_document(&document);
        Described {
            // One copy, shared by every worker (as a JSON tree per worker it cost MiBs each).
            document: web::Bytes::from(
                serde_json::to_vec(&openapi::value_of(document)).unwrap_or_default(),
            ),
            routes,
        }
    });
    &DESCRIBED
}

/// The paths of the API and the methods each takes, from the OpenAPI document, so that a
/// request no route matched gets 405 with `Allow` when its path exists, 404 otherwise.
#[derive(Debug)]
struct KnownRoutes(Vec<(Vec<String>, Vec<&'static str>)>);

impl KnownRoutes {
    fn from_document(doc: &utoipa::openapi::OpenApi) -> Self {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path.split('/').map(str::to_owned).collect();
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, present)| present.then_some(m))
                .collect();
                (segments, methods)
            })
            .collect();
        KnownRoutes(routes)
    }

    fn methods_for(&self, path: &str) -> Option<Vec<&'static str>> {
        let wanted: Vec<&str> = path.split('/').collect();
        let mut methods: Vec<&'static str> = self
            .0
            .iter()
            .filter(|(segments, _)| {
                segments.len() == wanted.len()
                    && segments
                        .iter()
                        .zip(&wanted)
                        .all(|(s, w)| s == w || (s.starts_with('{') && !w.is_empty()))
            })
            .flat_map(|(_, m)| m.iter().copied())
            .collect();
        // HEAD is answered wherever GET is (see `edge`).
        if methods.contains(&"GET") {
            methods.push("HEAD");
        }
        methods.sort_unstable();
        methods.dedup();
        (!methods.is_empty()).then_some(methods)
    }
}

async fn unmatched(
    req: actix_web::HttpRequest,
    web_root: web::Data<crate::web::WebRoot>,
) -> HttpResponse {
    use actix_web::ResponseError;
    if req.method() == actix_web::http::Method::GET
        && !shipshape_domain::wire::is_server_path(req.path())
        && let Some(res) = crate::web::serve(&web_root, &req).await
    {
        return res;
    }
    match described().routes.methods_for(req.path()) {
        Some(methods) => {
            // The method the client sent (`edge` answers HEAD as GET).
            let method = if req.extensions().contains::<WasHead>() {
                "HEAD"
            } else {
                req.method().as_str()
            };
            let mut res = ApiError::new(
                actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed here; use {}", methods.join(", ")),
            )
            .error_response();
            if let Ok(allow) = actix_web::http::header::HeaderValue::from_str(&methods.join(", ")) {
                res.headers_mut()
                    .insert(actix_web::http::header::ALLOW, allow);
            }
            res
        }
        None => ApiError::not_found("no such resource").error_response(),
    }
}

/// Marks a request that came as `HEAD` and is answered as `GET`.
#[derive(Debug, Clone, Copy)]
struct WasHead;

/// Whether a request came as `HEAD` (the edge hands it on as `GET`).
pub(crate) fn was_head(req: &actix_web::HttpRequest) -> bool {
    req.method() == actix_web::http::Method::HEAD || req.extensions().contains::<WasHead>()
}

/// The longest request target (path and query) the server reads. Longer ones are answered
/// `414`; beyond 64 KiB the HTTP layer refuses them itself, with a bare `400`, before any of
/// this code sees them.
const MAX_URI_BYTES: usize = 8 * 1024;

/// The edge of the application: refuses over-long request targets, marks every answer
/// `nosniff` with a referrer policy, and answers `HEAD` wherever `GET` is answered (the HTTP layer sends the headers without the body; a streamed
/// body, such as an event stream, is not started at all).
async fn edge(
    mut req: actix_web::dev::ServiceRequest,
    next: middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::ResponseError;
    use actix_web::body::{BodySize, MessageBody};
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI_BYTES {
        let res = ApiError::new(
            actix_web::http::StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the path and query must be at most {MAX_URI_BYTES} bytes"),
        )
        .error_response();
        return Ok(req.into_response(res));
    }
    let head = req.method() == actix_web::http::Method::HEAD;
    let api = req.path().starts_with("/api/");
    if head {
        req.head_mut().method = actix_web::http::Method::GET;
        req.extensions_mut().insert(WasHead);
    }
    let mut res = next.call(req).await?.map_into_boxed_body();
    // Every answer: its content type is to be believed, and no page of ours tells another
    // site where a person came from.
    let headers = res.headers_mut();
    headers.insert(
        actix_web::http::header::X_CONTENT_TYPE_OPTIONS,
        actix_web::http::header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        actix_web::http::header::REFERRER_POLICY,
        actix_web::http::header::HeaderValue::from_static("no-referrer"),
    );
    // The API's answers are one user's view of live data: no cache keeps them (a browser
    // that kept one would revalidate it by its ETag, which names the stored version, not
    // what is computed at read time, such as an environment's lock). A tool that asks with
    // If-None-Match itself still gets 304.
    if api && !headers.contains_key(actix_web::http::header::CACHE_CONTROL) {
        headers.insert(
            actix_web::http::header::CACHE_CONTROL,
            actix_web::http::header::HeaderValue::from_static("no-store"),
        );
    }
    if head && matches!(res.response().body().size(), BodySize::Stream) {
        // Dropping the stream ends it here (an event stream frees its place at once).
        return Ok(res.map_body(|_, _| actix_web::body::BoxBody::new(())));
    }
    Ok(res)
}

/// Turns an error answer that is not already a problem (the framework's own: a body over the
/// size limit, an extractor's refusal) into one, keeping its status and headers.
fn as_problem<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<middleware::ErrorHandlerResponse<B>> {
    use actix_web::ResponseError;
    use actix_web::http::header;
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return Ok(middleware::ErrorHandlerResponse::Response(
            res.map_into_left_body(),
        ));
    }
    let status = res.status();
    let detail = res
        .response()
        .error()
        .map(|e| e.to_string())
        .filter(|d| !d.is_empty());
    let (code, fallback) = match status.as_u16() {
        400 => ("bad_request", "the request is malformed"),
        401 => ("unauthorized", "sign in first"),
        403 => ("forbidden", "not allowed"),
        404 => ("not_found", "no such resource"),
        405 => ("method_not_allowed", "the method is not allowed here"),
        406 => ("not_acceptable", "no acceptable representation"),
        408 => ("request_timeout", "the request took too long to arrive"),
        411 => ("length_required", "send a Content-Length"),
        413 => ("payload_too_large", "the body is too large"),
        414 => ("uri_too_long", "the URL is too long"),
        415 => (
            "unsupported_media_type",
            "the body's content type is not accepted",
        ),
        431 => ("headers_too_large", "the request headers are too large"),
        s if s < 500 => ("bad_request", "the request cannot be served"),
        _ => (
            "internal",
            "something went wrong on our side; it has been logged",
        ),
    };
    let detail = match (status.as_u16(), detail) {
        (413, _) => format!(
            "the body is too large: at most {} bytes are read",
            MAX_BODY_BYTES
        ),
        (s, Some(d)) if s < 500 => d,
        _ => fallback.to_owned(),
    };
    let (req, old) = res.into_parts();
    let mut new = ApiError::new(status, code, detail).error_response();
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && name != header::CONTENT_ENCODING
        {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(middleware::ErrorHandlerResponse::Response(
        actix_web::dev::ServiceResponse::new(req, new).map_into_right_body(),
    ))
}

/// A request's id: from a trusted proxy's `X-Request-Id`, or made here.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The id a request is known by: a trusted proxy's `X-Request-Id` when it is a sensible one
/// (1 to 128 visible ASCII characters, no quotes or backslashes), otherwise a new one.
fn request_id(req: &actix_web::dev::ServiceRequest) -> String {
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .zip(req.peer_addr())
        .is_some_and(|(state, peer)| state.trusted_proxies.contains(&peer.ip()));
    trusted
        .then(|| req.headers().get("x-request-id"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

/// The outermost layer: gives the request its id (in the `X-Request-Id` answer header and on
/// every log line written while it is served), logs it, and counts it in the metrics by its
/// route template.
async fn log_request(
    req: actix_web::dev::ServiceRequest,
    next: middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let id = request_id(&req);
    let span = tracing::info_span!("request", id = %id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.path().to_owned();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.bus.metrics().clone());
    let mut res = next.call(req).instrument(span.clone()).await?;
    let took = started.elapsed();
    let status = res.status().as_u16();
    if let Some(metrics) = metrics {
        let route = res.request().match_pattern();
        let route = route.as_deref().unwrap_or(match status {
            404 | 405 => "unmatched",
            _ => "web",
        });
        let method = match method.as_str() {
            m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
            _ => "other",
        };
        metrics.request(route, method, status, took);
    }
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&id) {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            value,
        );
    }
    span.in_scope(|| {
        tracing::info!(
            %method,
            %path,
            status,
            micros = took.as_micros() as u64,
            "request"
        );
    });
    Ok(res)
}

/// Runs the server until it is stopped (the `serve` command).
pub fn serve(config: Config) -> Result<(), StartError> {
    tracing::info!(version = crate::config::VERSION, "shipshape starting");
    let state = prepare(&config)?;
    tracing::info!(
        backend = state.store.backend(),
        database = %state.store.location(),
        bind = %config.bind,
        "database ready"
    );
    if !config.web_dir.join("index.html").is_file() {
        tracing::warn!(
            web_dir = %config.web_dir.display(),
            "the web app folder has no index.html: the web app is not served (build it with `just web`, or set SHIPSHAPE_WEB_DIR)"
        );
    }
    actix_web::rt::System::new().block_on(async move {
        let (server, addr) = build(&config, state)?;
        tracing::info!(%addr, "listening; API docs at /docs");
        server.await?;
        Ok(())
    })
}

/// Prepares a server for the current async runtime without running it: the caller spawns
/// or awaits the returned future (tests and tools).
pub async fn start(config: Config) -> Result<(Server, SocketAddr), StartError> {
    let prep_config = config.clone();
    let state = web::block(move || prepare(&prep_config))
        .await
        .map_err(|e| StartError::Other(e.to_string()))??;
    build(&config, state)
}
