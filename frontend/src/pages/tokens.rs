//! API tokens for tools (CI pipelines, deploy scripts, bots): your tokens, a new one (its
//! secret shown once), revocation. A token can only carry scopes your role can use.

use leptos::prelude::*;
use shipshape_domain::access::{Scope, role_can_use_scope};
use shipshape_domain::wire::{ApiToken, CreateTokenRequest};

use crate::api::{self, ApiError};
use crate::components::ErrorNote;
use crate::format;
use crate::session::use_session;

/// The API token page.
#[component]
pub fn Tokens() -> impl IntoView {
    let session = use_session();
    let tokens = RwSignal::new(None::<Vec<ApiToken>>);
    let error = RwSignal::new(None::<ApiError>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            match api::list_tokens().await {
                Ok(list) => tokens.set(Some(list)),
                Err(e) => error.set(Some(e)),
            }
        })
    };
    reload();

    let usable: Vec<Scope> = session
        .user()
        .map(|u| {
            Scope::ALL
                .into_iter()
                .filter(|s| role_can_use_scope(u.role, *s))
                .collect()
        })
        .unwrap_or_default();
    let name = RwSignal::new(String::new());
    let days = RwSignal::new("90".to_owned());
    let chosen: Vec<(Scope, RwSignal<bool>)> = usable
        .iter()
        .map(|s| (*s, RwSignal::new(*s == Scope::RunsRead)))
        .collect();
    let chosen = StoredValue::new(chosen);
    let secret = RwSignal::new(None::<String>);
    let create_error = RwSignal::new(None::<ApiError>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let scopes = chosen.with_value(|c| {
            c.iter()
                .filter(|(_, on)| on.get_untracked())
                .map(|(s, _)| *s)
                .collect()
        });
        let request = CreateTokenRequest {
            name: name.get_untracked().trim().to_owned(),
            scopes,
            expires_in_days: days.get_untracked().trim().parse().unwrap_or(0),
        };
        create_error.set(None);
        leptos::task::spawn_local(async move {
            match api::create_token(&request).await {
                Ok(created) => {
                    secret.set(Some(created.secret));
                    name.set(String::new());
                    reload();
                }
                Err(e) => create_error.set(Some(e)),
            }
        });
    };
    // The token (id and name) whose revocation waits for its confirmation.
    let revoking = RwSignal::new(None::<(String, String)>);
    let revoke = move |id: String| {
        revoking.set(None);
        leptos::task::spawn_local(async move {
            if let Err(e) = api::revoke_token(&id).await {
                error.set(Some(e));
            }
            reload();
        });
    };

    view! {
        <h1>"API tokens"</h1>
        <p>"Tokens let tools use the API as you, with the scopes you give them. Send one as "<code>"Authorization: Bearer <secret>"</code>"."</p>
        <ErrorNote error=error/>
        {move || revoking.get().map(|(id, name)| crate::pages::users::confirm_box(
            format!("Revoke the token “{name}”? Every tool using it is refused from now on; this cannot be undone (a new token can be made)."),
            format!("Revoke {name}"),
            move || revoke(id.clone()),
            move || revoking.set(None),
        ))}
        {move || tokens.get().map(|list| if list.is_empty() {
            view! { <p class="muted">"You have no tokens."</p> }.into_any()
        } else {
            view! {
                <table class="list">
                    <thead><tr><th scope="col">"Name"</th><th scope="col">"Starts with"</th><th scope="col">"Scopes"</th><th scope="col">"Expires"</th><th scope="col">"Last used"</th><th scope="col">"Status"</th></tr></thead>
                    <tbody>
                        {list.into_iter().map(|t| {
                            let id = t.id.clone();
                            let revoked = t.revoked_at.is_some();
                            view! {
                                <tr data-token=t.name.clone()>
                                    <td>{t.name.clone()}</td>
                                    <td><code>{t.prefix.clone()}"…"</code></td>
                                    <td>{t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")}</td>
                                    <td>{format::time(t.expires_at)}</td>
                                    <td>{t.last_used_at.map_or("never".into(), format::time)}</td>
                                    <td>{if revoked {
                                        view! { <span>"✗ Revoked"</span> }.into_any()
                                    } else {
                                        let name = t.name.clone();
                                        view! { <button type="button" class="danger revoke" on:click=move |_| revoking.set(Some((id.clone(), name.clone())))>{format!("Revoke {}", t.name)}</button> }.into_any()
                                    }}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        })}
        {move || secret.get().map(|s| view! {
            <div class="notice secret" role="status">
                <p><strong>"Copy the secret now: it is not shown again."</strong></p>
                <code class="secret-value">{s}</code>
                <button type="button" on:click=move |_| secret.set(None)>"I have copied it"</button>
            </div>
        })}
        <section class="panel narrow" aria-labelledby="new-token-h">
            <h2 id="new-token-h">"New token"</h2>
            <form class="stack" on:submit=create aria-label="New token">
                <label>"What is it for?"<input name="token_name" required placeholder="CI pipeline" bind:value=name/></label>
                <fieldset>
                    <legend>"Scopes"</legend>
                    {chosen.with_value(|c| c.iter().map(|(scope, on)| {
                        let on = *on;
                        view! { <label class="check"><input type="checkbox" name="scope" value=scope.as_str() bind:checked=on/>{scope.as_str()}</label> }
                    }).collect_view())}
                </fieldset>
                <label>"Expires in (days, 1–365)"<input name="token_days" type="number" min="1" max="365" required bind:value=days/></label>
                <ErrorNote error=create_error/>
                <button type="submit" class="primary">"Create token"</button>
            </form>
        </section>
    }
}
