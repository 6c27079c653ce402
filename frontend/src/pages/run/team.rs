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

/// The form that adds a member to the run's team (see [`crate::pages::member_form`]); it
/// stays open for the next one.
pub fn member_form(adding: RwSignal<bool>) -> AnyView {
    let ctx = expect_context::<RunCtx>();
    let username = RwSignal::new(String::new());
    let run_role = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ApiError>);
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
    view! {
        <form class="stack" on:submit=add aria-label="Add a team member">
            <label>"User name"<input name="member_username" required bind:value=username/></label>
            <label>"Responsibility"<input name="member_role" required placeholder="deployment lead" bind:value=run_role/></label>
            <ErrorNote error=error/>
            <div class="row">
                <button type="submit">"Add to team"</button>
                <button type="button" on:click=move |_| adding.set(false)>"Done"</button>
            </div>
        </form>
    }
    .into_any()
}
