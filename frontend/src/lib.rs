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
pub mod session;

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::hooks::use_navigate;
use leptos_router::path;
use shipshape_domain::access::Permission;

use crate::components::RequireUser;
use crate::pages::{
    dashboard::Dashboard, login::Login, new_run::NewRun, run::RunPage, templates::ImportTemplate,
    templates::TemplateList, templates::TemplatePage, tokens::Tokens, users::Users,
};
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
    view! {
        <Router>
            <a class="skip" href="#main">"Skip to content"</a>
            <FocusOnNavigation/>
            <Header/>
            <main id="main" tabindex="-1">
                <Routes fallback=|| view! { <h1>"Not found"</h1><p>"There is no page here."</p><A href="/">"Back to the dashboard"</A> }>
                    <Route path=path!("/login") view=Login/>
                    <Route path=path!("/") view=|| view! { <RequireUser><Dashboard/></RequireUser> }/>
                    <Route path=path!("/runs/new") view=|| view! { <RequireUser><NewRun/></RequireUser> }/>
                    <Route path=path!("/runs/:id") view=|| view! { <RequireUser><RunPage/></RequireUser> }/>
                    <Route path=path!("/templates") view=|| view! { <RequireUser><TemplateList/></RequireUser> }/>
                    <Route path=path!("/templates/import") view=|| view! { <RequireUser><ImportTemplate/></RequireUser> }/>
                    <Route path=path!("/templates/:id") view=|| view! { <RequireUser><TemplatePage/></RequireUser> }/>
                    <Route path=path!("/users") view=|| view! { <RequireUser><Users/></RequireUser> }/>
                    <Route path=path!("/tokens") view=|| view! { <RequireUser><Tokens/></RequireUser> }/>
                </Routes>
            </main>
        </Router>
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
#[component]
fn FocusOnNavigation() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    Effect::new(move |previous: Option<String>| {
        let path = location.pathname.get();
        if previous.as_ref().is_some_and(|p| *p != path)
            && let Some(main) = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.get_element_by_id("main"))
                .and_then(|e| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok())
        {
            let _ = main.focus();
        }
        path
    });
}

#[component]
fn Header() -> impl IntoView {
    let session = session::use_session();
    let navigate = use_navigate();
    let sign_out = move |_| {
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            // Even if the server cannot be reached, this browser forgets the session.
            let _ = api::logout().await;
            session.signed_out();
            navigate("/login", Default::default());
        });
    };
    let user = move || session.user();
    view! {
        <header class="top">
            <A href="/" attr:class="brand">"⚓ Shipshape"</A>
            <Show when=move || user().is_some()>
                <nav aria-label="Main">
                    <ul>
                        <li><A href="/">"Dashboard"</A></li>
                        <Show when=move || user().is_some_and(|u| u.role.allows(Permission::SteerRuns))>
                            <li><A href="/runs/new">"New run"</A></li>
                        </Show>
                        <li><A href="/templates">"Templates"</A></li>
                        <Show when=move || user().is_some_and(|u| u.role.allows(Permission::ManageUsers))>
                            <li><A href="/users">"Users"</A></li>
                        </Show>
                        <li><A href="/tokens">"API tokens"</A></li>
                    </ul>
                </nav>
                <div class="who">
                    <span data-testid="whoami">
                        {move || user().map(|u| format!("{} ({})", u.username, format::role(u.role)))}
                    </span>
                    <button type="button" class="link" on:click=sign_out.clone()>"Sign out"</button>
                </div>
            </Show>
        </header>
    }
}
