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
use shipshape_domain::item::ItemStatus;
use shipshape_domain::run::{Blocker, RunStatus, TransitionAction, item_editable};
use shipshape_domain::template::{Gate, ItemKind};
use shipshape_domain::wire::{
    AddMemberRequest, CreateDecisionRequest, CreateSignoffRequest, Event, Run, RunDecisionPoint,
    RunItem, TransitionAvailability, TransitionRequest, UpdateItemRequest,
};

use crate::api::{self, ApiError};
use crate::components::{ErrorNote, ItemStatusBadge, ProgressBar, RunStatusBadge, show_when};
use crate::format;
use crate::live::{self, Coalesce, LinkState};
use crate::session::use_session;

/// The run being shown, shared by the page's parts.
///
/// Requests finish after the page may have been left (its signals disposed), so everything
/// here that runs after an `await` uses the `try_` accessors and does nothing once the page
/// is gone.
#[derive(Debug, Clone, Copy)]
struct RunCtx {
    id: StoredValue<String>,
    run: RwSignal<Option<Run>>,
    /// Re-reads of the run, folded together.
    reads: StoredValue<Coalesce, LocalStorage>,
    /// The highest event sequence number the stream has delivered.
    seen: StoredValue<i64>,
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

fn can(permission: Permission) -> impl Fn() -> bool + Copy {
    let session = use_session();
    move || session.allows(permission)
}

/// The run page (`/runs/:id`).
#[component]
pub fn RunPage(id: String) -> impl IntoView {
    let ctx = RunCtx {
        id: StoredValue::new(id.clone()),
        run: RwSignal::new(None),
        reads: StoredValue::new_local(Coalesce::default()),
        seen: StoredValue::new(0),
    };
    provide_context(ctx);
    let events = RwSignal::new(Vec::<Event>::new());
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
fn RunBody(events: RwSignal<Vec<Event>>, link: RwSignal<Option<LinkState>>) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let summary = Memo::new(move |_| ctx.run.with(|r| r.as_ref().map(|r| r.summary.clone())));
    let field = move |f: fn(&shipshape_domain::wire::RunSummary) -> String| {
        move || summary.with(|s| s.as_ref().map(f).unwrap_or_default())
    };
    let status = Signal::derive(move || {
        summary.with(|s| s.as_ref().map_or(RunStatus::Planned, |s| s.status))
    });
    let part_count = move || ctx.run.with(|r| r.as_ref().map_or(0, |r| r.parts.len()));
    view! {
        <div class="run-head" data-version=move || summary.with(|s| s.as_ref().map_or(0, |s| s.version))>
            <h1>{field(|s| format!("{} {} → {}", s.product, s.release_version, s.environment))}</h1>
            <p class="run-status">
                <RunStatusBadge status=status/>
                {move || summary.with(|s| s.as_ref().and_then(|s| s.closed_at)).map(|at| view! {
                    <span class="badge closed">{format!("🔒 Closed {}", format::time(at))}</span>
                })}
                {move || summary.with(|s| s.as_ref().is_some_and(|s| s.overridden)).then(|| view! {
                    <span class="badge warn">"⚠ Break-glass override in effect: review it before closing"</span>
                })}
                <span class="link-state" role="status" data-link=move || match link.get() {
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
            <div class="parts-progress">
                <ProgressBar label="Overall" progress=Signal::derive(move || summary.with(|s| s.as_ref().map(|s| s.progress).unwrap_or_default()))/>
                {move || (0..part_count()).map(|i| {
                    let title = ctx.run.with_untracked(|r| r.as_ref().map(|r| r.parts[i].title.clone()).unwrap_or_default());
                    let progress = Signal::derive(move || ctx.run.with(|r| r.as_ref().and_then(|r| r.parts.get(i)).map(|p| p.progress).unwrap_or_default()));
                    view! { <ProgressBar label=title progress=progress/> }
                }).collect_view()}
            </div>
        </div>
        <div class="run-grid">
            <div class="run-main">
                <Transitions/>
                <Decisions/>
                <Checklist/>
            </div>
            <aside class="run-side">
                <Team/>
                <Timeline events=events/>
            </aside>
        </div>
    }
}

// --- Transitions --------------------------------------------------------------------------

fn blocker_list(blockers: Vec<Blocker>) -> impl IntoView {
    view! {
        <ul class="blockers">
            {blockers.into_iter().map(|b| {
                let href = match &b {
                    Blocker::Item { reference, .. } => format!("#item-{reference}"),
                    Blocker::Decision { point_key, .. } => format!("#decide-{point_key}"),
                };
                view! { <li><a href=href>{format::blocker(&b)}</a></li> }
            }).collect_view()}
        </ul>
    }
}

/// Whether break-glass can force this transition: gates block it and it may be forced.
fn forceable(t: &TransitionAvailability) -> bool {
    !t.allowed && !t.blockers.is_empty() && t.action.can_be_forced()
}

#[component]
fn Transitions() -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let can_steer = can(Permission::SteerRuns);
    let state = Memo::new(move |_| {
        ctx.run.with(|r| {
            r.as_ref()
                .map(|r| (r.summary.status, r.transitions.clone()))
                .unwrap_or((RunStatus::Planned, Vec::new()))
        })
    });
    let reason = RwSignal::new(String::new());
    let force_reason = RwSignal::new(String::new());
    let refused = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    // A refusal speaks of the run as it was: once the transitions change, it is stale.
    Effect::new(move |_| {
        state.track();
        refused.set(None);
    });

    let go = move |action: TransitionAction, force: bool| {
        if busy.get_untracked() {
            return;
        }
        let text = if force { force_reason } else { reason }.get_untracked();
        let request = TransitionRequest {
            action,
            reason: (!text.trim().is_empty()).then(|| text.trim().to_owned()),
            force,
        };
        let version = ctx
            .run
            .with_untracked(|r| r.as_ref().map_or(0, |r| r.summary.version));
        busy.set(true);
        refused.set(None);
        leptos::task::spawn_local(async move {
            match api::transition(&ctx.id(), &request, version).await {
                Ok(run) => {
                    ctx.accept(run);
                    reason.set(String::new());
                    force_reason.set(String::new());
                }
                Err(e) => {
                    refused.set(Some(e));
                    ctx.reload();
                }
            }
            busy.set(false);
        });
    };

    view! {
        <section class="panel" aria-labelledby="next-h" id="next-step">
            <h2 id="next-h">"Next step"</h2>
            {move || {
                let (status, transitions) = state.get();
                if transitions.is_empty() {
                    return view! { <p class="muted">"Nothing more to do: the run is closed."</p> }.into_any();
                }
                transitions.into_iter().map(|t| {
                    let action = t.action;
                    let why_id = format!("why-{}", action.as_str());
                    let label = format::action(action, status);
                    let allowed = t.allowed;
                    view! {
                        <div class="transition" data-action=action.as_str()>
                            <button type="button" class="primary" class:blocked=!allowed
                                aria-disabled=(!allowed).to_string()
                                aria-describedby=(!allowed).then(|| why_id.clone())
                                disabled=move || busy.get()
                                on:click=move |_| go(action, false)>
                                {label}
                            </button>
                            {(!allowed).then(|| view! {
                                <div class="why" id=why_id.clone()>
                                    <p>{format!("{label} is not possible yet: {}", t.reason.clone().unwrap_or_default())}</p>
                                    {(!t.blockers.is_empty()).then(|| blocker_list(t.blockers.clone()))}
                                </div>
                            })}
                        </div>
                    }
                }).collect_view().into_any()
            }}
            <label class="inline">"Reason for the log (optional)"
                <input name="transition_reason" bind:value=reason/>
            </label>
            {move || refused.get().map(|e| {
                let blockers = e.problem.as_ref().and_then(|p| p.blockers.clone()).unwrap_or_default();
                view! {
                    <div class="error refused" role="alert">
                        <p>{format!("Refused: {}", e.message())}</p>
                        {(!blockers.is_empty()).then(|| blocker_list(blockers))}
                    </div>
                }
            })}
            {show_when(move || can_steer() && state.with(|(_, t)| t.iter().any(forceable)), move || view! {
                <details class="break-glass">
                    <summary>"Break-glass override"</summary>
                    <p>"Forces a transition past its unmet gates. The override is logged with every blocker it skips, flags the run, and adds a required close item to review it."</p>
                    <label>"Reason for the override (required)"
                        <textarea name="force_reason" bind:value=force_reason></textarea>
                    </label>
                    {move || {
                        let (status, transitions) = state.get();
                        transitions.into_iter()
                            .filter(forceable)
                            .map(|t| {
                                let action = t.action;
                                view! {
                                    <button type="button" class="danger" data-force=action.as_str()
                                        disabled=move || busy.get() || force_reason.with(|r| r.trim().is_empty())
                                        on:click=move |_| go(action, true)>
                                        {format!("Force: {}", format::action(action, status))}
                                    </button>
                                }
                            }).collect_view()
                    }}
                </details>
            })}
        </section>
    }
}

// --- Decisions ----------------------------------------------------------------------------

#[component]
fn Decisions() -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    // The decision points are the template's: fixed for the run. Each one follows its own
    // state; the list is built again only if the points themselves differ.
    let keys = Memo::new(move |_| {
        ctx.run.with(|r| {
            r.as_ref()
                .map(|r| {
                    r.decision_points
                        .iter()
                        .map(|p| p.key.clone())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    let decisions = Memo::new(move |_| {
        ctx.run
            .with(|r| r.as_ref().map(|r| r.decisions.clone()).unwrap_or_default())
    });
    view! {
        <section class="panel" aria-labelledby="decisions-h">
            <h2 id="decisions-h">"Decisions"</h2>
            {move || {
                keys.track();
                ctx.run
                    .with_untracked(|r| r.as_ref().map(|r| r.decision_points.clone()).unwrap_or_default())
                    .into_iter()
                    .map(|point| view! { <DecisionPoint point=point/> })
                    .collect_view()
            }}
            <h3>"Decision log"</h3>
            {move || {
                let list = decisions.get();
                if list.is_empty() {
                    return view! { <p class="muted">"No decision recorded yet."</p> }.into_any();
                }
                view! {
                    <ol class="decisions">
                        {list.into_iter().rev().map(|d| view! {
                            <li class:superseded=d.superseded data-outcome=d.outcome.as_str()>
                                <strong>{format!("{} — {}", format::outcome(d.outcome), d.point_key.replace('_', " "))}</strong>
                                {d.superseded.then_some(" (superseded)")}
                                <span class="muted">{format!(" by {} at {}", d.decided_by, format::time(d.decided_at))}</span>
                                <p>{d.rationale.clone()}</p>
                                <ul class="criteria">
                                    {d.criteria.iter().map(|c| view! {
                                        <li>{format!("{} — {}{}", format::criterion_result(c.result), c.criterion,
                                            c.observed.as_ref().map(|o| format!(" (observed: {o})")).unwrap_or_default())}</li>
                                    }).collect_view()}
                                </ul>
                            </li>
                        }).collect_view()}
                    </ol>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn DecisionPoint(point: RunDecisionPoint) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let can_decide = can(Permission::Decide);
    let key = point.key.clone();
    let stage = point.stage;
    let latest = {
        let key = key.clone();
        Memo::new(move |_| {
            ctx.run.with(|r| {
                r.as_ref().and_then(|r| {
                    r.decision_points
                        .iter()
                        .find(|p| p.key == key)
                        .and_then(|p| p.latest_outcome)
                })
            })
        })
    };
    let open = Memo::new(move |_| {
        ctx.run.with(|r| {
            r.as_ref().is_some_and(|r| {
                r.summary.closed_at.is_none() && r.summary.status.decision_stage() == Some(stage)
            })
        })
    });
    let results: Vec<(String, RwSignal<String>, RwSignal<String>)> = point
        .criteria
        .iter()
        .map(|c| {
            (
                c.clone(),
                RwSignal::new("unknown".to_owned()),
                RwSignal::new(String::new()),
            )
        })
        .collect();
    let outcome = RwSignal::new(None::<Outcome>);
    let rationale = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let results = StoredValue::new(results);

    let submit = {
        let key = key.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let Some(chosen) = outcome.get_untracked() else {
                error.set(Some(ApiError::invalid("Choose an outcome.")));
                return;
            };
            let criteria = results.with_value(|rs| {
                rs.iter()
                    .map(|(criterion, result, observed)| CriterionInput {
                        criterion: criterion.clone(),
                        result: match result.get_untracked().as_str() {
                            "met" => CriterionResult::Met,
                            "not_met" => CriterionResult::NotMet,
                            _ => CriterionResult::Unknown,
                        },
                        observed: Some(observed.get_untracked())
                            .map(|o| o.trim().to_owned())
                            .filter(|o| !o.is_empty()),
                    })
                    .collect()
            });
            let request = CreateDecisionRequest {
                point_key: key.clone(),
                outcome: chosen,
                rationale: rationale.get_untracked(),
                criteria,
            };
            busy.set(true);
            error.set(None);
            leptos::task::spawn_local(async move {
                match api::decide(&ctx.id(), &request).await {
                    Ok(_) => {
                        rationale.set(String::new());
                        outcome.set(None);
                        ctx.reload();
                    }
                    Err(e) => error.set(Some(e)),
                }
                busy.set(false);
            });
        }
    };

    let title = point.title.clone();
    let heading_id = format!("decide-{key}-h");
    view! {
        <div class="decision-point" id=format!("decide-{key}") data-point=key.clone()>
            <h3 id=heading_id.clone()>{title.clone()}
                <span class="muted">{format!(" — decided while {}", stage.as_str())}</span>
            </h3>
            <p>"Latest outcome: "<strong class="outcome">{move || latest.get().map_or("none yet", format::outcome)}</strong></p>
            {show_when(move || open.get() && can_decide(), move || view! {
                <form class="stack decision-form" aria-labelledby=heading_id.clone() on:submit=submit.clone()>
                    <fieldset>
                        <legend>"Criteria"</legend>
                        {results.with_value(|rs| rs.iter().map(|(criterion, result, observed)| {
                            let (result, observed) = (*result, *observed);
                            view! {
                                <div class="criterion">
                                    <span class="criterion-text">{criterion.clone()}</span>
                                    <select aria-label=format!("Result: {criterion}") name="criterion_result"
                                        prop:value=move || result.get()
                                        on:change=move |ev| result.set(event_target_value(&ev))>
                                        <option value="unknown">"? Unknown"</option>
                                        <option value="met">"✓ Met"</option>
                                        <option value="not_met">"✗ Not met"</option>
                                    </select>
                                    <input aria-label=format!("Observed: {criterion}") name="criterion_observed" placeholder="observed value" bind:value=observed/>
                                </div>
                            }
                        }).collect_view())}
                    </fieldset>
                    <fieldset class="outcomes">
                        <legend>"Outcome"</legend>
                        {Outcome::allowed_at(stage).iter().map(|o| {
                            let o = *o;
                            view! {
                                <label class="radio">
                                    <input type="radio" name=format!("outcome-{}", point.key) value=o.as_str()
                                        prop:checked=move || outcome.get() == Some(o)
                                        on:change=move |_| outcome.set(Some(o))/>
                                    {format::outcome(o)}
                                </label>
                            }
                        }).collect_view()}
                    </fieldset>
                    <label>"Rationale (required)"
                        <textarea name="rationale" required bind:value=rationale></textarea>
                    </label>
                    <ErrorNote error=error/>
                    <button type="submit" class="primary" disabled=move || busy.get()>"Record decision"</button>
                </form>
            })}
        </div>
    }
}

// --- Checklist ----------------------------------------------------------------------------

#[component]
fn Checklist() -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    // Keyed: a break-glass override adds a part (and then items to it) while people work;
    // the rows already shown stay as they are, each following its own item, so an open
    // editor survives every change streamed in.
    let parts = Memo::new(move |_| {
        ctx.run.with(|r| {
            r.as_ref()
                .map(|r| {
                    r.parts
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (i, p.title.clone(), p.sections.len()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    view! {
        <section class="panel checklist" aria-labelledby="checklist-h">
            <h2 id="checklist-h">"Checklist"</h2>
            <For each=move || parts.get() key=|p| p.clone() let:part>
                <div class="part">
                    <h3>{part.1.clone()}</h3>
                    {(0..part.2).map(|s| view! { <SectionView part=part.0 section=s/> }).collect_view()}
                </div>
            </For>
        </section>
    }
}

#[component]
fn SectionView(part: usize, section: usize) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let title = ctx.run.with_untracked(|r| {
        r.as_ref()
            .and_then(|r| r.parts.get(part)?.sections.get(section))
            .map(|s| s.title.clone())
            .unwrap_or_default()
    });
    let ids = Memo::new(move |_| {
        ctx.run.with(|r| {
            r.as_ref()
                .and_then(|r| r.parts.get(part)?.sections.get(section))
                .map(|s| s.items.iter().map(|i| i.id.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    });
    view! {
        <div class="section">
            <h4>{title}</h4>
            <ul class="items">
                <For each=move || ids.get() key=|id| id.clone() let:id>
                    <ItemRow item_id=id/>
                </For>
            </ul>
        </div>
    }
}

/// Which part of an item row a save came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Status,
    Details,
    Skip,
    Reapply,
}

/// An edit that met a newer version: what the user wanted and what is there now.
#[derive(Debug, Clone, PartialEq)]
struct Conflict {
    mine: UpdateItemRequest,
    theirs: RunItem,
}

#[component]
fn ItemRow(item_id: String) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let session = use_session();
    let item = {
        let id = item_id.clone();
        Memo::new(move |_| {
            ctx.run
                .with(|r| r.as_ref().and_then(|r| find_item(r, &id)).cloned())
        })
    };
    let Some(first) = item.get_untracked() else {
        return ().into_any();
    };
    let reference = first.reference.clone();
    let gate = first.gate;
    let kind = first.kind;

    let status =
        Signal::derive(move || item.with(|i| i.as_ref().map_or(ItemStatus::Pending, |i| i.status)));
    let version = move || item.with_untracked(|i| i.as_ref().map_or(0, |i| i.version));
    let editable = Memo::new(move |_| {
        let applicable = item.with(|i| i.as_ref().is_some_and(|i| i.applicable));
        applicable
            && ctx.run.with(|r| {
                r.as_ref().is_some_and(|r| {
                    item_editable(gate, r.summary.status, r.summary.closed_at.is_some())
                })
            })
    });
    let can_work = can(Permission::WorkItems);
    let can_sign = can(Permission::SignOff);
    let can_waive = can(Permission::SteerRuns);
    let me = move || session.user().map(|u| u.username);

    let error = RwSignal::new(None::<ApiError>);
    let conflict = RwSignal::new(None::<Conflict>);
    let busy = RwSignal::new(false);
    // The details editor: the version it was opened on, and the user's values.
    let editing = RwSignal::new(None::<RunItem>);
    let assignee = RwSignal::new(String::new());
    let note = RwSignal::new(String::new());
    let evidence = RwSignal::new(String::new());
    let skipping = RwSignal::new(false);
    let skip_reason = RwSignal::new(String::new());
    // The version the skip was chosen on: the reason takes a while to type.
    let skip_base = RwSignal::new(0_i64);
    let comment = RwSignal::new(String::new());
    let select = NodeRef::<leptos::html::Select>::new();

    let item_id = StoredValue::new(item_id);
    // A save settles only the part of the row it came from: a status change leaves an open
    // editor, a typed skip reason or a pending conflict as they are.
    let save = move |change: UpdateItemRequest, base: i64, from: Source| {
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let id = item_id.try_get_value().unwrap_or_default();
            match api::update_item(&ctx.id(), &id, &change, base).await {
                Ok(updated) => {
                    match from {
                        Source::Status => {}
                        Source::Details => {
                            editing.try_set(None);
                        }
                        Source::Skip => {
                            skipping.try_set(false);
                            skip_reason.try_set(String::new());
                        }
                        Source::Reapply => {
                            conflict.try_set(None);
                            editing.try_set(None);
                            skipping.try_set(false);
                        }
                    }
                    ctx.accept_item(updated);
                    ctx.reload();
                }
                Err(e) if e.is_conflict() => {
                    match api::get_item(&ctx.id(), &id).await {
                        Ok(theirs) => {
                            ctx.accept_item(theirs.clone());
                            conflict.try_set(Some(Conflict {
                                mine: change,
                                theirs,
                            }));
                        }
                        Err(e) => {
                            error.try_set(Some(e));
                        }
                    }
                    ctx.reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
            // Show the status the server holds, whatever the select was set to.
            if let Some(Some(el)) = select.try_get_untracked()
                && let Some(held) = status.try_get_untracked()
            {
                el.set_value(held.as_str());
            }
            busy.try_set(false);
        });
    };

    let on_status = move |ev: leptos::ev::Event| {
        let Some(new) = ItemStatus::parse(&event_target_value(&ev)) else {
            return;
        };
        if new == ItemStatus::Skipped {
            skip_base.set(version());
            skipping.set(true);
            return;
        }
        skipping.set(false);
        save(
            UpdateItemRequest {
                status: Some(new),
                ..UpdateItemRequest::default()
            },
            version(),
            Source::Status,
        );
    };
    let open_editor = move |_| {
        if let Some(current) = item.get_untracked() {
            assignee.set(current.assignee.clone().unwrap_or_default());
            note.set(current.note.clone().unwrap_or_default());
            evidence.set(current.evidence_url.clone().unwrap_or_default());
            editing.set(Some(current));
        }
    };
    let save_details = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(base) = editing.get_untracked() else {
            return;
        };
        let value = |s: RwSignal<String>| {
            let v = s.get_untracked().trim().to_owned();
            (!v.is_empty()).then_some(v)
        };
        let mut change = UpdateItemRequest::default();
        if value(assignee) != base.assignee {
            change.assignee = Some(value(assignee));
        }
        if value(note) != base.note {
            change.note = Some(value(note));
        }
        if value(evidence) != base.evidence_url {
            change.evidence_url = Some(value(evidence));
        }
        if change == UpdateItemRequest::default() {
            editing.set(None);
            return;
        }
        save(change, base.version, Source::Details);
    };
    let confirm_skip = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        save(
            UpdateItemRequest {
                status: Some(ItemStatus::Skipped),
                reason: Some(skip_reason.get_untracked()),
                ..UpdateItemRequest::default()
            },
            skip_base.get_untracked(),
            Source::Skip,
        );
    };
    let claim = move |_| {
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let id = item_id.try_get_value().unwrap_or_default();
            match api::claim(&ctx.id(), &id).await {
                Ok(updated) => {
                    ctx.accept_item(updated);
                    ctx.reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
            busy.set(false);
        });
    };
    let sign = move |verdict: Verdict| {
        busy.set(true);
        error.set(None);
        let request = CreateSignoffRequest {
            verdict,
            comment: Some(comment.get_untracked().trim().to_owned()).filter(|c| !c.is_empty()),
        };
        leptos::task::spawn_local(async move {
            let id = item_id.try_get_value().unwrap_or_default();
            match api::sign_off(&ctx.id(), &id, &request).await {
                Ok(_) => {
                    comment.set(String::new());
                    ctx.reload();
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let reapply = move |_| {
        if let Some(c) = conflict.get_untracked() {
            save(c.mine, c.theirs.version, Source::Reapply);
        }
    };
    let keep_theirs = move |_| {
        conflict.set(None);
        editing.set(None);
        skipping.set(false);
    };

    let r = reference.clone();
    // Buttons repeated on every item say which item they act on.
    let claim_label = StoredValue::new(format!("Assign {reference} to me"));
    let edit_label = StoredValue::new(format!("Edit details of {reference}"));
    let approve_label = StoredValue::new(format!("Approve {reference}"));
    let reject_label = StoredValue::new(format!("Reject {reference}"));
    view! {
        <li class="item" id=format!("item-{reference}") data-ref=reference.clone()
            data-status=move || status.get().as_str()
            class:na=move || item.with(|i| i.as_ref().is_some_and(|i| !i.applicable))>
            <div class="item-head">
                <span class="ref">{reference.clone()}</span>
                <span class="title">{first.title.clone()}</span>
                <ItemStatusBadge status=status/>
                <span class="tags">
                    <span class="tag" title="The transition this item must be finished before">{format!("before {}", gate_word(gate))}</span>
                    {(!first.required).then(|| view! { <span class="tag">"optional"</span> })}
                    {(kind == ItemKind::Approval).then(|| view! { <span class="tag">"approval"</span> })}
                    {first.role.map(|r| view! { <span class="tag">{format!("for {}", format::role(r))}</span> })}
                    {move || item.with(|i| i.as_ref().is_some_and(|i| !i.applicable)).then(|| view! { <span class="tag">"only after a rollback"</span> })}
                </span>
            </div>
            {first.guidance.clone().map(|g| view! { <p class="guidance">{g}</p> })}
            <p class="item-meta">
                {move || item.get().map(|i| view! {
                    <span>"Assignee: "<strong class="assignee">{i.assignee.clone().unwrap_or_else(|| "nobody".into())}</strong></span>
                    {i.note.clone().map(|n| view! { <span>" · Note: "<span class="note">{n}</span></span> })}
                    {i.evidence_url.clone().map(|u| view! { <span>" · "<a class="evidence" href=u.clone() target="_blank" rel="noopener noreferrer">"Evidence"</a></span> })}
                    {i.skip_reason.clone().map(|s| view! { <span>" · Skipped because: "{s}</span> })}
                    {i.updated_by.clone().map(|by| view! { <span class="muted">{format!(" · changed by {by}{}", i.updated_at.map(|t| format!(" at {}", format::time(t))).unwrap_or_default())}</span> })}
                })}
            </p>
            {show_when(move || editable.get() && can_work(), move || view! {
                <div class="item-controls">
                    <label class="inline">"Status"
                        <select node_ref=select name="status" aria-label=format!("Status of {r}")
                            prop:value=move || status.get().as_str()
                            disabled=move || busy.get()
                            on:change=on_status>
                            // `selected` on the options: the select's value is set before
                            // its options exist.
                            {ItemStatus::ALL.iter().map(|s| {
                                let s = *s;
                                view! {
                                    <option value=s.as_str() selected=move || status.get() == s>{format::item_status(s)}</option>
                                }
                            }).collect_view()}
                        </select>
                    </label>
                    {show_when(move || item.with(|i| i.as_ref().map(|i| i.assignee.clone())) != Some(me()), move || view! {
                        <button type="button" class="claim" aria-label=move || claim_label.get_value() disabled=move || busy.get() on:click=claim>"Assign to me"</button>
                    })}
                    <button type="button" class="edit" aria-label=move || edit_label.get_value() aria-expanded=move || editing.with(Option::is_some).to_string()
                        on:click=open_editor>"Edit details"</button>
                </div>
            })}
            {show_when(move || skipping.get(), move || view! {
                <form class="inline-form" on:submit=confirm_skip aria-label="Skip the item">
                    <label>{if first.required { "Why is this required item waived? (release managers only)" } else { "Why is it skipped?" }}
                        <input name="skip_reason" required bind:value=skip_reason/>
                    </label>
                    <button type="submit" disabled=move || busy.get() || (first.required && !can_waive())>"Skip"</button>
                    <button type="button" on:click=move |_| {
                        skipping.set(false);
                        if let Some(el) = select.get_untracked() { el.set_value(status.get_untracked().as_str()); }
                    }>"Cancel"</button>
                </form>
            })}
            {show_when(move || editing.with(Option::is_some), move || view! {
                <form class="editor stack" on:submit=save_details aria-label="Item details">
                    <label>"Assignee (user name)"<input name="assignee" bind:value=assignee/></label>
                    <label>"Note"<textarea name="note" bind:value=note></textarea></label>
                    <label>"Evidence link"<input name="evidence_url" type="url" placeholder="https://…" bind:value=evidence/></label>
                    <div class="row">
                        <button type="submit" class="primary" disabled=move || busy.get()>"Save"</button>
                        <button type="button" on:click=move |_| editing.set(None)>"Cancel"</button>
                    </div>
                </form>
            })}
            {(kind == ItemKind::Approval).then(|| view! {
                <div class="approval">
                    {move || item.get().and_then(|i| i.approval).map(|a| view! {
                        <p>
                            <strong class="approval-state">{format::approval_state(&a.state)}</strong>
                            {format!(" — needs one sign-off each from: {}", a.approvers.iter().map(|r| format::role(*r)).collect::<Vec<_>>().join(", "))}
                            {(!a.missing.is_empty()).then(|| format!("; still missing: {}", a.missing.iter().map(|r| format::role(*r)).collect::<Vec<_>>().join(", ")))}
                        </p>
                        <ul class="signoffs">
                            {a.signoffs.iter().map(|s| view! {
                                <li>{format!("{} {} ({}) at {}{}",
                                    if s.verdict == Verdict::Approve { "✓ approved by" } else { "✗ rejected by" },
                                    s.username, format::role(s.role), format::time(s.signed_at),
                                    s.comment.as_ref().map(|c| format!(": “{c}”")).unwrap_or_default())}</li>
                            }).collect_view()}
                        </ul>
                    })}
                    {show_when(move || editable.get() && can_sign(), move || view! {
                        <div class="row signoff">
                            <input name="signoff_comment" aria-label="Sign-off comment (required to reject)" placeholder="comment" bind:value=comment/>
                            <button type="button" class="approve" aria-label=move || approve_label.get_value() disabled=move || busy.get() on:click=move |_| sign(Verdict::Approve)>"Approve"</button>
                            <button type="button" class="reject" aria-label=move || reject_label.get_value() disabled=move || busy.get() on:click=move |_| sign(Verdict::Reject)>"Reject"</button>
                        </div>
                    })}
                </div>
            })}
            {move || conflict.get().map(|c| {
                let t = &c.theirs;
                view! {
                    <div class="conflict" role="alert">
                        <p><strong>"Changed by someone else. "</strong>
                            {format!("{} changed this item{}. It now reads: {}; assignee {}; note {}; evidence {}.",
                                t.updated_by.clone().unwrap_or_else(|| "Someone".into()),
                                t.updated_at.map(|at| format!(" at {}", format::time(at))).unwrap_or_default(),
                                format::item_status(t.status),
                                t.assignee.clone().unwrap_or_else(|| "nobody".into()),
                                t.note.as_ref().map_or("empty".into(), |n| format!("“{n}”")),
                                t.evidence_url.as_ref().map_or("none".into(), |u| format!("“{u}”")))}
                        </p>
                        <p>{format!("Your change was not saved: {}.", format::item_change(&c.mine))}</p>
                        <div class="row">
                            <button type="button" class="reapply" on:click=reapply disabled=move || busy.get()>"Re-apply my change"</button>
                            <button type="button" class="keep" on:click=keep_theirs>"Keep theirs"</button>
                        </div>
                    </div>
                }
            })}
            <ErrorNote error=error/>
        </li>
    }
    .into_any()
}

fn gate_word(gate: Gate) -> &'static str {
    match gate {
        Gate::Deploy => "deploying",
        Gate::Verify => "verifying",
        Gate::Complete => "completing",
        Gate::Close => "closing",
    }
}

// --- Team and timeline --------------------------------------------------------------------

#[component]
fn Team() -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let can_steer = can(Permission::SteerRuns);
    let members = Memo::new(move |_| {
        ctx.run
            .with(|r| r.as_ref().map(|r| r.members.clone()).unwrap_or_default())
    });
    let username = RwSignal::new(String::new());
    let run_role = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ApiError>);
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = AddMemberRequest {
            username: username.get_untracked().trim().to_owned(),
            run_role: run_role.get_untracked().trim().to_owned(),
        };
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::add_member(&ctx.id(), &request).await {
                Ok(_) => {
                    username.set(String::new());
                    run_role.set(String::new());
                    ctx.reload();
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <section class="panel" aria-labelledby="team-h">
            <h2 id="team-h">"Team"</h2>
            {move || {
                let list = members.get();
                if list.is_empty() {
                    return view! { <p class="muted">"Nobody has joined yet."</p> }.into_any();
                }
                view! {
                    <ul class="plain team">
                        {list.into_iter().map(|m| view! {
                            <li>{format!("{} — {} ({})", m.username, m.run_role, format::role(m.role))}</li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            {show_when(can_steer, move || view! {
                <form class="stack" on:submit=add aria-label="Add a team member">
                    <label>"User name"<input name="member_username" required bind:value=username/></label>
                    <label>"Responsibility"<input name="member_role" required placeholder="deployment lead" bind:value=run_role/></label>
                    <ErrorNote error=error/>
                    <button type="submit">"Add to team"</button>
                </form>
            })}
        </section>
    }
}

#[component]
fn Timeline(events: RwSignal<Vec<Event>>) -> impl IntoView {
    // The log as the page opened with it is not news; what arrives after is, and screen
    // readers hear it from the status line.
    let opened_at = StoredValue::new(None::<i64>);
    let news = move || {
        events.with(|list| {
            let last = list.last()?;
            match opened_at.get_value() {
                None => {
                    opened_at.set_value(Some(last.seq));
                    None
                }
                Some(seq) if last.seq > seq => Some(format::event(last)),
                Some(_) => None,
            }
        })
    };
    view! {
        <section class="panel" aria-labelledby="timeline-h">
            <h2 id="timeline-h">"Timeline"</h2>
            <p class="visually-hidden" role="status">{news}</p>
            <ol class="timeline">
                <For each=move || events.with(|list| list.iter().rev().cloned().collect::<Vec<_>>()) key=|e| e.seq let:e>
                    <li data-seq=e.seq data-type=e.event_type().as_str()>
                        <time datetime=e.at.to_rfc3339()>{format::time(e.at)}</time>
                        " "{format::event(&e)}
                    </li>
                </For>
            </ol>
        </section>
    }
}
