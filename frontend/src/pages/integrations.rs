//! Integrations (admins and release managers): webhook subscriptions that tell tools and
//! chat channels what happens — their targets, event types and filters, the signing secret
//! (shown once, rotated), a test event, and each subscription's delivery log with
//! redelivery.

use leptos::prelude::*;
use shipshape_domain::webhook::WebhookEventType;
use shipshape_domain::webhook::{
    CreateWebhookRequest, DeliveryStatus, UpdateWebhookRequest, WebhookDelivery, WebhookFormat,
    WebhookSubscription,
};

use shipshape_domain::describe::words;

use crate::api::{self, ApiError};
use crate::components::ErrorNote;
use crate::format;

fn delivery_status(d: &WebhookDelivery) -> String {
    let last = d.attempt_log.last();
    let answer = last.map(|a| match (a.status_code, &a.error) {
        (Some(code), _) => format!("HTTP {code}"),
        (None, Some(e)) => e.clone(),
        (None, None) => String::new(),
    });
    let status = match d.status {
        DeliveryStatus::Pending => "… Pending",
        DeliveryStatus::Delivered => "✓ Delivered",
        DeliveryStatus::Failed => "✗ Failed",
    };
    match answer {
        Some(a) if !a.is_empty() => format!("{status} ({a}, attempt {})", d.attempts),
        _ => status.to_owned(),
    }
}

/// The Integrations page.
#[component]
pub fn Integrations() -> impl IntoView {
    let subs = RwSignal::new(None::<Vec<WebhookSubscription>>);
    let error = RwSignal::new(None::<ApiError>);
    let secret = RwSignal::new(None::<(String, String)>);
    let notice = RwSignal::new(None::<String>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            match api::list_webhooks().await {
                Ok(list) => {
                    subs.try_set(Some(list));
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        })
    };
    reload();

    let url = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let chat = RwSignal::new(false);
    let product = RwSignal::new(String::new());
    let environment = RwSignal::new(String::new());
    let kinds: Vec<(WebhookEventType, RwSignal<bool>)> = WebhookEventType::all()
        .map(|k| (k, RwSignal::new(false)))
        .collect();
    let kinds = StoredValue::new(kinds);
    let create_error = RwSignal::new(None::<ApiError>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = CreateWebhookRequest {
            url: url.get_untracked().trim().to_owned(),
            description: Some(description.get_untracked()),
            format: if chat.get_untracked() {
                WebhookFormat::Slack
            } else {
                WebhookFormat::Standard
            },
            event_types: kinds.with_value(|k| {
                k.iter()
                    .filter(|(_, on)| on.get_untracked())
                    .map(|(k, _)| k.as_str().to_owned())
                    .collect()
            }),
            product: Some(product.get_untracked()),
            environment: Some(environment.get_untracked()),
            active: None,
        };
        create_error.set(None);
        leptos::task::spawn_local(async move {
            match api::create_webhook(&request).await {
                Ok(created) => {
                    secret.try_set(Some((created.subscription.url, created.secret)));
                    url.try_set(String::new());
                    description.try_set(String::new());
                    reload();
                }
                Err(e) => {
                    create_error.try_set(Some(e));
                }
            }
        });
    };

    view! {
        <h1>"Integrations"</h1>
        <p>"Webhook subscriptions tell tools (deploy pipelines, bots) and chat channels what happens on runs. Deliveries are signed the "<a href="https://www.standardwebhooks.com">"Standard Webhooks"</a>" way and retried for about a day."</p>
        <ErrorNote error=error/>
        {move || notice.get().map(|n| view! { <p class="notice" role="status">{n}</p> })}
        {move || secret.get().map(|(target, s)| view! {
            <div class="notice secret" role="status">
                <p><strong>{format!("Signing secret for {target}. Copy it now: it is not shown again.")}</strong></p>
                <code class="secret-value">{s}</code>
                <button type="button" on:click=move |_| secret.set(None)>"I have copied it"</button>
            </div>
        })}
        {move || subs.get().map(|list| if list.is_empty() {
            view! { <p class="muted">"No subscriptions yet."</p> }.into_any()
        } else {
            view! {
                <ul class="plain subscriptions">
                    {list.into_iter().map(|s| view! {
                        <Subscription sub=s reload=reload secret=secret notice=notice error=error/>
                    }).collect_view()}
                </ul>
            }.into_any()
        })}
        <section class="panel narrow" aria-labelledby="new-hook-h">
            <h2 id="new-hook-h">"New subscription"</h2>
            <form class="stack" on:submit=create aria-label="New subscription">
                <label>"Target URL"<input name="hook_url" type="url" required placeholder="https://hooks.example.com/shipshape" bind:value=url/></label>
                <label>"What is it for?"<input name="hook_description" placeholder="Deploy pipeline" bind:value=description/></label>
                <label class="check"><input type="checkbox" name="hook_chat" bind:checked=chat/>"A chat channel (Slack-compatible message)"</label>
                <fieldset>
                    <legend>"Events"</legend>
                    {kinds.with_value(|k| k.iter().map(|(kind, on)| {
                        let on = *on;
                        view! { <label class="check"><input type="checkbox" name="hook_event" value=kind.as_str() bind:checked=on/>{words(kind.as_str())}</label> }
                    }).collect_view())}
                </fieldset>
                <label>"Only the product (optional)"<input name="hook_product" bind:value=product/></label>
                <label>"Only the environment (optional)"<input name="hook_environment" bind:value=environment/></label>
                <ErrorNote error=create_error/>
                <button type="submit" class="primary">"Create subscription"</button>
            </form>
        </section>
    }
}

#[component]
fn Subscription(
    sub: WebhookSubscription,
    reload: impl Fn() + Copy + Send + Sync + 'static,
    secret: RwSignal<Option<(String, String)>>,
    notice: RwSignal<Option<String>>,
    error: RwSignal<Option<ApiError>>,
) -> impl IntoView {
    let id = StoredValue::new(sub.id.clone());
    let target = StoredValue::new(sub.url.clone());
    let log = RwSignal::new(None::<Vec<WebhookDelivery>>);
    let show_log = move || {
        leptos::task::spawn_local(async move {
            match api::deliveries(&id.get_value()).await {
                Ok(page) => {
                    log.try_set(Some(page.items));
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let test = move |_| {
        leptos::task::spawn_local(async move {
            match api::test_webhook(&id.get_value()).await {
                Ok(_) => {
                    notice.try_set(Some(format!(
                        "A test event is on its way to {}.",
                        target.get_value()
                    )));
                    show_log();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let rotate = move |_| {
        leptos::task::spawn_local(async move {
            match api::rotate_webhook_secret(&id.get_value()).await {
                Ok(r) => {
                    secret.try_set(Some((r.subscription.url, r.secret)));
                    reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let active = sub.active;
    let toggle = move |_| {
        let body = UpdateWebhookRequest {
            active: Some(!active),
            ..UpdateWebhookRequest::default()
        };
        leptos::task::spawn_local(async move {
            if let Err(e) = api::update_webhook(&id.get_value(), &body).await {
                error.try_set(Some(e));
            }
            reload();
        });
    };
    let delete = move |_| {
        leptos::task::spawn_local(async move {
            if let Err(e) = api::delete_webhook(&id.get_value()).await {
                error.try_set(Some(e));
            }
            reload();
        });
    };
    let redeliver = move |delivery: String| {
        leptos::task::spawn_local(async move {
            match api::redeliver(&id.get_value(), &delivery).await {
                Ok(_) => show_log(),
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let events = sub
        .event_types
        .iter()
        .map(|k| words(k.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let filters = [
        sub.product.as_ref().map(|p| format!("product {p}")),
        sub.environment.as_ref().map(|e| format!("environment {e}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    let state = match (&sub.disabled_reason, sub.active) {
        (_, true) => "● Active".to_owned(),
        (Some(reason), false) => format!("○ Deactivated: {reason}"),
        (None, false) => "○ Inactive".to_owned(),
    };
    view! {
        <li class="panel subscription" data-webhook=sub.url.clone()>
            <h2 class="h3">{sub.description.clone().unwrap_or_else(|| sub.url.clone())}</h2>
            <p><code>{sub.url.clone()}</code>" · "{if sub.format == WebhookFormat::Slack { "chat message" } else { "Standard Webhooks" }}</p>
            <p>"Events: "{events}{(!filters.is_empty()).then(|| format!(" · only {filters}"))}</p>
            <p data-testid="webhook-state">{state}{sub.failing_since.map(|t| format!(" · failing since {}", format::time(t)))}</p>
            <div class="actions">
                <button type="button" on:click=test>"Send test event"</button>
                <button type="button" on:click=move |_| show_log()>"Show deliveries"</button>
                <button type="button" on:click=rotate>"Rotate secret"</button>
                <button type="button" on:click=toggle>{if active { "Deactivate" } else { "Activate" }}</button>
                <button type="button" class="danger" on:click=delete>"Delete"</button>
            </div>
            {move || log.get().map(|items| if items.is_empty() {
                view! { <p class="muted">"No deliveries yet."</p> }.into_any()
            } else {
                view! {
                    <table class="list deliveries">
                        <caption>"Latest deliveries"</caption>
                        <thead><tr><th scope="col">"Event"</th><th scope="col">"Queued"</th><th scope="col">"Status"</th><th scope="col">"Answer"</th><th scope="col"></th></tr></thead>
                        <tbody>
                            {items.into_iter().map(|d| {
                                let did = d.id.clone();
                                let excerpt = d.attempt_log.last().and_then(|a| a.response_excerpt.clone()).unwrap_or_default();
                                view! {
                                    <tr data-delivery=d.id.clone()>
                                        <td>{words(&d.event_type)}</td>
                                        <td>{format::time(d.created_at)}</td>
                                        <td>{delivery_status(&d)}</td>
                                        <td><code>{excerpt}</code></td>
                                        <td><button type="button" on:click=move |_| redeliver(did.clone())>"Redeliver"</button></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            })}
        </li>
    }
}
