//! Safe retries: a `POST` under `/api/v1` sent with an `Idempotency-Key` is carried out once.
//! The same user sending the same key with the same request again (a tool retrying after a
//! network blip) gets the first answer again, marked `Idempotent-Replayed: true`; with a
//! different request, a 422 problem; while the first is still being served, a 409 problem
//! with `Retry-After`. Keys are kept for a day, in the database, so this holds across
//! instances and restarts.
//!
//! Only answers that a retry could not change are kept: successes, and refusals of the
//! request itself (400, 404, 410, 413, 415, 422). Anything else (a conflict, a missing
//! permission, the database down) gives the key back, so the retry is served afresh.
//!
//! Neither the key nor the answer is stored as sent: the key as its SHA-256, the answer
//! encrypted with a key derived from the client's key and a server secret (an answer may
//! hold an API token's secret).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use shipshape_store::{ClaimTimes, KeyClaim};

use crate::AppState;
use crate::error::ApiError;

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// The answer header that marks a replayed answer.
pub const REPLAYED: &str = "Idempotent-Replayed";
/// The longest key accepted.
pub const MAX_KEY_CHARS: usize = 255;
/// How long an answer is kept.
pub const KEEP: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// How long an unanswered claim stands before it counts as abandoned (its server stopped).
const STALE: std::time::Duration = std::time::Duration::from_secs(60);

type HmacSha256 = Hmac<Sha256>;

/// Whether a key is acceptable: 1 to 255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY_CHARS).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether an answer is kept for replay.
fn replayable(status: StatusCode) -> bool {
    status.is_success() || matches!(status.as_u16(), 400 | 404 | 410 | 413 | 415 | 422)
}

/// The answer as stored (before encryption).
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// Headers not kept: they are made anew for each answer.
fn kept(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "content-length" | "content-encoding" | "date" | "x-request-id" | "transfer-encoding"
    )
}

fn cipher_key(secret: &[u8], scope: &str, key: &str) -> Option<[u8; 32]> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(b"shipshape idempotency\0");
    mac.update(scope.as_bytes());
    mac.update(b"\0");
    mac.update(key.as_bytes());
    Some(mac.finalize().into_bytes().into())
}

/// XORs `data` with the keystream HMAC-SHA256(key, nonce ‖ counter) (a stream cipher with
/// HMAC as its pseudo-random function).
fn keystream_xor(key: &[u8; 32], nonce: &[u8], data: &mut [u8]) -> Option<()> {
    for (counter, chunk) in data.chunks_mut(32).enumerate() {
        let mut mac = HmacSha256::new_from_slice(key).ok()?;
        mac.update(nonce);
        mac.update(&(counter as u64).to_be_bytes());
        let block = mac.finalize().into_bytes();
        for (byte, k) in chunk.iter_mut().zip(block.iter()) {
            *byte ^= k;
        }
    }
    Some(())
}

fn seal(key: &[u8; 32], plain: &[u8]) -> Option<Vec<u8>> {
    let nonce: [u8; 16] = rand::random();
    let mut out = nonce.to_vec();
    let mut body = plain.to_vec();
    keystream_xor(key, &nonce, &mut body)?;
    out.extend_from_slice(&body);
    Some(out)
}

fn open(key: &[u8; 32], sealed: &[u8]) -> Option<Vec<u8>> {
    let (nonce, body) = sealed.split_at_checked(16)?;
    let mut plain = body.to_vec();
    keystream_xor(key, nonce, &mut plain)?;
    Some(plain)
}

/// What identifies a request for a key: method, path and query, content type and body.
fn fingerprint(req: &ServiceRequest, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(req.method().as_str());
    h.update(b"\n");
    h.update(req.uri().path_and_query().map_or("", |pq| pq.as_str()));
    h.update(b"\n");
    h.update(
        req.headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .map_or(&b""[..], HeaderValue::as_bytes),
    );
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

fn problem(req: ServiceRequest, error: ApiError) -> ServiceResponse<BoxBody> {
    let res = error.error_response();
    req.into_response(res)
}

/// The middleware.
pub async fn idempotent(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() != Method::POST || !req.path().starts_with("/api/v1/") {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(raw) = req.headers().get(HEADER) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let key = match raw.to_str() {
        Ok(k) if valid_key(k) => k.to_owned(),
        _ => {
            return Ok(problem(
                req,
                ApiError::bad_request(
                    "bad_header",
                    format!("{HEADER} must be 1 to {MAX_KEY_CHARS} visible ASCII characters"),
                ),
            ));
        }
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // Keys are per user; a request without a valid credential is refused by its handler.
    let caller = match crate::auth::bearer(req.request()) {
        Ok(token) => crate::auth::authenticate(state.clone(), token).await.ok(),
        Err(_) => None,
    };
    let Some(caller) = caller else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let body = match req.extract::<web::Bytes>().await {
        Ok(b) => b,
        Err(e) => return Ok(req.error_response(e)),
    };
    let print = fingerprint(&req, &body);
    // The body goes back as read: decoded, so it no longer has the encoding it came in.
    req.headers_mut()
        .remove(actix_web::http::header::CONTENT_ENCODING);
    req.headers_mut()
        .remove(actix_web::http::header::CONTENT_LENGTH);
    req.set_payload(actix_web::dev::Payload::from(body.clone()));
    let key_hash = hex::encode(Sha256::digest(key.as_bytes()));
    // Keys are the user's for a session, and the token's own for an API token (a token
    // must not be handed what another credential was answered).
    let scope = match &caller.token {
        Some((token_id, _)) => format!("{}/{token_id}", caller.id),
        None => caller.id.clone(),
    };
    let Some(cipher) = cipher_key(&state.idempotency_secret, &scope, &key) else {
        return Ok(problem(
            req,
            ApiError::internal(&std::io::Error::other("idempotency key derivation failed")),
        ));
    };
    let times = ClaimTimes {
        now: shipshape_store::now_micros(),
        keep: chrono::Duration::from_std(KEEP).unwrap_or_default(),
        stale: chrono::Duration::from_std(STALE).unwrap_or_default(),
    };
    let claim = {
        let (store, scope, key_hash) = (state.store.clone(), scope.clone(), key_hash.clone());
        web::block(move || store.claim_idempotency_key(&scope, &key_hash, &print, times)).await
    };
    let claim = match claim {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Ok(problem(req, e.into())),
        Err(e) => return Ok(problem(req, e.into())),
    };
    match claim {
        KeyClaim::Mismatch => Ok(problem(
            req,
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                format!(
                    "this {HEADER} was used for a different request; use a new key for a new request"
                ),
            ),
        )),
        KeyClaim::InProgress => {
            let mut res = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                format!(
                    "a request with this {HEADER} is still being served; send it again shortly"
                ),
            )
            .error_response();
            res.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                HeaderValue::from_static("1"),
            );
            Ok(req.into_response(res))
        }
        KeyClaim::Done { response, .. } => {
            let stored = open(&cipher, &response)
                .and_then(|plain| serde_json::from_slice::<Stored>(&plain).ok());
            let Some(stored) = stored else {
                return Ok(problem(
                    req,
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "idempotency_key_reused",
                        format!("the answer kept for this {HEADER} cannot be read; use a new key"),
                    ),
                ));
            };
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            let mut res = actix_web::HttpResponse::build(status);
            for (name, value) in &stored.headers {
                res.append_header((name.as_str(), value.as_str()));
            }
            res.insert_header((REPLAYED, "true"));
            let body = base64::engine::general_purpose::STANDARD
                .decode(stored.body.as_bytes())
                .unwrap_or_default();
            Ok(req.into_response(res.body(body)))
        }
        KeyClaim::Begun(claim) => {
            // Served on a task of its own: a client that hangs up does not stop the request
            // half-way (its change may be committed), and its answer is still kept for the
            // retry that follows.
            let held = Held {
                scope,
                key_hash,
                claim,
                cipher,
            };
            let task = actix_web::rt::spawn(serve_and_keep(req, next, state, held));
            match task.await {
                Ok(result) => result,
                Err(e) => Err(actix_web::error::ErrorInternalServerError(e.to_string())),
            }
        }
    }
}

/// A claimed key: whose, which, the claim that holds it, and the answer's cipher key.
struct Held {
    scope: String,
    key_hash: String,
    claim: String,
    cipher: [u8; 32],
}

/// Serves a request whose key was claimed, and keeps (or gives back) its answer.
async fn serve_and_keep(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    state: web::Data<AppState>,
    held: Held,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Held {
        scope,
        key_hash,
        claim,
        cipher,
    } = held;
    let outcome = next.call(req).await;
    let release = |state: &web::Data<AppState>| {
        let (store, scope, key_hash, claim) = (
            state.store.clone(),
            scope.clone(),
            key_hash.clone(),
            claim.clone(),
        );
        web::block(move || store.release_idempotency_key(&scope, &key_hash, &claim))
    };
    let res = match outcome {
        Ok(res) => res,
        Err(e) => {
            let _ = release(&state).await;
            return Err(e);
        }
    };
    let status = res.status();
    if !replayable(status) {
        if !matches!(release(&state).await, Ok(Ok(()))) {
            tracing::warn!("cannot give back an idempotency key; it frees itself in a minute");
        }
        return Ok(res.map_into_boxed_body());
    }
    let (http_req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = match actix_web::body::to_bytes(body).await {
        Ok(b) => b,
        Err(_) => {
            let _ = release(&state).await;
            return Ok(ServiceResponse::new(
                http_req,
                ApiError::internal(&std::io::Error::other("an answer could not be read"))
                    .error_response(),
            ));
        }
    };
    let stored = Stored {
        status: status.as_u16(),
        headers: head
            .headers()
            .iter()
            .filter(|(name, _)| kept(name))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
        body: base64::engine::general_purpose::STANDARD.encode(&bytes),
    };
    let sealed = serde_json::to_vec(&stored)
        .ok()
        .and_then(|plain| seal(&cipher, &plain));
    let saved = match sealed {
        Some(sealed) => {
            let (store, scope, key_hash, claim) = (
                state.store.clone(),
                scope.clone(),
                key_hash.clone(),
                claim.clone(),
            );
            let code = i32::from(status.as_u16());
            matches!(
                web::block(move || {
                    store.complete_idempotency_key(&scope, &key_hash, &claim, code, &sealed)
                })
                .await,
                Ok(Ok(true))
            )
        }
        None => false,
    };
    if !saved {
        // Acknowledged but not kept: a retry within a minute is told to wait, and after
        // that is served afresh. Logged, since that retry may act twice.
        tracing::warn!(
            status = status.as_u16(),
            "cannot keep the answer to an idempotent request"
        );
    }
    let res = head.set_body(BoxBody::new(bytes));
    Ok(ServiceResponse::new(http_req, res))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_at_most_255_characters() {
        assert!(valid_key("9f1c2a7e-retry-1"));
        assert!(valid_key(&"k".repeat(255)));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key("naïve"));
    }

    #[test]
    fn a_sealed_answer_opens_with_its_key_only() {
        let key = cipher_key(b"server secret", "user-1", "key-1").unwrap();
        let other = cipher_key(b"server secret", "user-2", "key-1").unwrap();
        let plain = b"{\"secret\":\"ss_0123456789abcdef0123456789abcdef\"} and more than one block";
        let sealed = seal(&key, plain).unwrap();
        assert!(
            !sealed.windows(10).any(|w| w == b"ss_0123456"),
            "the answer is not stored in clear"
        );
        assert_eq!(open(&key, &sealed).unwrap(), plain);
        assert_ne!(open(&other, &sealed).unwrap(), plain);
        assert_ne!(
            seal(&key, plain).unwrap(),
            sealed,
            "each seal has its own nonce"
        );
    }

    #[test]
    fn only_answers_a_retry_cannot_change_are_kept() {
        for s in [200, 201, 202, 204, 400, 404, 422] {
            assert!(replayable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [401, 403, 409, 412, 429, 500, 503] {
            assert!(!replayable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
