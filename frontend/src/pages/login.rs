//! Sign in. After an expired session it says so, and it returns you to the page you were on.

use leptos::prelude::*;

use crate::api::ApiError;
use crate::components::{ErrorNote, show_when};
use crate::format::safe_next;
use crate::router::{query_value, use_location};
use crate::session::{Auth, use_session};

/// The sign-in page.
#[component]
pub fn Login() -> impl IntoView {
    let session = use_session();
    let location = use_location();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let next = move || safe_next(query_value(&location.search.get_untracked(), "next").as_deref());

    // Signed in (or already, coming back): go on. In place of the sign-in page in the
    // history, so Back does not return to it.
    Effect::new(move |_| {
        if matches!(session.auth.get(), Auth::SignedIn(_)) {
            location.replace(&next());
        }
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let (name, pass) = (username.get_untracked(), password.get_untracked());
        leptos::task::spawn_local(async move {
            let result = session.sign_in(&name, &pass).await;
            busy.set(false);
            if let Err(e) = result {
                error.set(Some(e));
            }
        });
    };

    view! {
        <section class="narrow">
            <h1>"Sign in to Shipshape"</h1>
            {show_when(move || matches!(session.auth.get(), Auth::SignedOut { expired: true }), move || view! {
                <p class="notice" role="status">"Your session has ended. Sign in again to continue where you were."</p>
            })}
            <form on:submit=submit class="stack" aria-label="Sign in">
                <label>"User name"
                    <input name="username" autocomplete="username" required bind:value=username/>
                </label>
                <label>"Password"
                    <input name="password" type="password" autocomplete="current-password" required bind:value=password/>
                </label>
                <ErrorNote error=error/>
                <button type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
        </section>
    }
}
