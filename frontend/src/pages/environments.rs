//! Environments (`/environments`, `/environments/:name`): each one's record (admins edit it),
//! its lock (release managers lock and unlock it) and its freeze windows (release managers
//! make and delete them).

use leptos::prelude::*;
use shipshape_domain::access::Permission;
use shipshape_domain::environment::{
    CreateFreezeRequest, Environment, EnvironmentLink, EscalationContact, FreezeWindow,
    LockEnvironmentRequest, PutEnvironmentRequest, Recurrence, UnlockEnvironmentRequest,
};

use crate::api::{self, ApiError};
use crate::components::{ErrorNote, show_when};
use crate::format;
use crate::session::use_session;

/// The environments page: every environment, or the one named.
#[component]
pub fn Environments(only: Option<String>) -> impl IntoView {
    let list = RwSignal::new(None::<Vec<Environment>>);
    let error = RwSignal::new(None::<ApiError>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            match api::environments().await {
                Ok(l) => {
                    list.try_set(Some(l.items));
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    reload();
    let title = only
        .as_ref()
        .map_or("Environments".to_owned(), |n| format!("Environment: {n}"));
    view! {
        <h1>{title}</h1>
        <p class="muted">"Where runs deploy to: promotion order, escalation contacts, dashboards, locks and freeze windows. See them over time on the "<a href="/calendar">"release calendar"</a>"."</p>
        <ErrorNote error=error/>
        {move || list.get().map(|items| {
            let shown: Vec<Environment> = items
                .iter()
                .filter(|e| only.as_ref().is_none_or(|n| *n == e.name))
                .cloned()
                .collect();
            let names: Vec<String> = items.iter().map(|e| e.name.clone()).collect();
            if shown.is_empty() {
                return view! { <p class="muted">"No environment yet: the first run that names one makes it."</p> }.into_any();
            }
            shown.into_iter().map(|e| view! { <EnvironmentCard env=e names=names.clone() reload=reload/> }).collect_view().into_any()
        })}
    }
}

fn contact_line(c: &EscalationContact) -> String {
    format!(
        "{} | {} | {} | {}{}",
        c.level,
        c.name,
        c.role,
        c.reach,
        c.hours
            .as_ref()
            .map(|h| format!(" | {h}"))
            .unwrap_or_default()
    )
}

/// Reads "level | name | role | reach | hours" lines (hours optional).
fn parse_contacts(text: &str) -> Result<Vec<EscalationContact>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('|').map(str::trim).collect();
            match f.as_slice() {
                [level, name, role, reach, rest @ ..] if rest.len() <= 1 => Ok(EscalationContact {
                    level: level
                        .parse()
                        .map_err(|_| format!("“{l}”: the level comes first, 1 to 9"))?,
                    name: (*name).to_owned(),
                    role: (*role).to_owned(),
                    reach: (*reach).to_owned(),
                    hours: rest.first().map(|h| (*h).to_owned()),
                }),
                _ => Err(format!(
                    "“{l}”: write level | name | role | how to reach | hours"
                )),
            }
        })
        .collect()
}

/// Reads "label | URL" lines.
fn parse_links(text: &str) -> Result<Vec<EnvironmentLink>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('|') {
            Some((label, url)) => Ok(EnvironmentLink {
                label: label.trim().to_owned(),
                url: url.trim().to_owned(),
            }),
            None => Err(format!("“{l}”: write label | URL")),
        })
        .collect()
}

#[component]
fn EnvironmentCard(
    env: Environment,
    names: Vec<String>,
    reload: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let session = use_session();
    let admin = move || session.allows(Permission::ManageEnvironments);
    let steer = move || session.allows(Permission::SteerRuns);
    let name = StoredValue::new(env.name.clone());
    let editing = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let heading = format!(
        "{}{}",
        env.name,
        if env.archived { " (archived)" } else { "" }
    );
    let lock = env.lock.clone();
    let promotion = env.promotes_from.as_ref().map(|f| {
        format!(
            "Promoted from {f}{}",
            if env.requires_promotion {
                " (a completed run there is required first)"
            } else {
                ""
            }
        )
    });

    // The record's form, filled from what is stored.
    let description = RwSignal::new(env.description.clone().unwrap_or_default());
    let position = RwSignal::new(env.position.to_string());
    let promotes_from = RwSignal::new(env.promotes_from.clone().unwrap_or_default());
    let requires = RwSignal::new(env.requires_promotion);
    let base_url = RwSignal::new(env.base_url.clone().unwrap_or_default());
    let dashboards = RwSignal::new(
        env.dashboards
            .iter()
            .map(|d| format!("{} | {}", d.label, d.url))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let contacts = RwSignal::new(
        env.contacts
            .iter()
            .map(contact_line)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let archived = RwSignal::new(env.archived);
    let version = env.version;
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = match (
            parse_links(&dashboards.get_untracked()),
            parse_contacts(&contacts.get_untracked()),
        ) {
            (Ok(d), Ok(c)) => PutEnvironmentRequest {
                description: Some(Some(description.get_untracked())),
                position: position.get_untracked().trim().parse().ok(),
                promotes_from: Some(Some(promotes_from.get_untracked()).filter(|p| !p.is_empty())),
                requires_promotion: Some(requires.get_untracked()),
                base_url: Some(Some(base_url.get_untracked())),
                dashboards: Some(d),
                contacts: Some(c),
                archived: Some(archived.get_untracked()),
            },
            (Err(e), _) | (_, Err(e)) => {
                error.set(Some(ApiError::invalid(e)));
                return;
            }
        };
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::put_environment(&name.get_value(), &body, version).await {
                Ok(_) => {
                    editing.try_set(false);
                    reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };

    let reason = RwSignal::new(String::new());
    let until = RwSignal::new(String::new());
    let note = RwSignal::new(String::new());
    let lock_id = StoredValue::new(lock.as_ref().map(|l| l.id.clone()));
    let take_lock = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let until = match format::parse_utc_input(&until.get_untracked()) {
            Ok(u) => u,
            Err(e) => {
                error.set(Some(ApiError::invalid(e)));
                return;
            }
        };
        let body = LockEnvironmentRequest {
            reason: reason.get_untracked(),
            until,
        };
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::lock_environment(&name.get_value(), &body).await {
                Ok(_) => reload(),
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let lift = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(id) = lock_id.get_value() else {
            return;
        };
        let body = UnlockEnvironmentRequest {
            note: note.get_untracked(),
        };
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::unlock_environment(&name.get_value(), &id, &body).await {
                Ok(_) => reload(),
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let others: Vec<String> = names.into_iter().filter(|n| *n != env.name).collect();
    let locked = lock.is_some();
    view! {
        <section class="panel env-card" id=format!("env-{}", env.name) aria-labelledby=format!("env-h-{}", env.name)>
            <h2 id=format!("env-h-{}", env.name)><a href=format!("/environments/{}", env.name)>{heading}</a></h2>
            {env.description.map(|d| view! { <p>{d}</p> })}
            {promotion.map(|p| view! { <p class="muted">{p}</p> })}
            {lock.map(|l| view! {
                <p class="warn lock" role="status">{format!("🔒 Locked by {} since {}{}: {}", l.locked_by, format::time(l.locked_at),
                    l.until.map(|u| format!(" until {}", format::time(u))).unwrap_or_default(), l.reason)}</p>
            })}
            {env.freeze.map(|f| view! {
                <p class="warn freeze" role="status">{format!("❄ Frozen until {}: {}", format::time(f.ends_at), f.reason)}</p>
            })}
            <ErrorNote error=error/>
            {show_when(move || steer() && !locked, move || view! {
                <form class="inline lock-form" on:submit=take_lock>
                    <label>"Lock: reason"<input name="lock-reason" required bind:value=reason/></label>
                    <label>"until (UTC, optional)"<input type="datetime-local" name="lock-until" bind:value=until/></label>
                    <button type="submit">"Lock"</button>
                </form>
            })}
            {show_when(move || steer() && locked, move || view! {
                <form class="inline unlock-form" on:submit=lift>
                    <label>"What was looked at"<input name="unlock-note" required bind:value=note/></label>
                    <button type="submit">"Unlock"</button>
                </form>
            })}
            <h3>"Escalation contacts"</h3>
            <ol class="contacts">
                {env.contacts.iter().map(|c| view! { <li>{contact_line(c)}</li> }).collect_view()}
            </ol>
            <h3>"Dashboards"</h3>
            <ul class="plain">
                {env.dashboards.into_iter().map(|d| view! { <li><a href=d.url target="_blank" rel="noopener noreferrer">{d.label}</a></li> }).collect_view()}
            </ul>
            <Freezes name=env.name.clone() steer=steer/>
            {show_when(admin, move || view! {
                <button type="button" class="edit-env" aria-expanded=move || editing.get().to_string()
                    on:click=move |_| editing.update(|e| *e = !*e)>"Edit the record"</button>
            })}
            {move || editing.get().then(|| view! {
                <form class="env-form" on:submit=save>
                    <label>"Description"<textarea name="description" bind:value=description></textarea></label>
                    <label>"Promotion position (lower comes first)"<input type="number" min="0" max="1000" name="position" bind:value=position/></label>
                    <label>"Promoted from"
                        <select name="promotes_from" on:change=move |ev| promotes_from.set(event_target_value(&ev))>
                            <option value="" selected=move || promotes_from.get().is_empty()>"—"</option>
                            {others.iter().map(|o| { let (value, label, v) = (o.clone(), o.clone(), o.clone()); view! { <option value=value selected=move || promotes_from.get() == v>{label}</option> } }).collect_view()}
                        </select>
                    </label>
                    <label class="check"><input type="checkbox" name="requires_promotion" bind:checked=requires/>"Require a completed run there first"</label>
                    <label>"Base URL (for probes)"<input type="url" name="base_url" bind:value=base_url/></label>
                    <label>"Dashboards, one per line: label | URL"<textarea name="dashboards" bind:value=dashboards></textarea></label>
                    <label>"Escalation contacts, one per line: level | name | role | how to reach | hours"<textarea name="contacts" bind:value=contacts></textarea></label>
                    <label class="check"><input type="checkbox" name="archived" bind:checked=archived/>"Archived (no new runs)"</label>
                    <button type="submit">"Save"</button>
                </form>
            })}
        </section>
    }
}

fn freeze_words(f: &FreezeWindow) -> String {
    let rule = match f.recurrence {
        Recurrence::Once => format!("{} to {}", f.start, f.end),
        Recurrence::Weekly => format!("every week, {} to {} ({})", f.start, f.end, f.time_zone),
        Recurrence::Yearly => format!("every year, {} to {} ({})", f.start, f.end, f.time_zone),
    };
    let next = f
        .next
        .as_ref()
        .map_or(" — will not occur again".to_owned(), |n| {
            format!(
                " — next {} to {}",
                format::time(n.starts_at),
                format::time(n.ends_at)
            )
        });
    format!("{}: {rule}{next}", f.reason)
}

#[component]
fn Freezes(name: String, steer: impl Fn() -> bool + Copy + Send + Sync + 'static) -> impl IntoView {
    let name = StoredValue::new(name);
    let list = RwSignal::new(Vec::<FreezeWindow>::new());
    let error = RwSignal::new(None::<ApiError>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            match api::freezes(&name.get_value()).await {
                Ok(l) => {
                    list.try_set(l.items);
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    reload();
    let reason = RwSignal::new(String::new());
    let recurrence = RwSignal::new("once".to_owned());
    let start = RwSignal::new(String::new());
    let end = RwSignal::new(String::new());
    let tz = RwSignal::new("UTC".to_owned());
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let recurrence = match recurrence.get_untracked().as_str() {
            "weekly" => Recurrence::Weekly,
            "yearly" => Recurrence::Yearly,
            _ => Recurrence::Once,
        };
        let body = CreateFreezeRequest {
            reason: reason.get_untracked(),
            recurrence,
            start: start.get_untracked(),
            end: end.get_untracked(),
            time_zone: Some(tz.get_untracked()),
            until: None,
        };
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::create_freeze(&name.get_value(), &body).await {
                Ok(_) => {
                    reason.try_set(String::new());
                    reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let remove = move |id: String| {
        leptos::task::spawn_local(async move {
            match api::delete_freeze(&name.get_value(), &id).await {
                Ok(()) => reload(),
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    view! {
        <h3>"Freeze windows"</h3>
        <ul class="plain freezes">
            {move || list.get().into_iter().map(|f| {
                let id = f.id.clone();
                view! {
                    <li>
                        {freeze_words(&f)}" "
                        {show_when(steer, move || { let id = id.clone(); view! {
                            <button type="button" class="link" on:click=move |_| remove(id.clone())>"Delete"</button>
                        } })}
                    </li>
                }
            }).collect_view()}
        </ul>
        <ErrorNote error=error/>
        {show_when(steer, move || view! {
            <form class="freeze-form" on:submit=add>
                <label>"Reason"<input name="freeze-reason" required bind:value=reason/></label>
                <label>"Recurs"
                    <select name="recurrence" on:change=move |ev| recurrence.set(event_target_value(&ev))>
                        <option value="once">"once (start and end: 2026-12-20T00:00:00Z)"</option>
                        <option value="weekly">"every week (fri 18:00 to mon 08:00)"</option>
                        <option value="yearly">"every year (12-20 to 01-03)"</option>
                    </select>
                </label>
                <label>"Start"<input name="freeze-start" required bind:value=start/></label>
                <label>"End"<input name="freeze-end" required bind:value=end/></label>
                <label>"Time zone"<input name="freeze-tz" bind:value=tz/></label>
                <button type="submit">"Add the freeze"</button>
            </form>
        })}
    }
}
