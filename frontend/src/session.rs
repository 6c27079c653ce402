//! The session: the access token in `localStorage` (so a reload keeps you signed in) and the
//! signed-in user as a signal the whole app reads. When the server answers 401 the session
//! ends here, and the pages that need a user send you to sign in, remembering where you were.

use std::cell::Cell;

use leptos::prelude::*;
use shipshape_domain::wire::User;

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

    /// The user signed in (their token is already stored with [`set_token`]).
    pub fn signed_in(&self, user: User) {
        self.auth.set(Auth::SignedIn(user));
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

/// Stores the access token of a new session.
pub fn set_token(token: &str) {
    store_token(Some(token));
}

fn store_token(token: Option<&str>) {
    if let Some(storage) = storage() {
        let _ = match token {
            Some(t) => storage.set_item(TOKEN_KEY, t),
            None => storage.remove_item(TOKEN_KEY),
        };
    }
}

/// The server refused the stored token: the session is over.
pub fn expired() {
    store_token(None);
    if let Some(session) = CURRENT.with(Cell::get) {
        session.auth.set(Auth::SignedOut { expired: true });
    }
}
