//! Start-up and serving: connect and migrate the store, make sure the built-in template and
//! the first admin exist, then serve the API, its OpenAPI document, Swagger UI and the web
//! app's files.

use std::net::SocketAddr;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, middleware, web};
use rand::Rng;
use shipshape_domain::{EDULIBRA_TEMPLATE_MD, Role, markdown};
use shipshape_store::{EDULIBRA_TEMPLATE_ID, NewUser, Store, StoreError};
use utoipa_actix_web::{AppExt, scope};
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{TokenKeys, hash_password};
use crate::config::Config;
use crate::error::{ApiError, json_error};
use crate::{AppState, openapi, routes};

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
        match store.create_user(NewUser {
            username: "admin",
            password_hash: &hash,
            role: Role::Admin,
        }) {
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
    Ok(AppState {
        store,
        keys: TokenKeys::new(secret.as_bytes(), config.token_ttl_secs),
        trusted_proxies: config.trusted_proxies.clone(),
        streams: Default::default(),
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

/// Builds the HTTP server on a prepared state; returns it with the address it listens on.
pub fn build(config: &Config, state: AppState) -> Result<(Server, SocketAddr), StartError> {
    let state = web::Data::new(state);
    let document = openapi::document();
    let routes = KnownRoutes::from_document(&document);
    let web_root = crate::web::WebRoot::new(&config.web_dir);
    let server = HttpServer::new(move || {
        let (app, _) = App::new()
            .into_utoipa_app()
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(256 * 1024)
                    .error_handler(|e, _| json_error(e).into()),
            )
            .app_data(web::PayloadConfig::default().limit(1024 * 1024))
            .app_data(
                web::PathConfig::default()
                    .error_handler(|_, _| ApiError::not_found("no such resource").into()),
            )
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::bad_request("bad_query", e.to_string()).into()),
            )
            .service(scope("/api/v1").configure(routes::api))
            .configure(routes::ops)
            .split_for_parts();
        app.service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", document.clone()))
            .route(
                "/docs",
                web::get().to(|| async {
                    HttpResponse::PermanentRedirect()
                        .insert_header(("Location", "/docs/"))
                        .finish()
                }),
            )
            .app_data(web::Data::new(routes.clone()))
            .app_data(web::Data::new(web_root.clone()))
            .default_service(web::to(unmatched))
            .wrap(middleware::Compress::default())
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

/// The paths of the API and the methods each takes, from the OpenAPI document, so that a
/// request no route matched gets 405 with `Allow` when its path exists, 404 otherwise.
#[derive(Debug, Clone)]
struct KnownRoutes(std::sync::Arc<Vec<(Vec<String>, Vec<&'static str>)>>);

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
        KnownRoutes(std::sync::Arc::new(routes))
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
        methods.sort_unstable();
        methods.dedup();
        (!methods.is_empty()).then_some(methods)
    }
}

async fn unmatched(
    req: actix_web::HttpRequest,
    routes: web::Data<KnownRoutes>,
    web_root: web::Data<crate::web::WebRoot>,
) -> HttpResponse {
    use actix_web::ResponseError;
    if req.method() == actix_web::http::Method::GET
        && !shipshape_domain::wire::is_server_path(req.path())
        && let Some(res) = crate::web::serve(&web_root, &req)
    {
        return res;
    }
    match routes.methods_for(req.path()) {
        Some(methods) => {
            let mut res = ApiError::new(
                actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "{} is not allowed here; use {}",
                    req.method(),
                    methods.join(", ")
                ),
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

async fn log_request(
    req: actix_web::dev::ServiceRequest,
    next: middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let res = next.call(req).await?;
    tracing::info!(
        %method,
        %path,
        status = res.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(res)
}

/// Runs the server until it is stopped (the `serve` command).
pub fn serve(config: Config) -> Result<(), StartError> {
    let state = prepare(&config)?;
    tracing::info!(backend = state.store.backend(), bind = %config.bind, "starting");
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
