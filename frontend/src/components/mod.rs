//! Parts the pages share: the signed-in guard, error notes, progress bars, status labels.

use leptos::prelude::*;
use shipshape_domain::item::ItemStatus;
use shipshape_domain::run::RunStatus;
use shipshape_domain::wire::Progress;

use crate::api::{ApiError, encode};
use crate::format;
use crate::router::use_location;
use crate::session::{Auth, use_session};

/// Shows its children to a signed-in user; sends anyone else to sign in, remembering the page
/// they wanted. When a session ends while a page is open, the page stays (with whatever the
/// user typed) under a sign-in dialog, and carries on once they have signed in again.
#[component]
pub fn RequireUser(children: ChildrenFn) -> impl IntoView {
    let session = use_session();
    let location = use_location();
    let shown = StoredValue::new(false);
    // 0 checking, 1 signed out, 2 the page: the children are built once per page, not on
    // every change of the session signal.
    let phase = Memo::new(move |_| match session.auth.get() {
        Auth::Checking => 0,
        Auth::SignedIn(_) => {
            shown.set_value(true);
            2
        }
        Auth::SignedOut { expired: true } if shown.get_value() => 2,
        Auth::SignedOut { .. } => 1,
    });
    let again =
        move || phase.get() == 2 && matches!(session.auth.get(), Auth::SignedOut { expired: true });
    view! {
        {move || match phase.get() {
            0 => view! { <p class="loading" role="status">"Loading…"</p> }.into_any(),
            1 => {
                let next = format!(
                    "{}{}",
                    location.path.get_untracked(),
                    location.search.get_untracked()
                );
                // After this render, not during it; and not if the app has moved on meanwhile
                // (signing out goes to the sign-in page itself).
                let here = location.path.get_untracked();
                leptos::task::spawn_local(async move {
                    if location.path.get_untracked() == here {
                        location.replace(&format!("/login?next={}", encode(&next)));
                    }
                });
                view! { <p class="loading" role="status">"Signing in…"</p> }.into_any()
            }
            _ => children().into_any(),
        }}
        {show_when(again, move || view! {
            <SignInAgain/>
        })}
    }
}

/// The dialog over a page whose session ended.
#[component]
fn SignInAgain() -> impl IntoView {
    let session = use_session();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ApiError>);
    let first = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(input) = first.get() {
            let _ = input.focus();
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (name, pass) = (username.get_untracked(), password.get_untracked());
        error.set(None);
        leptos::task::spawn_local(async move {
            if let Err(e) = session.sign_in(&name, &pass).await {
                error.try_set(Some(e));
            }
        });
    };
    view! {
        <div class="overlay">
            <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="again-h">
                <h2 id="again-h">"Your session has ended"</h2>
                <p>"Sign in again to carry on. What you typed on this page is kept."</p>
                <form class="stack" aria-label="Sign in again" on:submit=submit>
                    <label>"User name"<input node_ref=first name="again_username" autocomplete="username" required bind:value=username/></label>
                    <label>"Password"<input name="again_password" type="password" autocomplete="current-password" required bind:value=password/></label>
                    <ErrorNote error=error/>
                    <button type="submit" class="primary">"Sign in"</button>
                </form>
            </div>
        </div>
    }
}

/// `children` while `when` holds: built when it comes to hold, dropped when it stops (what
/// Leptos' `<Show>` does, in a fraction of the code per use).
pub fn show_when<V: IntoView + 'static>(
    when: impl Fn() -> bool + Send + Sync + 'static,
    children: impl Fn() -> V + Send + Sync + 'static,
) -> impl IntoView {
    let when = Memo::new(move |_| when());
    move || when.get().then(&children)
}

/// An error in words, announced to screen readers.
#[component]
pub fn ErrorNote(#[prop(into)] error: Signal<Option<ApiError>>) -> impl IntoView {
    move || {
        error.get().map(|e| {
            view! { <p class="error" role="alert">{e.message()}</p> }
        })
    }
}

/// A progress bar with its numbers in words (the bar is decoration; the text is the fact).
#[component]
pub fn ProgressBar(
    #[prop(into)] label: String,
    #[prop(into)] progress: Signal<Progress>,
) -> impl IntoView {
    let settled = move || {
        let p = progress.get();
        p.done + p.skipped
    };
    let applicable = move || progress.get().applicable;
    // Nothing applicable is nothing left to do.
    let percent = move || (settled() * 100).checked_div(applicable()).unwrap_or(100);
    view! {
        <div class="progress">
            <span class="progress-label">{label.clone()}</span>
            <progress max="100" value=percent aria-label=label.clone()>{percent}"%"</progress>
            <span class="progress-text">
                {move || {
                    let p = progress.get();
                    format!("{} of {} settled ({} done, {} skipped)", p.done + p.skipped, p.applicable, p.done, p.skipped)
                }}
            </span>
        </div>
    }
}

/// An item's status as a badge: symbol and words, coloured too.
#[component]
pub fn ItemStatusBadge(#[prop(into)] status: Signal<ItemStatus>) -> impl IntoView {
    view! {
        <span class="badge" data-status=move || status.get().as_str()>
            {move || format::item_status(status.get())}
        </span>
    }
}

/// A run's status as a badge.
#[component]
pub fn RunStatusBadge(#[prop(into)] status: Signal<RunStatus>) -> impl IntoView {
    view! {
        <span class="badge run" data-status=move || status.get().as_str()>
            {move || format::run_status(status.get())}
        </span>
    }
}
