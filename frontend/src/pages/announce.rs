//! The announcement composer of a run (`/runs/:id/announce`, release managers): a draft
//! written from the run (the window also in this browser's zone), edited, sent to
//! chosen webhook subscriptions and e-mail addresses, completing the checklist item it
//! satisfies.

use leptos::prelude::*;
use shipshape_domain::announcement::{AnnouncementKind, SendAnnouncementRequest};
use shipshape_domain::webhook::WebhookSubscription;

use crate::api::{self, ApiError};
use crate::components::ErrorNote;

/// Minutes this browser's zone is ahead of UTC.
fn offset_minutes() -> i32 {
    // `getTimezoneOffset` is UTC minus local time.
    -(js_sys::Date::new_0().get_timezone_offset() as i32)
}

fn kind_of(value: &str) -> AnnouncementKind {
    AnnouncementKind::parse(value).unwrap_or(AnnouncementKind::Schedule)
}

/// The item an announcement of `kind` most likely satisfies (the domain's rule), if any.
fn likely_item(kind: AnnouncementKind, items: &[(String, String)]) -> String {
    items
        .iter()
        .find(|(_, label)| kind.satisfies(label))
        .map(|(id, _)| id.clone())
        .unwrap_or_default()
}

/// The announcement screen of a run.
#[component]
pub fn AnnouncePage(id: String) -> impl IntoView {
    let run = RwSignal::new(None::<shipshape_domain::wire::Run>);
    let error = RwSignal::new(None::<ApiError>);
    let run_id = id.clone();
    leptos::task::spawn_local(async move {
        match api::get_run(&run_id).await {
            Ok(r) => {
                run.try_set(Some(r));
            }
            Err(e) => {
                error.try_set(Some(e));
            }
        }
    });
    view! {
        <h1>"Announce"</h1>
        <ErrorNote error=error/>
        {move || run.get().map(|r| {
            let items: Vec<(String, String)> = r
                .parts
                .iter()
                .flat_map(|p| &p.sections)
                .flat_map(|s| &s.items)
                .map(|i| (i.id.clone(), format!("{} {}", i.reference, i.title)))
                .collect();
            let s = &r.summary;
            view! {
                <p><a href=format!("/runs/{}", s.id)>{format!("← {} {} → {}", s.product, s.release_version, s.environment)}</a></p>
                <Composer run_id=s.id.clone() items=items/>
            }
        })}
    }
}

/// The composer.
#[component]
pub fn Composer(run_id: String, items: Vec<(String, String)>) -> impl IntoView {
    let run_id = StoredValue::new(run_id);
    let items = StoredValue::new(items);
    let kind = RwSignal::new("schedule".to_owned());
    let subject = RwSignal::new(String::new());
    let body = RwSignal::new(String::new());
    let recipients = RwSignal::new(String::new());
    let item = RwSignal::new(String::new());
    let subs = RwSignal::new(Vec::<(WebhookSubscription, RwSignal<bool>)>::new());
    let error = RwSignal::new(None::<ApiError>);
    let sent = RwSignal::new(None::<String>);
    leptos::task::spawn_local(async move {
        // Subscriptions to choose from (an empty list if they cannot be read).
        if let Ok(list) = api::list_webhooks().await {
            subs.try_set(
                list.into_iter()
                    .filter(|s| s.active)
                    .map(|s| (s, RwSignal::new(false)))
                    .collect(),
            );
        }
    });
    let draft = move || {
        let k = kind_of(&kind.get_untracked());
        error.set(None);
        item.set(items.with_value(|i| likely_item(k, i)));
        leptos::task::spawn_local(async move {
            match api::announcement_draft(&run_id.get_value(), k, offset_minutes()).await {
                Ok(d) => {
                    subject.try_set(d.subject);
                    body.try_set(d.body);
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    draft();
    let send = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = SendAnnouncementRequest {
            kind: kind_of(&kind.get_untracked()),
            subject: subject.get_untracked(),
            body: body.get_untracked(),
            subscription_ids: subs.with_untracked(|s| {
                s.iter()
                    .filter(|(_, on)| on.get_untracked())
                    .map(|(s, _)| s.id.clone())
                    .collect()
            }),
            recipients: recipients
                .get_untracked()
                .split([',', ' ', '\n'])
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
            item_id: Some(item.get_untracked()).filter(|i| !i.is_empty()),
        };
        error.set(None);
        sent.set(None);
        leptos::task::spawn_local(async move {
            match api::send_announcement(&run_id.get_value(), &request).await {
                Ok(receipt) => {
                    let done = receipt
                        .item
                        .map(|i| format!(" {} {} is done.", i.reference, i.title))
                        .unwrap_or_default();
                    sent.try_set(Some(format!("Sent (event {}).{done}", receipt.seq)));
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    view! {
        <form class="stack" on:submit=send aria-label="Announcement">
            <label>"What to announce"
                <select name="announce_kind" bind:value=kind on:change=move |_| draft()>
                    <option value="schedule">"The schedule (before deploying)"</option>
                    <option value="success">"The deployment succeeded"</option>
                    <option value="rollback">"The deployment was rolled back"</option>
                </select>
            </label>
            <label>"Subject"<input name="announce_subject" required bind:value=subject/></label>
            <label>"Text"<textarea name="announce_body" rows="12" required bind:value=body></textarea></label>
            <fieldset>
                <legend>"Send to"</legend>
                {move || subs.with(|s| if s.is_empty() {
                    view! { <p class="muted">"No active webhook subscriptions."</p> }.into_any()
                } else {
                    s.iter().map(|(sub, on)| {
                        let on = *on;
                        let label = sub.description.clone().unwrap_or_else(|| sub.url.clone());
                        view! { <label class="check"><input type="checkbox" name="announce_to" value=sub.id.clone() bind:checked=on/>{label}</label> }
                    }).collect_view().into_any()
                })}
                <label>"E-mail addresses (comma-separated)"<input name="announce_recipients" bind:value=recipients placeholder="users@example.com"/></label>
            </fieldset>
            <label>"Completes the checklist item"
                <select name="announce_item" bind:value=item>
                    <option value="">"None"</option>
                    {items.with_value(|i| i.iter().map(|(id, label)| view! {
                        <option value=id.clone()>{label.clone()}</option>
                    }).collect_view())}
                </select>
            </label>
            <ErrorNote error=error/>
            {move || sent.get().map(|s| view! { <p class="notice" role="status">{s}</p> })}
            <button type="submit" class="primary">"Send announcement"</button>
        </form>
    }
}
