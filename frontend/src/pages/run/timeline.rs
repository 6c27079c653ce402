//! The event timeline: every event of the run as a sentence, newest first.

use super::*;

#[component]
pub(super) fn Timeline(events: RwSignal<Vec<Event>>) -> impl IntoView {
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
