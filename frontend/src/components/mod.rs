//! Parts the pages share: the signed-in guard, error notes, progress bars, status labels.

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_location;
use shipshape_domain::item::ItemStatus;
use shipshape_domain::run::RunStatus;
use shipshape_domain::wire::Progress;

use crate::api::{ApiError, encode};
use crate::format;
use crate::session::{Auth, use_session};

/// Shows its children to a signed-in user; sends anyone else to sign in, remembering the page
/// they wanted.
#[component]
pub fn RequireUser(children: ChildrenFn) -> impl IntoView {
    let session = use_session();
    let location = use_location();
    // 0 checking, 1 signed out, 2 signed in: the children are built once per sign-in, not on
    // every change of the session signal.
    let state = Memo::new(move |_| match session.auth.get() {
        Auth::Checking => 0,
        Auth::SignedOut { .. } => 1,
        Auth::SignedIn(_) => 2,
    });
    move || match state.get() {
        0 => view! { <p class="loading" role="status">"Loading…"</p> }.into_any(),
        1 => {
            let next = format!(
                "{}{}",
                location.pathname.get_untracked(),
                location.search.get_untracked()
            );
            view! { <Redirect path=format!("/login?next={}", encode(&next))/> }.into_any()
        }
        _ => children().into_any(),
    }
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
