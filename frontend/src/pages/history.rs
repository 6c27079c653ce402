//! Every run, finished ones too: searched (product, version or environment), filtered by
//! product, environment, status and when it was created (from a day, before a day; days
//! start at midnight UTC), newest first, a page at a time.

use leptos::prelude::*;
use serde_json::Value;
use shipshape_domain::run::RunStatus;

use crate::api::{self, ApiError};
use crate::components::ErrorNote;
use crate::format;

/// A run of the list, read from its JSON (the list's rows need a few of its fields; one
/// decoder for the whole tree takes far less code than the typed one).
fn row(r: &Value) -> impl IntoView + use<> {
    let text = |key: &str| r[key].as_str().unwrap_or_default().to_owned();
    let count = |key: &str| r["progress"][key].as_i64().unwrap_or(0);
    let status = RunStatus::parse(&text("status")).unwrap_or(RunStatus::Planned);
    let created = shipshape_domain::timestamp::parse(&text("created_at"))
        .map_or_else(|| text("created_at"), format::time);
    view! {
        <tr data-run=text("id")>
            <td><a href=format!("/runs/{}", text("id"))>{format!("{} {} → {}", text("product"), text("release_version"), text("environment"))}</a></td>
            <td><span class="badge run" data-status=status.as_str()>{format::run_status(status)}</span></td>
            <td>{format!("{}/{}", count("done") + count("skipped"), count("applicable"))}</td>
            <td>{created}</td>
        </tr>
    }
}

/// The runs list (`/runs`).
#[component]
pub fn History() -> impl IntoView {
    let field = || RwSignal::new(String::new());
    let (search, product, environment, status, from, before) =
        (field(), field(), field(), field(), field(), field());
    let runs = RwSignal::new(None::<Vec<Value>>);
    let next = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<ApiError>);
    // The query of the filters as they are (a date is a whole UTC day).
    let query = move || {
        let mut parts = vec!["limit=50".to_owned()];
        let mut add = |key: &str, value: String| {
            let value = value.trim().to_owned();
            if !value.is_empty() {
                parts.push(format!("{key}={}", api::encode(&value)));
            }
        };
        add("q", search.get_untracked());
        add("product", product.get_untracked());
        add("environment", environment.get_untracked());
        add("status", status.get_untracked());
        // A date means its start, in UTC.
        let day = |d: String| {
            let d = d.trim().to_owned();
            if d.is_empty() {
                d
            } else {
                format!("{d}T00:00:00Z")
            }
        };
        add("created_from", day(from.get_untracked()));
        add("created_before", day(before.get_untracked()));
        parts.join("&")
    };
    // A page of runs: the first (replacing the list) or the next (added to it).
    let load = move |after: Option<String>| {
        let mut q = query();
        if let Some(cursor) = &after {
            q.push_str(&format!("&cursor={}", api::encode(cursor)));
        }
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::insights(&format!("/runs?{q}")).await {
                Ok(mut page) => {
                    let items = match page["items"].take() {
                        Value::Array(items) => items,
                        _ => Vec::new(),
                    };
                    runs.update(|r| match (r, after.is_some()) {
                        (Some(list), true) => list.extend(items),
                        (r, _) => *r = Some(items),
                    });
                    next.set(page["next_cursor"].as_str().map(str::to_owned));
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load(None);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        load(None);
    };
    view! {
        <h1>"All runs"</h1>
        <form class="filters row" on:submit=submit aria-label="Find runs">
            <label>"Search"<input type="search" name="q" placeholder="product, version or environment" bind:value=search/></label>
            <label>"Product"<input name="product" bind:value=product/></label>
            <label>"Environment"<input name="environment" bind:value=environment/></label>
            <label>"Status"
                <select name="status" on:change=move |ev| status.set(event_target_value(&ev))>
                    <option value="">"any"</option>
                    {RunStatus::ALL.iter().map(|s| view! { <option value=s.as_str()>{format::run_status(*s)}</option> }).collect_view()}
                </select>
            </label>
            <label>"Created from"<input type="date" name="created_from" bind:value=from/></label>
            <label>"Created before"<input type="date" name="created_before" bind:value=before/></label>
            <button type="submit" class="primary">"Find"</button>
        </form>
        <ErrorNote error=error/>
        {move || runs.get().map(|list| if list.is_empty() {
            view! { <p class="muted">"No run matches."</p> }.into_any()
        } else {
            view! {
                <table class="list runs">
                    <thead><tr><th scope="col">"Run"</th><th scope="col">"Status"</th><th scope="col">"Settled"</th><th scope="col">"Created"</th></tr></thead>
                    <tbody>
                        {list.iter().map(row).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        })}
        {move || next.get().map(|cursor| view! {
            <button type="button" class="more" on:click=move |_| load(Some(cursor.clone()))>"More runs"</button>
        })}
    }
}
