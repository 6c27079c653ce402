//! The app's screens, one module per route.
//!
//! Sign-in is part of the app's first download. Every other screen is split into a module
//! (`shipshape-webbuild` does the splitting), fetched the first time it is opened: the first
//! load carries the app's shell and one screen, not all of them. The dashboard, the run page
//! and templates have a module each; the screens of forms share one.

pub mod announce;
pub mod calendar;
pub mod dashboard;
pub mod environments;
pub mod history;
pub mod insights;
pub mod integrations;
pub mod login;
pub mod new_run;
pub mod report;
pub mod run;
pub mod templates;
pub mod tokens;
pub mod users;

use leptos::prelude::*;
use wasm_split_helpers::{SplitLoaderError, wasm_split};

use crate::router::Page;

/// A screen's module could not be fetched (the server is unreachable, say).
#[derive(Debug)]
pub struct NotLoaded;

impl From<SplitLoaderError> for NotLoaded {
    fn from(_: SplitLoaderError) -> Self {
        NotLoaded
    }
}

type Screen = Result<AnyView, NotLoaded>;

#[wasm_split(dashboard, fallible, preload(preload_dashboard))]
fn dashboard_screen() -> Screen {
    Ok(view! { <dashboard::Dashboard/> }.into_any())
}

// The screens of forms share one module: new run, integrations, announcements, users and
// tokens. Each module of its own multiplies the modules that screens share (one per set of
// screens that use a piece of code), and every screen's first load pays for that: the run
// screen's most of all.
#[wasm_split(forms, fallible, preload(preload_forms))]
fn new_run_screen() -> Screen {
    Ok(view! { <new_run::NewRun/> }.into_any())
}

#[wasm_split(run, fallible, preload(preload_run))]
fn run_screen(id: String) -> Screen {
    Ok(view! { <run::RunPage id=id/> }.into_any())
}

#[wasm_split(templates, fallible, preload(preload_templates))]
fn template_list_screen() -> Screen {
    Ok(view! { <templates::TemplateList/> }.into_any())
}

#[wasm_split(templates, fallible)]
fn template_screen(id: String) -> Screen {
    Ok(view! { <templates::TemplatePage id=id/> }.into_any())
}

#[wasm_split(templates, fallible)]
fn import_template_screen() -> Screen {
    Ok(view! { <templates::ImportTemplate/> }.into_any())
}

#[wasm_split(forms, fallible)]
fn history_screen() -> Screen {
    Ok(view! { <history::History/> }.into_any())
}

#[wasm_split(forms, fallible)]
fn users_screen() -> Screen {
    Ok(view! { <users::Users/> }.into_any())
}

#[wasm_split(forms, fallible)]
fn integrations_screen() -> Screen {
    Ok(view! { <integrations::Integrations/> }.into_any())
}

#[wasm_split(forms, fallible)]
fn announce_screen(id: String) -> Screen {
    Ok(view! { <announce::AnnouncePage id=id/> }.into_any())
}

// Panels of the run page that are opened now and then (the decision form and log, an item's
// editor, skip reason, conflict and sign-off, the break-glass override and the abort's
// confirmation, adding a team member, a probe's history, the timeline, the issues log, the
// retrospective) share one module, fetched when the first is opened: not in the run page's
// first load, nor in the forms'. They come through one split function, so the run page
// carries one loader for all of them, not one each (5 KB less in its first load).

/// A panel of the run page (see [`panel`]).
pub(crate) enum Panel {
    DecisionForm(String, RwSignal<bool>),
    DecisionLog(Memo<Vec<shipshape_domain::wire::Decision>>),
    Item(run::ItemPanel),
    Override(run::OverridePanel),
    Abort(run::AbortPanel),
    Member(RwSignal<bool>),
    Timeline(RwSignal<Vec<crate::live::LogEvent>>),
    ProbeHistory(String),
    Issues,
    Retrospective,
    /// The run bar's filters, picking, shortcuts, and the commands given so far.
    Cockpit(run::RunCtx, RwSignal<String>),
}

#[wasm_split(panels, fallible)]
pub(crate) fn panel(panel: Panel) -> Screen {
    Ok(match panel {
        Panel::DecisionForm(key, deciding) => run::decision_form(key, deciding),
        Panel::DecisionLog(decisions) => run::decision_log(decisions),
        Panel::Item(p) => run::item_panel(p),
        Panel::Override(p) => run::override_panel(p),
        Panel::Abort(p) => run::abort_panel(p),
        Panel::Member(adding) => run::member_form(adding),
        Panel::Timeline(events) => run::timeline_list(events),
        Panel::ProbeHistory(item_id) => run::probe_history(item_id),
        Panel::Issues => run::issues_panel(),
        Panel::Retrospective => run::retrospective_panel(),
        Panel::Cockpit(ctx, commands) => run::cockpit_panel(ctx, commands),
    })
}

/// The decision form of a point.
pub(crate) fn decision_form(
    key: String,
    deciding: RwSignal<bool>,
) -> impl std::future::Future<Output = Screen> {
    panel(Panel::DecisionForm(key, deciding))
}

/// Every decision of the run.
pub(crate) fn decision_log(
    decisions: Memo<Vec<shipshape_domain::wire::Decision>>,
) -> impl std::future::Future<Output = Screen> {
    panel(Panel::DecisionLog(decisions))
}

/// An item row's editor, skip reason, conflict or sign-off.
pub(crate) fn item_panel(p: run::ItemPanel) -> impl std::future::Future<Output = Screen> {
    panel(Panel::Item(p))
}

/// The break-glass override's form.
pub(crate) fn override_panel(p: run::OverridePanel) -> impl std::future::Future<Output = Screen> {
    panel(Panel::Override(p))
}

/// "Abort the run?"
pub(crate) fn abort_panel(p: run::AbortPanel) -> impl std::future::Future<Output = Screen> {
    panel(Panel::Abort(p))
}

/// Adding a member to the run's team.
pub(crate) fn member_form(adding: RwSignal<bool>) -> impl std::future::Future<Output = Screen> {
    panel(Panel::Member(adding))
}

/// The run's timeline.
pub(crate) fn timeline(
    events: RwSignal<Vec<crate::live::LogEvent>>,
) -> impl std::future::Future<Output = Screen> {
    panel(Panel::Timeline(events))
}

/// A probe item's history.
pub(crate) fn probe_history(item_id: String) -> impl std::future::Future<Output = Screen> {
    panel(Panel::ProbeHistory(item_id))
}

/// The run's issues log.
pub(crate) fn issues_panel() -> impl std::future::Future<Output = Screen> {
    panel(Panel::Issues)
}

/// The run's retrospective.
pub(crate) fn retrospective_panel() -> impl std::future::Future<Output = Screen> {
    panel(Panel::Retrospective)
}

/// A pending answer (a split function's result that does its work after an `await`).
pub(crate) type Later<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T>>>;

/// An item change that met a newer version (see [`run::settle`]).
#[wasm_split(panels, fallible)]
pub(crate) fn settle(
    run_id: String,
    item_id: String,
    change: shipshape_domain::wire::UpdateItemRequest,
    before: Option<shipshape_domain::wire::RunItem>,
) -> Result<Later<run::Settled>, NotLoaded> {
    Ok(Box::pin(run::settle(run_id, item_id, change, before)))
}

// With the environments page, whose code it shares.
#[wasm_split(templates, fallible)]
pub fn environment_panel(name: String) -> Screen {
    Ok(run::environment_panel(name))
}

// The run report shares the dashboard's module: a module of its own would multiply the
// modules screens share (the run page's first load grew by 6 KB when it had one), and the
// forms' module has no room left.
#[wasm_split(dashboard, fallible)]
fn report_screen(id: String) -> Screen {
    Ok(view! { <report::ReportPage id=id/> }.into_any())
}

// Environments share the templates' module: the forms' and the dashboard's have no room left,
// and a module of their own would multiply the modules screens share.
#[wasm_split(templates, fallible)]
fn environments_screen(only: Option<String>) -> Screen {
    Ok(view! { <environments::Environments only=only/> }.into_any())
}

// The calendar shares the dashboard's module, as the report does.
#[wasm_split(dashboard, fallible)]
fn calendar_screen() -> Screen {
    Ok(view! { <calendar::CalendarPage/> }.into_any())
}

// Insights shares the forms' module: a module of its own made every other screen's first
// load 6 KB larger (more, smaller shared modules), the run page's past its budget.
#[wasm_split(dashboard, fallible)]
fn insights_screen() -> Screen {
    Ok(view! { <insights::Insights/> }.into_any())
}

#[wasm_split(forms, fallible)]
fn tokens_screen() -> Screen {
    Ok(view! { <tokens::Tokens/> }.into_any())
}

/// Starts fetching the modules of a page's screen (and the run page's run): they arrive while
/// the session is still being checked. A failure is reported when the screen itself asks for them.
pub fn prefetch(page: &Page) {
    // The run page's data (the run and its log) is asked for with its code, not after it.
    if let Page::Run(id) = page {
        crate::api::prefetch(&[format!("/runs/{id}"), crate::api::events_path(id, 0)]);
    }
    let page = page.clone();
    leptos::task::spawn_local(async move {
        let _ = match page {
            Page::Dashboard | Page::Report(_) | Page::Calendar | Page::Insights => {
                preload_dashboard().await
            }
            Page::NewRun
            | Page::History
            | Page::Users
            | Page::Tokens
            | Page::Integrations
            | Page::Announce(_) => preload_forms().await,
            Page::Run(_) => preload_run().await,
            Page::Templates | Page::Template(_) | Page::ImportTemplate | Page::Environments(_) => {
                preload_templates().await
            }
            Page::Login | Page::NotFound => Ok(()),
        };
    });
}

/// A screen, shown once its module has arrived (at once when it was fetched before).
#[component]
pub fn Lazy(page: Page) -> impl IntoView {
    lazy_panel(async move {
        match page {
            Page::Dashboard => dashboard_screen().await,
            Page::NewRun => new_run_screen().await,
            Page::Run(id) => run_screen(id).await,
            Page::Templates => template_list_screen().await,
            Page::Template(id) => template_screen(id).await,
            Page::ImportTemplate => import_template_screen().await,
            Page::History => history_screen().await,
            Page::Users => users_screen().await,
            Page::Tokens => tokens_screen().await,
            Page::Integrations => integrations_screen().await,
            Page::Announce(id) => announce_screen(id).await,
            Page::Report(id) => report_screen(id).await,
            Page::Environments(only) => environments_screen(only).await,
            Page::Calendar => calendar_screen().await,
            Page::Insights => insights_screen().await,
            Page::Login | Page::NotFound => Ok(().into_any()),
        }
    })
}

/// A screen or panel, shown once its module has arrived (`load` fetches it and builds it).
pub fn lazy_panel(load: impl std::future::Future<Output = Screen> + 'static) -> impl IntoView {
    let shown = RwSignal::new_local(None::<Screen>);
    // Scoped: the screen is built under the caller's owner, so it finds its context and is
    // cleaned up with it. Left before the module arrived, nothing is built.
    leptos::task::spawn_local_scoped_with_cancellation(async move {
        let screen = load.await;
        shown.try_set(Some(screen));
    });
    // The screen is moved out of the signal into the page: this closure's one dependency is
    // `shown`, which is set once, so it runs twice (loading, then the screen).
    move || {
        shown.track();
        match shown.try_update_untracked(Option::take).flatten() {
            None => view! { <p class="loading" role="status">"Loading…"</p> }.into_any(),
            Some(Ok(screen)) => screen,
            Some(Err(NotLoaded)) => view! {
                <div class="error" role="alert">
                    <p>"This page could not be loaded: Shipshape could not be reached, or it has been updated since this tab opened. Reload to carry on."</p>
                    <button type="button" on:click=|_| { let _ = window().location().reload(); }>"Reload"</button>
                </div>
            }
            .into_any(),
        }
    }
}
