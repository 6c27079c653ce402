//! The run's environment: the warnings about its schedule, and (opened on demand) the
//! environment's lock, freeze, escalation contacts and dashboards.

use super::*;

#[component]
pub(super) fn EnvironmentSection() -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let open = RwSignal::new(false);
    let env = move || {
        ctx.run.with(|r| {
            r.as_ref()
                .map(|r| (r.summary.environment.clone(), r.warnings.len()))
        })
    };
    view! {
        <section class="panel environment" id="environment" aria-labelledby="environment-h">
            <h2 id="environment-h">{move || env().map(|(name, _)| format!("Environment: {name}"))}</h2>
            <button type="button" class="env-toggle" aria-expanded=move || open.get().to_string()
                on:click=move |_| open.update(|o| *o = !*o)>
                {move || match env().map_or(0, |(_, n)| n) {
                    0 => "Escalation contacts and dashboards".to_owned(),
                    n => format!("⚠ {n} warning(s) about the schedule; escalation contacts and dashboards"),
                }}
            </button>
            {move || open.get().then(|| crate::pages::lazy_panel(crate::pages::environment_panel(ctx.run.with_untracked(|r| r.as_ref().map(|r| r.summary.environment.clone()).unwrap_or_default()))))}
        </section>
    }
}

/// The environment's lock, freeze in force, escalation contacts and dashboards (see
/// [`crate::pages::environment_panel`]).
pub fn environment_panel(name: String) -> AnyView {
    let ctx = expect_context::<RunCtx>();
    let env = RwSignal::new(None::<shipshape_domain::environment::Environment>);
    let error = RwSignal::new(None::<ApiError>);
    leptos::task::spawn_local(async move {
        match api::environment(&name).await {
            Ok(e) => {
                env.try_set(Some(e));
            }
            Err(e) => {
                error.try_set(Some(e));
            }
        }
    });
    view! {
        <ul class="plain warnings">
            {move || ctx.run.with(|r| r.as_ref().map(|r| r.warnings.iter().map(|w| view! { <li class="warn">{format!("⚠ {}", w.message)}</li> }).collect_view()))}
        </ul>
        <ErrorNote error=error/>
        {move || env.get().map(|e| {
            let page = format!("/environments/{}", e.name);
            view! {
                {e.lock.map(|l| view! {
                    <p class="warn lock">{format!("🔒 Locked by {}: {}", l.locked_by, l.reason)}</p>
                })}
                {e.freeze.map(|f| view! {
                    <p class="warn freeze">{format!("❄ Frozen until {}: {}", format::time(f.ends_at), f.reason)}</p>
                })}
                <h3>"Escalation contacts"</h3>
                {if e.contacts.is_empty() {
                    view! { <p class="muted">"None on record: an administrator adds them on the environment's page."</p> }.into_any()
                } else {
                    view! {
                        <ol class="contacts">
                            {e.contacts.into_iter().map(|c| view! {
                                <li>
                                    <strong>{c.name}</strong>{format!(" — {}", c.role)}<br/>
                                    {c.reach}{c.hours.map(|h| format!(" ({h})"))}
                                </li>
                            }).collect_view()}
                        </ol>
                    }.into_any()
                }}
                <h3>"Dashboards"</h3>
                <ul class="plain dashboards">
                    {e.dashboards.into_iter().map(|d| view! {
                        <li><a href=d.url target="_blank" rel="noopener noreferrer">{d.label}</a></li>
                    }).collect_view()}
                </ul>
                <p><a href=page>"The environment's page"</a></p>
            }
        })}
    }
    .into_any()
}
