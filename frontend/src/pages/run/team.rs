//! The run's team: who is on it, in which role, and adding or removing members.

use super::*;

#[component]
pub(super) fn Team() -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let can_steer = can(Permission::SteerRuns);
    let members = Memo::new(move |_| {
        ctx.run
            .with(|r| r.as_ref().map(|r| r.members.clone()).unwrap_or_default())
    });
    // The form is fetched with the forms when someone opens it.
    let adding = RwSignal::new(false);
    view! {
        <section class="panel team-panel" aria-labelledby="team-h">
            <h2 id="team-h">"Team"</h2>
            {move || {
                let list = members.get();
                if list.is_empty() {
                    return view! { <p class="muted">"Nobody has joined yet."</p> }.into_any();
                }
                view! {
                    <ul class="plain team">
                        {list.into_iter().map(|m| view! {
                            <li>{format!("{} — {} ({})", m.username, m.run_role, format::role(m.role))}</li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            // A closed run's team is history.
            <button type="button" class="add-member" aria-expanded=move || adding.get().to_string()
                hidden=move || !(can_steer() && ctx.run.with(|r| r.as_ref().is_some_and(|r| r.summary.closed_at.is_none())))
                on:click=move |_| adding.update(|a| *a = !*a)>"Add a member"</button>
            {move || adding.get().then(|| crate::pages::lazy_panel(crate::pages::member_form(adding)))}
        </section>
    }
}

/// The team's form (see [`crate::pages::member_form`]): adding a member, the user name
/// chosen from the people who can be put on a team (a list that narrows as one types), and
/// taking a member off the team (asked first). It stays open for the next one.
pub fn member_form(adding: RwSignal<bool>) -> AnyView {
    let ctx = expect_context::<RunCtx>();
    let username = RwSignal::new(String::new());
    let run_role = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ApiError>);
    let people = RwSignal::new(Vec::<shipshape_domain::wire::Person>::new());
    // The member (id and name) whose removal waits for its confirmation.
    let removing = RwSignal::new(None::<(String, String)>);
    leptos::task::spawn_local(async move {
        match api::people().await {
            Ok(list) => {
                people.try_set(list);
            }
            Err(e) => {
                error.try_set(Some(e));
            }
        }
    });
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = AddMemberRequest {
            username: username.get_untracked().trim().to_owned(),
            run_role: run_role.get_untracked().trim().to_owned(),
        };
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::add_member(&ctx.id(), &request).await {
                Ok(_) => {
                    username.try_set(String::new());
                    run_role.try_set(String::new());
                    ctx.reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let remove = move |user_id: String| {
        removing.set(None);
        error.set(None);
        leptos::task::spawn_local(async move {
            if let Err(e) = api::remove_member(&ctx.id(), &user_id).await {
                error.try_set(Some(e));
            }
            ctx.reload();
        });
    };
    let members = move || {
        ctx.run
            .with(|r| r.as_ref().map(|r| r.members.clone()).unwrap_or_default())
    };
    view! {
        <form class="stack" on:submit=add aria-label="Add a team member">
            <label>"User name"<input name="member_username" required list="people" autocomplete="off" bind:value=username/></label>
            <datalist id="people">
                {move || people.get().into_iter().map(|p| view! {
                    <option value=p.username.clone()>{format!("{} ({})", p.username, format::role(p.role))}</option>
                }).collect_view()}
            </datalist>
            <label>"Responsibility"<input name="member_role" required placeholder="deployment lead" bind:value=run_role/></label>
            <ErrorNote error=error/>
            <div class="row">
                <button type="submit">"Add to team"</button>
                <button type="button" on:click=move |_| adding.set(false)>"Done"</button>
            </div>
        </form>
        <ul class="plain remove-members" aria-label="Take someone off the team">
            {move || members().into_iter().map(|m| {
                let (id, name) = (m.user_id.clone(), m.username.clone());
                view! {
                    <li data-member=m.username.clone()>
                        <button type="button" class="danger remove-member" on:click=move |_| removing.set(Some((id.clone(), name.clone())))>
                            {format!("Remove {} from the team", m.username)}
                        </button>
                    </li>
                }
            }).collect_view()}
        </ul>
        {move || removing.get().map(|(id, name)| crate::pages::users::confirm_box(
            format!("Remove {name} from the team? They can no longer change this run's items (unless they steer runs), and items assigned to them keep their assignee until someone changes it."),
            format!("Remove {name}"),
            move || remove(id.clone()),
            move || removing.set(None),
        ))}
    }
    .into_any()
}
