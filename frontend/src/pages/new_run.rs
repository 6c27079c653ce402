//! Open a run of a template: product, release version, environment, the scheduled window
//! (UTC) and the expected downtime.

use leptos::prelude::*;
use shipshape_domain::wire::{CreateRunRequest, TemplateSummary};

use crate::api::{self, ApiError};
use crate::components::ErrorNote;
use crate::format::parse_utc_input;

fn invalid(detail: String) -> ApiError {
    ApiError::invalid(detail)
}

/// The new-run form.
#[component]
pub fn NewRun() -> impl IntoView {
    let location = crate::router::use_location();
    let templates = RwSignal::new(Vec::<TemplateSummary>::new());
    let template_id = RwSignal::new(String::new());
    let product = RwSignal::new("EduLibra".to_owned());
    let release = RwSignal::new(String::new());
    let environment = RwSignal::new("production".to_owned());
    let window_start = RwSignal::new(String::new());
    let window_end = RwSignal::new(String::new());
    let downtime = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);

    leptos::task::spawn_local(async move {
        match api::list_templates().await {
            Ok(list) => {
                if let Some(first) = list.iter().find(|t| t.builtin).or(list.first()) {
                    template_id.set(first.id.clone());
                }
                templates.set(list);
            }
            Err(e) => error.set(Some(e)),
        }
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let request = (|| {
            let downtime = downtime.get_untracked();
            let expected_downtime_minutes = match downtime.trim() {
                "" => None,
                d => Some(d.parse::<i32>().map_err(|_| {
                    invalid("Expected downtime must be a whole number of minutes.".into())
                })?),
            };
            Ok::<_, ApiError>(CreateRunRequest {
                template_id: template_id.get_untracked(),
                template_version: None,
                product: product.get_untracked(),
                release_version: release.get_untracked(),
                environment: environment.get_untracked(),
                window_start: parse_utc_input(&window_start.get_untracked()).map_err(invalid)?,
                window_end: parse_utc_input(&window_end.get_untracked()).map_err(invalid)?,
                expected_downtime_minutes,
                commit_sha: None,
                committed_at: None,
            })
        })();
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                error.set(Some(e));
                return;
            }
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::create_run(&request).await {
                Ok(run) => location.navigate(&format!("/runs/{}", run.summary.id)),
                Err(e) => {
                    busy.set(false);
                    error.set(Some(e));
                }
            }
        });
    };

    view! {
        <section class="narrow">
            <h1>"New run"</h1>
            <form on:submit=submit class="stack" aria-label="New run">
                <label>"Template"
                    <select name="template" required
                        prop:value=move || template_id.get()
                        on:change=move |ev| template_id.set(event_target_value(&ev))>
                        {move || templates.get().into_iter().map(|t| {
                            let id = t.id.clone();
                            // `selected` rather than the select's value: the options arrive
                            // after the choice is made.
                            let chosen = template_id.get_untracked() == id;
                            view! { <option value=id selected=chosen>{format!("{} (v{})", t.name, t.version)}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label>"Product"<input name="product" required bind:value=product/></label>
                <label>"Release version"<input name="release_version" required placeholder="4.2.0" bind:value=release/></label>
                <label>"Environment"<input name="environment" required bind:value=environment/></label>
                <div class="row">
                    <label>"Window opens (UTC)"<input name="window_start" type="datetime-local" bind:value=window_start/></label>
                    <label>"Window closes (UTC)"<input name="window_end" type="datetime-local" bind:value=window_end/></label>
                </div>
                <label>"Expected downtime (minutes)"<input name="downtime" type="number" min="0" inputmode="numeric" bind:value=downtime/></label>
                <ErrorNote error=error/>
                <button type="submit" disabled=move || busy.get()>"Create run"</button>
            </form>
        </section>
    }
}
