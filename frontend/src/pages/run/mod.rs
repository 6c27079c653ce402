//! The run page: the checklist with every item's status, assignee, note and evidence (edited
//! inline, claimed, signed off), what blocks the next transition before anyone clicks, the
//! transitions, the decision panel, the team, the break-glass override and the event
//! timeline. It follows the run's event stream, so changes by others appear within a second.
//!
//! Edits name the version they were based on (`If-Match`). When someone else got there
//! first, the item shows "changed by someone else" with their values and a way to re-apply
//! yours: nothing is dropped or overwritten without the user choosing so.

use leptos::prelude::*;
use send_wrapper::SendWrapper;
use shipshape_domain::access::Permission;
use shipshape_domain::approval::Verdict;
use shipshape_domain::decision::{CriterionInput, CriterionResult, Outcome};
use shipshape_domain::item::{ItemStatus, may_change, may_mark_done, status_by_hand};
use shipshape_domain::run::{Blocker, RunStatus, TransitionAction};
use shipshape_domain::template::{Applicability, Gate, ItemKind, RecordKind};
use shipshape_domain::wire::{
    AddMemberRequest, CreateDecisionRequest, CreateSignoffRequest, Run, RunDecisionPoint, RunItem,
    TransitionAvailability, TransitionRequest, UpdateItemRequest, User,
};

use crate::api::{self, ApiError};
use crate::components::{ErrorNote, ItemStatusBadge, RunStatusBadge, show_when};
use crate::format;
use crate::live::{self, Coalesce, LinkState};
use crate::session::use_session;

mod checklist;
mod cockpit;
mod decisions;
mod environment;
mod records;
mod team;
mod timeline;
mod transitions;

use checklist::Checklist;
use decisions::Decisions;
use environment::EnvironmentSection;
use records::Records;
use team::Team;
use timeline::Timeline;
use transitions::Transitions;

/// The run being shown, shared by the page's parts.
///
/// Requests finish after the page may have been left (its signals disposed), so everything
/// here that runs after an `await` uses the `try_` accessors and does nothing once the page
/// is gone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunCtx {
    id: StoredValue<String>,
    run: RwSignal<Option<Run>>,
    /// Re-reads of the run, folded together.
    reads: StoredValue<Coalesce, LocalStorage>,
    /// The highest event sequence number the stream has delivered.
    seen: StoredValue<i64>,
    /// The time, ticking every 15 seconds: results age and deadlines count down.
    now: RwSignal<chrono::DateTime<chrono::Utc>>,
}

/// The next step forward (not aborting): what it is and what blocks it.
pub(crate) fn next_step(run: &Run) -> Option<&TransitionAvailability> {
    run.transitions
        .iter()
        .find(|t| t.action != TransitionAction::Abort)
}

/// The browser's clock.
fn clock() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default()
}

impl RunCtx {
    /// The run's id (empty once the page is gone).
    fn id(self) -> String {
        self.id.try_get_value().unwrap_or_default()
    }

    /// Takes a run read from the server, unless a newer one is already shown. Items keep a
    /// newer version already shown (an item saved while this read was under way).
    fn accept(self, mut run: Run) {
        let Some(newer) = self.run.try_with_untracked(|cur| match cur {
            None => true,
            Some(cur) if cur.summary.version > run.summary.version => false,
            Some(cur) => {
                for part in &mut run.parts {
                    for section in &mut part.sections {
                        for item in &mut section.items {
                            if let Some(shown) = find_item(cur, &item.id)
                                && shown.version > item.version
                            {
                                *item = shown.clone();
                            }
                        }
                    }
                }
                true
            }
        }) else {
            return;
        };
        let behind = run.summary.version < self.seen.try_get_value().unwrap_or(0);
        if newer {
            self.run.set(Some(run));
        }
        if behind {
            // The stream has already told of later changes: read again.
            self.reload();
        }
    }

    /// Puts a changed item in place at once (the run's progress follows with the reload).
    fn accept_item(self, item: RunItem) {
        self.run.try_update(|run| {
            if let Some(slot) = run.as_mut().and_then(|r| find_item_mut(r, &item.id))
                && slot.version < item.version
            {
                *slot = item;
            }
        });
    }

    /// Reads the run again; reads asked for meanwhile are folded into one more.
    fn reload(self) {
        if let Some(reads) = self.reads.try_get_value() {
            reads.read(move || async move {
                if let Ok(run) = api::get_run(&self.id()).await {
                    self.accept(run);
                }
            });
        }
    }
}

fn find_item<'a>(run: &'a Run, id: &str) -> Option<&'a RunItem> {
    run.parts
        .iter()
        .flat_map(|p| &p.sections)
        .flat_map(|s| &s.items)
        .find(|i| i.id == id)
}

fn find_item_mut<'a>(run: &'a mut Run, id: &str) -> Option<&'a mut RunItem> {
    run.parts
        .iter_mut()
        .flat_map(|p| &mut p.sections)
        .flat_map(|s| &mut s.items)
        .find(|i| i.id == id)
}

/// A view part that renders nothing and calls `load` now and whenever `changed` changes: a
/// panel reads again what it shows through it.
fn reload_on<T: PartialEq + Clone + Send + Sync + 'static>(
    changed: Memo<T>,
    load: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    move || {
        // Read, not only tracked: a memo computes (and so tells of a change) when read.
        let _ = changed.get();
        load();
    }
}

fn can(permission: Permission) -> impl Fn() -> bool + Copy {
    let session = use_session();
    move || session.allows(permission)
}

/// Whether `user` is on `run`'s team.
fn is_member(run: &Run, user: &User) -> bool {
    run.members.iter().any(|m| m.user_id == user.id)
}

/// Whether `user` may change `item` of `run` now: the server's rule ([`may_change`]). An item
/// the run does not ask for shows no controls.
fn may_work(run: &Run, item: &RunItem, user: &User) -> bool {
    item.applicable
        && may_change(&item.context(&run.summary), user.role, is_member(run, user)).is_ok()
}

/// The decision form of a point (see [`crate::pages::decision_form`]).
pub(crate) fn decision_form(key: String, deciding: RwSignal<bool>) -> AnyView {
    view! { <decisions::DecisionForm key=key deciding=deciding/> }.into_any()
}

pub(crate) use checklist::{ItemPanel, Settled, item_panel, settle};
pub(crate) use cockpit::cockpit_panel;
pub(crate) use team::member_form;
pub(crate) use transitions::{AbortPanel, OverridePanel, abort_panel, override_panel};

pub(crate) use timeline::timeline_list;

pub(crate) use decisions::decision_log;
pub(crate) use environment::environment_panel;
pub(crate) use records::{diff_view, issues_panel, retrospective_panel};

/// A probe item's history (see [`crate::pages::probe_history`]).
pub(crate) fn probe_history(item_id: String) -> AnyView {
    view! { <checklist::ProbeHistory item_id=item_id/> }.into_any()
}

/// The run page (`/runs/:id`).
#[component]
pub fn RunPage(id: String) -> impl IntoView {
    let ctx = RunCtx {
        id: StoredValue::new(id.clone()),
        run: RwSignal::new(None),
        reads: StoredValue::new_local(Coalesce::default()),
        seen: StoredValue::new(0),
        now: RwSignal::new(clock()),
    };
    provide_context(ctx);
    if let Ok(tick) = set_interval_with_handle(
        move || {
            ctx.now.try_set(clock());
        },
        std::time::Duration::from_secs(15),
    ) {
        on_cleanup(move || tick.clear());
    }
    let events = RwSignal::new(Vec::<live::LogEvent>::new());
    let link = RwSignal::new(None::<LinkState>);
    let load_error = RwSignal::new(None::<ApiError>);

    leptos::task::spawn_local(async move {
        match api::get_run(&ctx.id()).await {
            Ok(run) => {
                ctx.accept(run);
                scroll_to_hash();
            }
            Err(e) => load_error.set(Some(e)),
        }
    });
    // The whole log, then every new event: the timeline, and a reload when the run moved on.
    let follow = live::follow(
        id,
        0,
        move |batch| {
            let last = batch.last().map_or(0, |e| e.seq);
            ctx.seen.try_set_value(last);
            events.try_update(|e| e.extend(batch));
            let behind = ctx
                .run
                .try_with_untracked(|r| r.as_ref().is_some_and(|r| r.summary.version < last))
                .unwrap_or(false);
            if behind {
                ctx.reload();
            }
        },
        move |state| {
            link.try_set(Some(state));
        },
    );
    let follow = SendWrapper::new(follow);
    on_cleanup(move || drop(follow));

    let loaded = Memo::new(move |_| ctx.run.with(Option::is_some));
    view! {
        {move || {
            if loaded.get() {
                view! { <RunBody events=events link=link/> }.into_any()
            } else if load_error.with(Option::is_some) {
                view! { <h1>"Run"</h1><ErrorNote error=load_error/> }.into_any()
            } else {
                view! { <p class="loading" role="status">"Loading the run…"</p> }.into_any()
            }
        }}
    }
}

fn scroll_to_hash() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let hash = window.location().hash().unwrap_or_default();
    let Some(target) = hash.strip_prefix('#').filter(|h| !h.is_empty()) else {
        return;
    };
    let target = target.to_owned();
    leptos::task::spawn_local(async move {
        // After the checklist is in the page.
        live::sleep(0).await;
        if let Some(el) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id(&target))
        {
            el.scroll_into_view();
        }
    });
}

#[component]
fn RunBody(
    events: RwSignal<Vec<live::LogEvent>>,
    link: RwSignal<Option<LinkState>>,
) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let summary = Memo::new(move |_| ctx.run.with(|r| r.as_ref().map(|r| r.summary.clone())));
    let field = move |f: fn(&shipshape_domain::wire::RunSummary) -> String| {
        move || summary.with(|s| s.as_ref().map(f).unwrap_or_default())
    };
    let status = Signal::derive(move || {
        summary.with(|s| s.as_ref().map_or(RunStatus::Planned, |s| s.status))
    });
    view! {
        <a class="skip" href="#checklist">"Skip to the checklist"</a>
        <div class="run-head" data-version=move || summary.with(|s| s.as_ref().map_or(0, |s| s.version))>
            <h1>{field(|s| format!("{} {} → {}", s.product, s.release_version, s.environment))}</h1>
            {move || ctx.run.with(|r| r.as_ref().and_then(rollback_banner))}
            <dl class="facts">
                <dt>"Template"</dt><dd>{field(|s| format!("{} v{}", s.template_name, s.template_version))}</dd>
                <dt>"Window (UTC)"</dt><dd>{field(|s| match (s.window_start, s.window_end) {
                    (Some(a), Some(b)) => format!("{} – {}", format::time(a), format::time(b)),
                    (Some(a), None) => format!("from {}", format::time(a)),
                    (None, Some(b)) => format!("until {}", format::time(b)),
                    (None, None) => "not scheduled".into(),
                })}</dd>
                <dt>"Expected downtime"</dt><dd>{field(|s| s.expected_downtime_minutes.map_or("none stated".into(), |m| format!("{m} min")))}</dd>
                <dt>"Created by"</dt><dd>{field(|s| format!("{} on {}", s.created_by, format::time(s.created_at)))}</dd>
            </dl>
        </div>
        <RunBar status=status link=link summary=summary/>
        <div class="run-grid">
            <div class="run-main">
                <Transitions/>
                <Decisions/>
                <Checklist/>
                <Records/>
            </div>
            <aside class="run-side">
                <EnvironmentSection/>
                <Team/>
                <Announce/>
                <Timeline events=events/>
            </aside>
        </div>
    }
}

/// The bar that stays in view while the checklist scrolls: the stage (and whether the page
/// is live), what is settled, the next step and how much blocks it; which items to show,
/// picking several, and the shortcuts.
///
/// Its buttons and the shortcut keys are commands for the cockpit ([`cockpit`]), whose code
/// comes with the panels when the first is given: the first load carries only the buttons,
/// one click handler and a key listener. Commands given meanwhile wait in `commands`.
#[component]
fn RunBar(
    status: Signal<RunStatus>,
    link: RwSignal<Option<LinkState>>,
    summary: Memo<Option<shipshape_domain::wire::RunSummary>>,
) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let commands = RwSignal::new(String::new());
    let opened = RwSignal::new(false);
    let give = move |command: &str| {
        // Once: setting it again would build the cockpit anew, losing its state.
        if !opened.get_untracked() {
            opened.set(true);
        }
        commands.update(|c| {
            c.push_str(command);
            c.push(' ');
        });
    };
    let on_click = move |ev: leptos::ev::MouseEvent| {
        use wasm_bindgen::JsCast;
        if let Some(command) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|t| t.closest("[data-cmd]").ok().flatten())
            .and_then(|b| b.get_attribute("data-cmd"))
        {
            give(&command);
        }
    };
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        use wasm_bindgen::JsCast;
        let key = ev.key();
        // Keys typed into a field, or choosing an option, are the field's.
        let typing = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|t| {
                t.closest("input, textarea, select")
                    .ok()
                    .flatten()
                    .is_some()
            });
        if typing
            || ev.ctrl_key()
            || ev.meta_key()
            || ev.alt_key()
            || !cockpit::KEYS.contains(&key.as_str())
        {
            return;
        }
        ev.prevent_default();
        give(&key);
    });
    on_cleanup(move || keys.remove());
    let can_work = can(Permission::WorkItems)();
    let can_steer = can(Permission::SteerRuns)();
    view! {
        <div class="runbar" role="region" aria-label="Where the run stands" on:click=on_click>
            <p class="run-status">
                <RunStatusBadge status=status/>
                {move || summary.with(|s| s.as_ref().and_then(|s| s.closed_at)).map(|at| view! {
                    <span class="badge closed">{format!("🔒 Closed {}", format::time(at))}</span>
                })}
                {move || summary.with(|s| s.as_ref().is_some_and(|s| s.overridden)).then(|| view! {
                    <span class="badge warn">"⚠ Break-glass override in effect: review it before closing"</span>
                })}
                // A closed run changes no more: nothing to follow.
                <span class="link-state" role="status"
                    hidden=move || summary.with(|s| s.as_ref().is_some_and(|s| s.closed_at.is_some()))
                    data-link=move || match link.get() {
                    Some(LinkState::Live) => "live",
                    Some(LinkState::Reconnecting) => "reconnecting",
                    Some(LinkState::Stopped) => "stopped",
                    None => "connecting",
                }>
                    {move || match link.get() {
                        Some(LinkState::Live) => "● Live",
                        Some(LinkState::Reconnecting) => "○ Reconnecting…",
                        Some(LinkState::Stopped) => "■ Not live: reload the page",
                        None => "○ Connecting…",
                    }}
                </span>
            </p>
            <span class="settled">{move || summary.with(|s| s.as_ref().map(|s| {
                format!("{}/{} settled", s.progress.done + s.progress.skipped, s.progress.applicable)
            }))}</span>
            <a class="next" href="#next-step">{move || ctx.run.with(|r| r.as_ref().map(|r| match next_step(r) {
                None => "Nothing more to do".to_owned(),
                Some(t) => format!("Next: {} — {} blocking", format::action(t.action, r.summary.status), t.blockers.len()),
            }))}</a>
            <span class="filters" role="group" aria-label="Show items">
                <button type="button" id="show-all" data-cmd="all" aria-pressed="true">"All"</button>
                <button type="button" id="show-open" data-cmd="open" aria-pressed="false">"Open"</button>
                <button type="button" id="show-mine" data-cmd="mine" aria-pressed="false">"Mine"</button>
                <button type="button" id="show-blocking" data-cmd="blocking" aria-pressed="false">"Blocking the next step"</button>
            </span>
            <button type="button" id="pick-mode" data-cmd="pick" aria-pressed="false" hidden=!can_work>"Select several"</button>
            <button type="button" id="edit-schedule" data-cmd="schedule" aria-pressed="false" hidden=!can_steer>"Edit schedule"</button>
            <button type="button" class="keys" data-cmd="?" aria-label="Keyboard shortcuts" aria-keyshortcuts="?">"?"</button>
        </div>
        // What the commands open comes under the bar, not in it: the bar stays one compact
        // line that never covers the rows.
        {move || opened.get().then(|| crate::pages::lazy_panel(crate::pages::panel(crate::pages::Panel::Cockpit(ctx, commands))))}
    }
}

/// On a run rolling back or rolled back: the rollback decision, its rationale first.
fn rollback_banner(r: &Run) -> Option<impl IntoView + use<>> {
    if !r.summary.status.has_rolled_back() {
        return None;
    }
    let d = r
        .decisions
        .iter()
        .rev()
        .find(|d| d.outcome == Outcome::Rollback)?;
    let point = r
        .decision_points
        .iter()
        .find(|p| p.key == d.point_key)
        .map_or(d.point_key.clone(), |p| p.title.clone());
    let by = format!(
        "Rolled back by {} at “{point}”, {}:",
        d.decided_by,
        format::time(d.decided_at)
    );
    Some(view! {
        <div class="banner rollback" role="note">
            <strong>{by}</strong>" "<span class="rationale">{d.rationale.clone()}</span>
        </div>
    })
}

/// Where a release manager announces the run (shown to those who may steer it): a link to its announcement screen (a module
/// fetched when opened, so the run page's first load does not carry the composer).
#[component]
fn Announce() -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let can_steer = can(Permission::SteerRuns);
    view! {
        <p class="announce" hidden=move || !can_steer()><a href=move || format!("/runs/{}/announce", ctx.id())>"Announce this deployment to stakeholders"</a></p>
    }
}
