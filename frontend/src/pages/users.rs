//! Users (admin): the list, new users, role changes, deactivation. Changing a role and
//! deactivating ask first, saying what will happen.

use leptos::prelude::*;
use shipshape_domain::Role;
use shipshape_domain::wire::{CreateUserRequest, UpdateUserRequest, User};

use crate::api::{self, ApiError};
use crate::components::ErrorNote;
use crate::format;

/// The role options with `chosen` selected (on the option: a select's value is set before
/// its options exist).
fn role_options(chosen: impl Fn() -> Role + Copy + Send + Sync + 'static) -> impl IntoView {
    Role::ALL
        .iter()
        .map(|r| {
            let r = *r;
            view! { <option value=r.as_str() selected=move || chosen() == r>{format::role(r)}</option> }
        })
        .collect_view()
}

/// A question before a change that takes effect at once for someone else (or cannot be
/// undone): what will happen, a button styled as destructive that goes ahead, and one that
/// keeps things as they are. The button to go ahead takes focus.
pub(crate) fn confirm_box(
    question: String,
    go: String,
    on_go: impl Fn() + 'static,
    on_keep: impl Fn() + 'static,
) -> impl IntoView {
    let first = NodeRef::<leptos::html::Button>::new();
    let label = question.clone();
    Effect::new(move |_| {
        if let Some(b) = first.get() {
            let _ = b.focus();
        }
    });
    view! {
        <div class="confirm" role="alertdialog" aria-label=label>
            <p>{question}</p>
            <div class="row">
                <button type="button" class="danger confirm-go" node_ref=first on:click=move |_| on_go()>{go}</button>
                <button type="button" class="keep" on:click=move |_| on_keep()>"Keep it as it is"</button>
            </div>
        </div>
    }
}

/// A change to a user waiting for its confirmation: the user's id, the question, the
/// button's words, the change.
type Pending = (String, String, String, UpdateUserRequest);

/// The user administration page.
#[component]
pub fn Users() -> impl IntoView {
    let users = RwSignal::new(None::<Vec<User>>);
    let error = RwSignal::new(None::<ApiError>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            match api::list_users().await {
                Ok(list) => users.set(Some(list)),
                Err(e) => error.set(Some(e)),
            }
        })
    };
    reload();

    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Engineer.as_str().to_owned());
    let create_error = RwSignal::new(None::<ApiError>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = CreateUserRequest {
            username: username.get_untracked().trim().to_owned(),
            password: password.get_untracked(),
            role: Role::parse(&role.get_untracked()).unwrap_or(Role::Viewer),
        };
        create_error.set(None);
        leptos::task::spawn_local(async move {
            match api::create_user(&request).await {
                Ok(_) => {
                    username.set(String::new());
                    password.set(String::new());
                    reload();
                }
                Err(e) => create_error.set(Some(e)),
            }
        });
    };
    let pending = RwSignal::new(None::<Pending>);
    let change = move |user_id: String, request: UpdateUserRequest| {
        pending.set(None);
        error.set(None);
        leptos::task::spawn_local(async move {
            if let Err(e) = api::update_user(&user_id, &request).await {
                error.set(Some(e));
            }
            reload();
        });
    };

    view! {
        <h1>"Users"</h1>
        <ErrorNote error=error/>
        {move || pending.get().map(|(id, question, go, request)| confirm_box(
            question,
            go,
            move || change(id.clone(), request.clone()),
            // Kept: the list read again shows each user as they are.
            move || { pending.set(None); reload(); },
        ))}
        {move || users.get().map(|list| view! {
            <table class="list">
                <thead><tr><th scope="col">"User"</th><th scope="col">"Role"</th><th scope="col">"Status"</th><th scope="col">"Action"</th></tr></thead>
                <tbody>
                    {list.into_iter().map(|u| {
                        let (id, id2) = (u.id.clone(), u.id.clone());
                        let name = u.username.clone();
                        let active = u.active;
                        let current = u.role;
                        view! {
                            <tr data-user=u.username.clone()>
                                <td>{u.username.clone()}</td>
                                <td>
                                    <select aria-label=format!("Role of {name}") prop:value=u.role.as_str()
                                        on:change={
                                            let name = name.clone();
                                            move |ev| {
                                                if let Some(r) = Role::parse(&event_target_value(&ev)) {
                                                    pending.set(Some((
                                                        id.clone(),
                                                        format!("Change {name}'s role from {} to {}? What they may do changes at once, on every session and token of theirs.", format::role(current), format::role(r)),
                                                        format!("Make {name} {}", format::role(r)),
                                                        UpdateUserRequest { role: Some(r), active: None },
                                                    )));
                                                }
                                            }
                                        }>
                                        {role_options(move || current)}
                                    </select>
                                </td>
                                <td>{if active { "✓ Active" } else { "✗ Deactivated" }}</td>
                                <td>
                                    {if active {
                                        let name = name.clone();
                                        view! {
                                            // Deactivating asks first; reactivating gives back what was there.
                                            <button type="button" class="danger deactivate" on:click=move |_| pending.set(Some((
                                                id2.clone(),
                                                format!("Deactivate {name}? They are signed out everywhere at once, their API tokens stop working, and they can no longer sign in until reactivated."),
                                                format!("Deactivate {name}"),
                                                UpdateUserRequest { role: None, active: Some(false) },
                                            )))>{format!("Deactivate {name}")}</button>
                                        }.into_any()
                                    } else {
                                        view! {
                                            <button type="button" class="reactivate" on:click=move |_| change(id2.clone(), UpdateUserRequest { role: None, active: Some(true) })>
                                                {format!("Reactivate {name}")}
                                            </button>
                                        }.into_any()
                                    }}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        })}
        <section class="panel narrow" aria-labelledby="new-user-h">
            <h2 id="new-user-h">"New user"</h2>
            <form class="stack" on:submit=create aria-label="New user">
                <label>"User name"<input name="new_username" required autocomplete="off" bind:value=username/></label>
                <label>"Initial password (at least 12 characters)"<input name="new_password" type="password" required minlength="12" autocomplete="new-password" bind:value=password/></label>
                <label>"Role"
                    <select name="new_role" prop:value=move || role.get() on:change=move |ev| role.set(event_target_value(&ev))>
                        {role_options(move || Role::parse(&role.get()).unwrap_or(Role::Engineer))}
                    </select>
                </label>
                <ErrorNote error=create_error/>
                <button type="submit" class="primary">"Create user"</button>
            </form>
        </section>
    }
}
