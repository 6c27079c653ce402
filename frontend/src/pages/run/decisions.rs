//! The decision panel: each decision point with its criteria, latest outcome and the form
//! to record a decision.

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
pub(super) fn DecisionPoint(point: RunDecisionPoint) -> impl IntoView {
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
