//! The event timeline: every event of the run as a sentence, newest first. The sentences are
//! a panel fetched when opened (whether it is open is remembered in the browser); what
//! screen readers hear of news needs none of it.

use super::*;

/// Where the browser remembers that the timeline is open.
const OPEN_KEY: &str = "shipshape.timeline";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

#[component]
pub(super) fn Timeline(events: RwSignal<Vec<live::LogEvent>>) -> impl IntoView {
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
                Some(seq) if last.seq > seq => Some(last.headline()),
                Some(_) => None,
            }
        })
    };
    let open = RwSignal::new(
        storage()
            .and_then(|s| s.get_item(OPEN_KEY).ok().flatten())
            .is_some_and(|v| v == "open"),
    );
    let toggle = move |_| {
        let now_open = !open.get_untracked();
        open.set(now_open);
        if let Some(s) = storage() {
            let _ = s.set_item(OPEN_KEY, if now_open { "open" } else { "closed" });
        }
    };
    view! {
        <section class="panel" aria-labelledby="timeline-h">
            <h2 id="timeline-h">"Timeline"</h2>
            <p class="visually-hidden" role="status">{news}</p>
            <button type="button" class="timeline-toggle" aria-expanded=move || open.get().to_string() on:click=toggle>
                {move || format!("{} the log ({} events)", if open.get() { "Hide" } else { "Show" }, events.with(Vec::len))}
            </button>
            {move || open.get().then(|| crate::pages::lazy_panel(crate::pages::timeline(events)))}
        </section>
    }
}

/// The log as sentences, newest first (see [`crate::pages::timeline`]).
pub fn timeline_list(events: RwSignal<Vec<live::LogEvent>>) -> AnyView {
    view! {
        // It scrolls: focusable, so the keyboard can scroll it too.
        <ol class="timeline" tabindex="0" aria-label="The run's log, newest first">
            <For each=move || events.with(|list| list.iter().rev().cloned().collect::<Vec<_>>()) key=|e| e.seq let:e>
                {e.event().map(|e| view! {
                    <li data-seq=e.seq data-type=e.event_type().as_str()>
                        <time datetime=e.at.to_rfc3339()>{format::time(e.at)}</time>
                        " "{format::event(&e)}
                    </li>
                })}
            </For>
        </ol>
    }
    .into_any()
}
