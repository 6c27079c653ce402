//! Authentication: argon2id password hashes, HS256 access tokens validated with an explicit
//! `Validation` (algorithm fixed; `exp`, `iss`, `aud`, `sub` required), and the [`Caller`]
//! extractor that turns a bearer token into the current user. Who a credential belongs to is
//! read from the database once and then kept in memory while nothing about its owner
//! changes: a role change, deactivation, sign-out everywhere or a revoked token signals
//! it (to every instance, see [`crate::bus`]) and the copy is void before the change is
//! answered, so it takes effect at once.

use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use shipshape_domain::Role;
use shipshape_domain::access::{Permission, Scope, authorize};
use shipshape_store::{Actor, Auditor};

use crate::AppState;
use crate::bus::Known;
use crate::cache::Depends;
use crate::error::ApiError;

/// The token issuer.
pub const ISSUER: &str = "shipshape";
/// The token audience.
pub const AUDIENCE: &str = "shipshape-api";

/// Claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expires at (seconds since the epoch).
    pub exp: u64,
    /// The user's token generation when issued; logout and password changes move it on.
    pub tgen: i32,
}

/// Signing and verification keys and the token lifetime.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Token lifetime in seconds.
    pub ttl_secs: u64,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenKeys {
    /// Keys from a shared secret.
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
        }
    }

    /// Issues a token for a user at their current token generation.
    pub fn issue(&self, user_id: &str, generation: i32) -> Result<String, ApiError> {
        let now = epoch_secs();
        let claims = Claims {
            sub: user_id.to_owned(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + self.ttl_secs,
            tgen: generation,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::internal(&e))
    }

    /// Verifies a token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| ApiError::unauthorized("the access token is invalid or expired"))
    }
}

/// Hashes a password with argon2id (slow on purpose: call it off the executor).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(&e))
}

/// Checks a password against a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The prefix of API token secrets: it tells them apart from session tokens at a glance.
pub const API_TOKEN_PREFIX: &str = "ss_";

/// A new API token secret: the prefix and 32 random bytes, hex.
pub fn new_api_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{API_TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The stored hash of an API token secret.
pub fn hash_api_secret(secret: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// The signed-in user making a request, through a session or an API token.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user's id.
    pub id: String,
    /// The user's name.
    pub username: String,
    /// The user's role, as it is now.
    pub role: Role,
    /// For an API token, its id and scopes; `None` for a session.
    pub token: Option<(String, Vec<Scope>)>,
    /// The client's address (for the audit log).
    pub address: Option<String>,
    /// When the credential expires (an event stream ends then).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Caller {
    /// As the audit log records who acted, and from where.
    pub fn auditor(&self) -> Auditor {
        Auditor {
            actor_id: Some(self.id.clone()),
            actor: Some(self.username.clone()),
            address: self.address.clone(),
        }
    }

    /// As the store records actors.
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.id.clone(),
            username: self.username.clone(),
            role: self.role,
        }
    }

    /// Refuses callers whose role (and, for a token, whose scopes) lack the permission.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        authorize(
            self.role,
            self.token.as_ref().map(|(_, scopes)| scopes.as_slice()),
            permission,
        )
        .map_err(|e| ApiError::forbidden(e.to_string()))
    }

    /// Refuses API tokens: managing sessions and tokens needs the person, not a tool.
    pub fn require_session(&self) -> Result<(), ApiError> {
        match self.token {
            None => Ok(()),
            Some(_) => Err(ApiError::forbidden(
                "this needs a signed-in session; API tokens cannot do it",
            )),
        }
    }
}

/// The bearer token of a request.
pub(crate) fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("sign in: send Authorization: Bearer <token>"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not readable"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_owned())
        }
        _ => Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

/// Who a bearer token (session or API token) belongs to: its owner as kept in memory (see
/// [`crate::bus`]), else as read from the database now.
pub(crate) async fn authenticate(
    state: web::Data<AppState>,
    token: String,
) -> Result<Caller, ApiError> {
    if token.starts_with(API_TOKEN_PREFIX) {
        let hash = hash_api_secret(&token);
        let known = known(&state, format!("t:{hash}"), move |store| {
            Ok(store
                .token_by_hash(&hash)?
                .map(|(token, user)| (user, Some(token))))
        })
        .await?;
        let refused = || {
            ApiError::unauthorized(
                "the API token is unknown, revoked or expired, or its user is deactivated",
            )
        };
        let Some(known) = known else {
            return Err(refused());
        };
        let (Some(t), user) = (&known.token, &known.user) else {
            return Err(refused());
        };
        if !(t.usable() && user.active) {
            return Err(refused());
        }
        record_use(&state, &known).await?;
        return Ok(Caller {
            role: user.role()?,
            token: Some((t.id.clone(), t.scopes()?)),
            id: user.id.clone(),
            username: user.username.clone(),
            address: None,
            expires_at: Some(t.expires_at.and_utc()),
        });
    }
    let claims = state.keys.verify(&token)?;
    let expires_at = i64::try_from(claims.exp)
        .ok()
        .and_then(|exp| chrono::DateTime::from_timestamp(exp, 0));
    let sub = claims.sub;
    let known = known(&state, format!("u:{sub}"), move |store| {
        Ok(store.user(&sub)?.map(|user| (user, None)))
    })
    .await?;
    match known {
        Some(k) if k.user.active && k.user.token_generation == claims.tgen => Ok(Caller {
            role: k.user.role()?,
            id: k.user.id.clone(),
            username: k.user.username.clone(),
            token: None,
            address: None,
            expires_at,
        }),
        _ => Err(ApiError::unauthorized(
            "the access token was revoked, or its user is deactivated; sign in again",
        )),
    }
}

type Found = Option<(
    shipshape_store::UserRecord,
    Option<shipshape_store::TokenRecord>,
)>;

/// The owner of a credential under `key`: kept in memory, else read by `read` (and kept, if
/// nothing about the owner changed meanwhile). Unknown credentials are not kept.
async fn known(
    state: &web::Data<AppState>,
    key: String,
    read: impl FnOnce(&shipshape_store::Store) -> shipshape_store::StoreResult<Found> + Send + 'static,
) -> Result<Option<std::sync::Arc<Known>>, ApiError> {
    let credentials = state.bus.credentials();
    if let Some(known) = credentials.get(&key, chrono::Utc::now()) {
        return Ok(Some(known));
    }
    let ticket = credentials.ticket();
    let store = state.store.clone();
    let Some((user, token)) = web::block(move || read(&store)).await?? else {
        return Ok(None);
    };
    let known = std::sync::Arc::new(Known {
        last_used: std::sync::Mutex::new(token.as_ref().and_then(|t| t.last_used_at)),
        user,
        token,
    });
    if let Some(ticket) = ticket {
        let owner = known.user.id.clone();
        credentials.put(key, &owner, ticket, Depends::Own, None, known.clone());
    }
    Ok(Some(known))
}

/// Records that an API token was used (at most once a minute: the store keeps the minute).
async fn record_use(
    state: &web::Data<AppState>,
    known: &std::sync::Arc<Known>,
) -> Result<(), ApiError> {
    let Some(token) = &known.token else {
        return Ok(());
    };
    let last = *known.last_used.lock().unwrap_or_else(|e| e.into_inner());
    // Checked here too, so that most uses cost no blocking hop.
    if !shipshape_store::use_is_due(last, shipshape_store::now_micros()) {
        return Ok(());
    }
    let (store, token) = (state.store.clone(), token.clone());
    if let Some(at) = web::block(move || store.touch_token(&token, last)).await?? {
        *known.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
    }
    Ok(())
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        let address = state
            .as_ref()
            .and_then(|s| crate::throttle::request_address(req, &s.trusted_proxies));
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::unauthorized("not configured"))?;
            let mut caller = authenticate(state, token?).await?;
            caller.address = address.map(|a| a.to_string());
            Ok(caller)
        })
    }
}
