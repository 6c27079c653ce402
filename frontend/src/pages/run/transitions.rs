//! The transitions panel: what the run may do next, what blocks it, and the break-glass
//! override.

use super::*;

pub(super) fn blocker_list(blockers: Vec<Blocker>) -> impl IntoView {
    view! {
        <ul class="blockers">
            {blockers.into_iter().map(|b| {
                let href = match &b {
                    Blocker::Item { reference, .. } => format!("#item-{reference}"),
                    Blocker::Decision { point_key, .. } => format!("#decide-{point_key}"),
                    Blocker::Issue { .. } => "#issues".to_owned(),
                    Blocker::Lock { .. } | Blocker::Freeze { .. } | Blocker::Promotion { .. } => {
                        "#environment".to_owned()
                    }
                };
                view! { <li><a href=href>{format::blocker(&b)}</a></li> }
            }).collect_view()}
        </ul>
    }
}

/// What the confirmation of aborting needs from the transitions panel.
#[derive(Debug)]
pub struct AbortPanel {
    confirming: RwSignal<bool>,
    busy: RwSignal<bool>,
    go: Callback<(TransitionAction, bool)>,
}

/// "Abort the run?", saying what it does (see [`crate::pages::abort_panel`]).
pub fn abort_panel(p: AbortPanel) -> AnyView {
    let AbortPanel {
        confirming,
        busy,
        go,
    } = p;
    view! {
        <div class="confirm" role="alertdialog" aria-label="Abort the run?">
            <p>"Abort the run? It ends as aborted: nothing more is deployed, its checklist stops, and it cannot be started again (a new run can)."</p>
            <div class="row">
                <button type="button" class="danger confirm-abort" disabled=move || busy.get()
                    on:click=move |_| { confirming.set(false); go.run((TransitionAction::Abort, false)) }>"Abort the run"</button>
                <button type="button" class="keep" on:click=move |_| confirming.set(false)>"Keep the run"</button>
            </div>
        </div>
    }
    .into_any()
}

/// Whether break-glass can force this transition: gates block it and it may be forced.
pub(super) fn forceable(t: &TransitionAvailability) -> bool {
    !t.allowed && !t.blockers.is_empty() && t.action.can_be_forced()
}

/// What the break-glass override's form needs from the transitions panel.
#[derive(Debug)]
pub struct OverridePanel {
    state: Memo<(RunStatus, Vec<TransitionAvailability>)>,
    force_reason: RwSignal<String>,
    busy: RwSignal<bool>,
    go: Callback<(TransitionAction, bool)>,
}

/// The break-glass override's form: a required reason, and one button per transition it can
/// force (see [`crate::pages::override_panel`]).
pub fn override_panel(p: OverridePanel) -> AnyView {
    let OverridePanel {
        state,
        force_reason,
        busy,
        go,
    } = p;
    view! {
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
                            on:click=move |_| go.run((action, true))>
                            {format!("Force: {}", format::action(action, status))}
                        </button>
                    }
                }).collect_view()
        }}
    }
    .into_any()
}

#[component]
pub(super) fn Transitions() -> impl IntoView {
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
    let confirming = RwSignal::new(false);
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
                // Only people who may steer the run see its buttons; everyone sees what
                // blocks the next step.
                let steer = can_steer();
                transitions.into_iter().map(|t| {
                    let action = t.action;
                    let why_id = format!("why-{}", action.as_str());
                    let label = format::action(action, status);
                    let allowed = t.allowed;
                    // Aborting cannot be undone: it asks first, saying what it does.
                    let destructive = action == TransitionAction::Abort;
                    view! {
                        <div class="transition" data-action=action.as_str()>
                            {steer.then(|| view! {
                            <button type="button" class=if destructive { "danger" } else { "primary" } class:blocked=!allowed
                                aria-disabled=(!allowed).to_string()
                                aria-describedby=(!allowed).then(|| why_id.clone())
                                disabled=move || busy.get()
                                on:click=move |_| if destructive && allowed { confirming.set(true) } else { go(action, false) }>
                                {label}
                            </button>
                            })}
                            // Its confirmation comes with the panels, when first asked for.
                            {move || (destructive && confirming.get()).then(|| crate::pages::lazy_panel(crate::pages::abort_panel(AbortPanel {
                                confirming, busy, go: Callback::new(move |(action, force): (TransitionAction, bool)| go(action, force)),
                            })))}
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
            <label class="inline" hidden=move || !(can_steer() && state.with(|(_, t)| !t.is_empty()))>"Reason for the log (optional)"
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
            {
                // Its form is fetched with the forms when the override is opened.
                let opened = RwSignal::new(false);
                let go = Callback::new(move |(action, force): (TransitionAction, bool)| go(action, force));
                view! {
                    <details class="break-glass" hidden=move || !(can_steer() && state.with(|(_, t)| t.iter().any(forceable)))
                        on:toggle=move |ev| {
                        use wasm_bindgen::JsCast;
                        let open = ev.target()
                            .and_then(|t| t.dyn_into::<web_sys::HtmlDetailsElement>().ok())
                            .is_some_and(|d| d.open());
                        opened.set(open);
                    }>
                        <summary>"Break-glass override"</summary>
                        {move || opened.get().then(|| crate::pages::lazy_panel(crate::pages::override_panel(OverridePanel {
                            state, force_reason, busy, go,
                        })))}
                    </details>
                }
            }
        </section>
    }
}
