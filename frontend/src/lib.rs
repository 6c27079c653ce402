//! Shipshape's web app: where a release team lives during a deployment. A Leptos 0.8
//! client-side-rendered single-page app compiled to WASM and served by the `shipshape`
//! binary. It speaks to the REST API through [`api`] with the domain crate's wire types, and
//! shows what the API says is allowed and blocking; it never re-implements a rule.
//!
//! `lib.rs` holds the [`App`] and its routes; `pages/` the screens; `components/` the parts
//! they share; [`live`] the event stream; [`format`] the words for what the API returns.

pub mod api;
pub mod components;
pub mod format;
pub mod live;
pub mod pages;
pub mod router;
pub mod session;

use leptos::prelude::*;
use shipshape_domain::access::Permission;

use crate::components::{RequireUser, show_when};
use crate::pages::{Lazy, login::Login};
use crate::router::{Location, Page, is_current};
use crate::session::{Auth, Session};

/// Mounts the app on the page's `<body>`.
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    leptos::mount::mount_to_body(App);
}

/// The whole app: the session, the header and the routes.
#[component]
pub fn App() -> impl IntoView {
    let session = Session::install();
    provide_context(session);
    if session.auth.get_untracked() == Auth::Checking {
        leptos::task::spawn_local(check_session(session));
    }
    let location = Location::install();
    focus_on_navigation(location);
    let page = Memo::new(move |_| Page::from_path(&location.path.get()));
    view! {
        <a class="skip" href="#main">"Skip to content"</a>
        <Header/>
        <main id="main" tabindex="-1" on:input=|ev| router::mark_form(&ev, "form", true)>
            {move || match page.get() {
                Page::Login => view! { <Login/> }.into_any(),
                Page::NotFound => view! {
                    <h1>"Not found"</h1>
                    <p>"There is no page here."</p>
                    <a href="/">"Back to the dashboard"</a>
                }.into_any(),
                page => {
                    pages::prefetch(&page);
                    view! { <RequireUser><Lazy page=page.clone()/></RequireUser> }.into_any()
                }
            }}
        </main>
    }
}

/// Checks a stored token at start-up: the session survives a reload while it is valid.
async fn check_session(session: Session) {
    loop {
        match api::me().await {
            Ok(user) => {
                session.auth.set(Auth::SignedIn(user));
                return;
            }
            // A 401 has already ended the session.
            Err(e) if e.status == 401 || e.status == 403 => {
                if session.auth.get_untracked() == Auth::Checking {
                    session.expired_now();
                }
                return;
            }
            Err(_) => live::sleep(2000).await,
        }
    }
}

/// After a client-side navigation, focus moves to the page's content (as a page load would
/// reset it), so keyboard and screen-reader users start at the new page, not the old link.
fn focus_on_navigation(location: Location) {
    Effect::new(move |previous: Option<String>| {
        let path = location.path.get();
        if previous.as_ref().is_some_and(|p| *p != path)
            && let Some(main) = document()
                .get_element_by_id("main")
                .and_then(|e| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok())
        {
            let _ = main.focus();
        }
        path
    });
}

/// A link in the main navigation, marked `aria-current` on its own page.
#[component]
fn NavLink(href: &'static str, label: &'static str) -> impl IntoView {
    let location = router::use_location();
    let current = move || is_current(href, &location.path.get()).then_some("page");
    view! { <a href=href aria-current=current>{label}</a> }
}

#[component]
fn Header() -> impl IntoView {
    let session = session::use_session();
    let location = router::use_location();
    let sign_out = move |_| {
        leptos::task::spawn_local(async move {
            // Even if the server cannot be reached, this browser forgets the session.
            let _ = api::logout().await;
            session.signed_out();
            location.navigate("/login");
        });
    };
    let user = move || session.user();
    view! {
        <header class="top">
            <a href="/" class="brand">"⚓ Shipshape"</a>
            {show_when(move || user().is_some(), move || view! {
                <nav aria-label="Main">
                    <ul>
                        <li><NavLink href="/" label="Dashboard"/></li>
                        {show_when(move || session.allows(Permission::SteerRuns), move || view! {
                            <li><NavLink href="/runs/new" label="New run"/></li>
                        })}
                        <li><NavLink href="/runs" label="All runs"/></li>
                        <li><NavLink href="/calendar" label="Calendar"/></li>
                        <li><NavLink href="/insights" label="Insights"/></li>
                        <li><NavLink href="/environments" label="Environments"/></li>
                        <li><NavLink href="/templates" label="Templates"/></li>
                        {show_when(move || session.allows(Permission::ManageUsers), move || view! {
                            <li><NavLink href="/users" label="Users"/></li>
                        })}
                        {show_when(move || session.allows(Permission::ManageWebhooks), move || view! {
                            <li><NavLink href="/integrations" label="Integrations"/></li>
                        })}
                        <li><NavLink href="/tokens" label="API tokens"/></li>
                    </ul>
                </nav>
                <div class="who">
                    <span data-testid="whoami">
                        {move || user().map(|u| format!("{} ({})", u.username, format::role(u.role)))}
                    </span>
                    <button type="button" class="link" on:click=sign_out>"Sign out"</button>
                </div>
            })}
        </header>
    }
}
