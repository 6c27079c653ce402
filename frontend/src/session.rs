//! The session: the access token in `localStorage` (so a reload keeps you signed in) and the
//! signed-in user as a signal the whole app reads. When the server answers 401 the session
//! ends here, and the pages that need a user send you to sign in, remembering where you were.

use std::cell::Cell;

use leptos::prelude::*;
use shipshape_domain::access::Permission;
use shipshape_domain::wire::User;

use crate::api::{self, ApiResult};

const TOKEN_KEY: &str = "shipshape.token";

/// Where the session stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// A stored token is being checked.
    Checking,
    /// Nobody is signed in; `expired` when a session just ended on its own.
    SignedOut {
        /// Whether the session expired (rather than never existed or was signed out).
        expired: bool,
    },
    /// Signed in.
    SignedIn(User),
}

/// The session, shared through context and reachable from the API client.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    /// Where the session stands.
    pub auth: RwSignal<Auth>,
}

thread_local! {
    static CURRENT: Cell<Option<Session>> = const { Cell::new(None) };
}

impl Session {
    /// Creates the session and makes it the current one.
    pub fn install() -> Session {
        let auth = if token().is_some() {
            Auth::Checking
        } else {
            Auth::SignedOut { expired: false }
        };
        let session = Session {
            auth: RwSignal::new(auth),
        };
        CURRENT.with(|c| c.set(Some(session)));
        session
    }

    /// The signed-in user, if any (tracked).
    pub fn user(&self) -> Option<User> {
        match self.auth.get() {
            Auth::SignedIn(user) => Some(user),
            Auth::Checking | Auth::SignedOut { .. } => None,
        }
    }

    /// Whether the signed-in user's role allows `permission` (tracked); the server decides,
    /// this only hides what would be refused.
    pub fn allows(&self, permission: Permission) -> bool {
        self.auth
            .with(|auth| matches!(auth, Auth::SignedIn(user) if user.role.allows(permission)))
    }

    /// Signs in: stores the new session's token, then reads the user with it.
    pub async fn sign_in(&self, username: &str, password: &str) -> ApiResult<()> {
        let token = api::login(username, password).await?;
        store_token(Some(&token.access_token));
        let user = api::me().await?;
        self.auth.set(Auth::SignedIn(user));
        Ok(())
    }

    /// The stored token turned out to be no longer valid.
    pub fn expired_now(&self) {
        store_token(None);
        self.auth.set(Auth::SignedOut { expired: true });
    }

    /// Forgets the session (after signing out).
    pub fn signed_out(&self) {
        store_token(None);
        self.auth.set(Auth::SignedOut { expired: false });
    }
}

/// The session in context.
pub fn use_session() -> Session {
    expect_context::<Session>()
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The stored access token.
pub fn token() -> Option<String> {
    storage()?.get_item(TOKEN_KEY).ok()?
}

/// Stores (or removes) the token; what was read ahead for the session before is dropped.
fn store_token(token: Option<&str>) {
    crate::api::forget_prefetched();
    if let Some(storage) = storage() {
        let _ = match token {
            Some(t) => storage.set_item(TOKEN_KEY, t),
            None => storage.remove_item(TOKEN_KEY),
        };
    }
}

/// The server refused `sent`: the session is over — unless the user has signed in again
/// since (a late answer to a request sent with the old token must not end the new session).
pub fn refused(sent: &str) {
    if token().as_deref() != Some(sent) {
        return;
    }
    match CURRENT.with(Cell::get) {
        Some(session) => session.expired_now(),
        None => store_token(None),
    }
}
