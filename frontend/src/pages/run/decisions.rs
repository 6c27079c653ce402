//! The decision panel: each decision point with its latest outcome, its deadline counting
//! down, and the form to record a decision (a panel of the forms module, fetched when opened).

use super::*;

#[component]
pub(super) fn Decisions() -> impl IntoView {
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
    // The log with every rationale is a panel, fetched when opened.
    let log_open = RwSignal::new(false);
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
            <button type="button" class="decision-log-toggle" aria-expanded=move || log_open.get().to_string()
                on:click=move |_| log_open.update(|o| *o = !*o)>
                {move || format!("Decision log ({})", decisions.with(Vec::len))}
            </button>
            {move || log_open.get().then(|| crate::pages::lazy_panel(crate::pages::decision_log(decisions)))}
        </section>
    }
}

/// Every decision, newest first, with its criteria and rationale (see
/// [`crate::pages::decision_log`]).
pub fn decision_log(decisions: Memo<Vec<shipshape_domain::wire::Decision>>) -> AnyView {
    let ctx = expect_context::<RunCtx>();
    (move || {
        let list = decisions.get();
        // Each point by its title, as the run shows it.
        let title = |key: &str| {
            ctx.run.with_untracked(|r| {
                r.as_ref()
                    .and_then(|r| r.decision_points.iter().find(|p| p.key == key))
                    .map_or_else(|| key.replace('_', " "), |p| p.title.clone())
            })
        };
        if list.is_empty() {
            return view! { <p class="muted">"No decision recorded yet."</p> }.into_any();
        }
        view! {
            <ol class="decisions">
                {list.into_iter().rev().map(|d| view! {
                    <li class:superseded=d.superseded data-outcome=d.outcome.as_str()>
                        <strong>{format!("{} at “{}”", format::outcome(d.outcome), title(&d.point_key))}</strong>
                        {d.superseded.then_some(" (superseded)")}
                        {d.unmet_confirmed.then_some(" — confirmed with criteria not met or unknown")}
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
        }
        .into_any()
    })
    .into_any()
}

#[component]
pub(super) fn DecisionPoint(point: RunDecisionPoint) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let can_decide = can(Permission::Decide);
    let key = point.key.clone();
    let stage = point.stage;
    // The point as the run shows it now: its outcome and deadline follow the run.
    let current = {
        let key = key.clone();
        Memo::new(move |_| {
            ctx.run.with(|r| {
                r.as_ref()
                    .and_then(|r| r.decision_points.iter().find(|p| p.key == key).cloned())
            })
        })
    };
    let latest = move || current.with(|p| p.as_ref().and_then(|p| p.latest_outcome));
    let deadline =
        move || current.with(|p| p.as_ref().and_then(|p| p.deadline.zip(p.default_outcome)));
    let open = Memo::new(move |_| {
        ctx.run.with(|r| {
            r.as_ref().is_some_and(|r| {
                r.summary.closed_at.is_none() && r.summary.status.decision_stage() == Some(stage)
            })
        })
    });
    // The form is a panel of its own, fetched when someone opens it.
    let deciding = RwSignal::new(false);
    let title = point.title.clone();
    let decide_label = format!("Record a decision at {title}");
    let (anchor, data_point) = (format!("decide-{key}"), key.clone());
    view! {
        <div class="decision-point" id=anchor data-point=data_point>
            <h3>{title.clone()}
                <span class="muted">{format!(" — decided while {}", stage.as_str())}</span>
            </h3>
            <p>"Latest outcome: "<strong class="outcome">{move || latest().map_or("none yet", format::outcome)}</strong></p>
            {move || deadline().map(|(at, default)| {
                let left = (at - ctx.now.get()).num_seconds();
                view! {
                    <p class="deadline" role="status">{if left > 0 {
                        format!("⏱ Decide by {} (in {}); then {} is recorded", format::time(at),
                            shipshape_domain::probe::format_age(left), format::outcome(default))
                    } else {
                        format!("⏱ The deadline {} has passed: {} is being recorded", format::time(at), format::outcome(default))
                    }}</p>
                }
            })}
            <button type="button" class="decide" aria-label=decide_label aria-expanded=move || deciding.get().to_string()
                hidden=move || !(open.get() && can_decide())
                on:click=move |_| deciding.update(|d| *d = !*d)>"Record a decision"</button>
            {move || (deciding.get() && open.get()).then(|| crate::pages::lazy_panel(crate::pages::decision_form(key.clone(), deciding)))}
        </div>
    }
}

/// The form that records a decision at a point: each criterion's result and observed value
/// (those a probe measures filled in from its latest result), the outcome and the rationale.
/// It closes (`deciding`) once the decision is recorded.
#[component]
pub fn DecisionForm(key: String, deciding: RwSignal<bool>) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let Some(point) = ctx.run.with_untracked(|r| {
        r.as_ref()
            .and_then(|r| r.decision_points.iter().find(|p| p.key == key).cloned())
    }) else {
        return ().into_any();
    };
    let stage = point.stage;
    let current = {
        let key = key.clone();
        Memo::new(move |_| {
            ctx.run.with(|r| {
                r.as_ref()
                    .and_then(|r| r.decision_points.iter().find(|p| p.key == key).cloned())
            })
        })
    };
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
    // A criterion a probe measures reads its latest result, without typing; a new result
    // replaces what the form shows.
    for (criterion, result, observed) in &results {
        let (criterion, result, observed) = (criterion.clone(), *result, *observed);
        let measured = Memo::new(move |_| {
            current.with(|p| {
                p.as_ref().and_then(|p| {
                    p.measurements
                        .iter()
                        .find(|m| m.criterion == criterion)
                        .map(|m| (m.result, m.observed.clone()))
                })
            })
        });
        Effect::new(move |_| {
            if let Some((r, o)) = measured.get() {
                result.set(
                    match r {
                        CriterionResult::Met => "met",
                        CriterionResult::NotMet => "not_met",
                        CriterionResult::Unknown => "unknown",
                    }
                    .to_owned(),
                );
                observed.set(o.unwrap_or_default());
            }
        });
    }
    let outcome = RwSignal::new(None::<Outcome>);
    let rationale = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let results = StoredValue::new(results);

    // A go while a criterion is not met or unknown waits here for its confirmation.
    let confirming = RwSignal::new(None::<String>);
    let point_key = StoredValue::new(key.clone());
    let send = move |unmet_confirmed: bool| {
        let Some(chosen) = outcome.get_untracked() else {
            error.set(Some(ApiError::invalid("Choose an outcome.")));
            return;
        };
        let criteria: Vec<CriterionInput> = results.with_value(|rs| {
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
        let unmet = shipshape_domain::decision::go_without(
            chosen,
            criteria.iter().map(|c| (c.criterion.as_str(), c.result)),
        );
        if !unmet.is_empty() && !unmet_confirmed {
            confirming.set(Some(format!(
                "Not met or unknown: {}. Record Go anyway? The log will say you confirmed it.",
                unmet.join("; ")
            )));
            return;
        }
        confirming.set(None);
        let request = CreateDecisionRequest {
            point_key: point_key.get_value(),
            outcome: chosen,
            rationale: rationale.get_untracked(),
            criteria,
            unmet_confirmed,
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::decide(&ctx.id(), &request).await {
                Ok(_) => {
                    deciding.try_set(false);
                    ctx.reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
            busy.try_set(false);
        });
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        send(false);
    };
    // What measures a criterion follows the run as it arrives: a measurement recorded
    // after the form opened is named too.
    let measured_by = move |criterion: String| {
        move || {
            current.with(|p| {
                p.as_ref()?
                    .measurements
                    .iter()
                    .find(|m| m.criterion == criterion)
                    .map(|m| view! { <span class="tag measured">{format!("measured by {}", m.measured_by)}</span> })
            })
        }
    };
    view! {
        <form class="stack decision-form" aria-label=format!("Decision at {}", point.title) on:submit=submit>
            <fieldset>
                <legend>"Criteria"</legend>
                {results.with_value(|rs| rs.iter().map(|(criterion, result, observed)| {
                    let (result, observed) = (*result, *observed);
                    view! {
                        <div class="criterion">
                            <span class="criterion-text">{criterion.clone()}</span>
                            {measured_by(criterion.clone())}
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
                            <input type="radio" name=format!("outcome-{key}") value=o.as_str()
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
            {move || confirming.get().map(|question| crate::pages::users::confirm_box(
                question,
                "Record Go anyway".to_owned(),
                move || send(true),
                move || confirming.set(None),
            ))}
        </form>
    }
    .into_any()
}
