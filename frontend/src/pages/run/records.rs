//! After the deploy: the run's issues log and its retrospective (with action items and a
//! proposal to change the template). Each is a panel fetched when opened; both read again
//! whenever the run changes, so what others record appears here too.

use shipshape_domain::proposal::{CreateProposalRequest, DiffOp, TemplateProposal};
use shipshape_domain::records::{
    ActionItem, ActionStatus, CreateActionItemRequest, CreateIssueRequest, Issue, IssueStatus,
    PutRetrospectiveRequest, RetroStatus, Retrospective, Severity, UpdateActionItemRequest,
    UpdateIssueRequest,
};

use super::*;

/// The section that opens the records' panels, and the link to the report.
#[component]
pub(super) fn Records() -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let issues_open = RwSignal::new(false);
    let retro_open = RwSignal::new(false);
    let blocking = Memo::new(move |_| {
        ctx.run.with(|r| {
            r.as_ref().map_or(0, |r| {
                r.transitions
                    .iter()
                    .flat_map(|t| &t.blockers)
                    .filter(|b| matches!(b, Blocker::Issue { .. }))
                    .count()
            })
        })
    });
    view! {
        <section class="panel records" aria-labelledby="records-h">
            <h2 id="records-h">"Issues, retrospective and report"</h2>
            <p><a class="report-link" href=move || format!("/runs/{}/report", ctx.id())>"Run report (release notes and audit record)"</a></p>
            <div id="issues">
                <button type="button" class="issues-toggle" aria-expanded=move || issues_open.get().to_string()
                    on:click=move |_| issues_open.update(|o| *o = !*o)>
                    {move || match blocking.get() {
                        0 => "Issues log".to_owned(),
                        n => format!("Issues log — {n} blocking completion"),
                    }}
                </button>
                {move || issues_open.get().then(|| crate::pages::lazy_panel(crate::pages::issues_panel()))}
            </div>
            <div id="retrospective">
                <button type="button" class="retro-toggle" aria-expanded=move || retro_open.get().to_string()
                    on:click=move |_| retro_open.update(|o| *o = !*o)>"Retrospective"</button>
                {move || retro_open.get().then(|| crate::pages::lazy_panel(crate::pages::retrospective_panel()))}
            </div>
        </section>
    }
}

/// The run's version: records are read again when it changes.
fn run_version(ctx: RunCtx) -> Memo<i64> {
    Memo::new(move |_| {
        ctx.run
            .with(|r| r.as_ref().map_or(0, |r| r.summary.version))
    })
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Sev1 => "sev1 — critical",
        Severity::Sev2 => "sev2 — major",
        Severity::Sev3 => "sev3 — minor",
        Severity::Sev4 => "sev4 — low",
    }
}

/// The issues log: every issue, its status, acceptance, and a form to log one.
pub(crate) fn issues_panel() -> AnyView {
    view! { <IssuesLog/> }.into_any()
}

#[component]
fn IssuesLog() -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let issues = RwSignal::new(None::<Vec<Issue>>);
    let error = RwSignal::new(None::<ApiError>);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::issues(&ctx.id()).await {
                Ok(list) => {
                    issues.try_set(Some(list.items));
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let can_work = can(Permission::WorkItems);
    let closed = Memo::new(move |_| {
        ctx.run
            .with(|r| r.as_ref().is_some_and(|r| r.summary.closed_at.is_some()))
    });
    view! {
        {reload_on(run_version(ctx), load)}
        <div class="issues-log">
            {move || issues.get().map(|list| if list.is_empty() {
                view! { <p class="muted">"No issue logged."</p> }.into_any()
            } else {
                view! {
                    <ul class="plain issue-list">
                        {list.into_iter().map(|i| view! { <IssueRow issue=i/> }).collect_view()}
                    </ul>
                }.into_any()
            })}
            <ErrorNote error=error/>
            {show_when(move || can_work() && !closed.get(), || view! { <NewIssue/> })}
        </div>
    }
}

#[component]
fn IssueRow(issue: Issue) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    let can_work = can(Permission::WorkItems);
    let can_accept = can(Permission::SteerRuns);
    let (id, version, status) = (issue.id.clone(), issue.version, issue.status);
    let id = StoredValue::new(id);
    let save = move |change: UpdateIssueRequest| {
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::update_issue(&ctx.id(), &id.get_value(), &change, version).await {
                Ok(_) => ctx.reload(),
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
            busy.try_set(false);
        });
    };
    let number = issue.number;
    let accepted = issue.acceptance.is_some();
    view! {
        <li class="issue" data-number=number data-status=status.as_str() data-blocks=issue.blocks_completion.to_string()>
            <p>
                <strong>{format!("#{number} ")}</strong>{issue.title.clone()}" "
                <span class="tag">{severity_word(issue.severity)}</span>" "
                <span class="tag">{status.as_str()}</span>
                {issue.blocks_completion.then(|| view! { <span class="badge warn">"blocks completion"</span> })}
                {issue.owner.clone().map(|o| view! { <span class="muted">{format!(" · owner {o}")}</span> })}
            </p>
            {issue.notes.clone().map(|n| view! { <p class="note">{n}</p> })}
            {issue.acceptance.clone().map(|a| view! {
                <p class="muted">{format!("Accepted by {} — {}", a.by, a.reason)}</p>
            })}
            {show_when(can_work, move || view! {
                <div class="row">
                    <label class="inline">"Status"
                        <select class="issue-status" aria-label=format!("Status of issue #{number}")
                            disabled=move || busy.get()
                            on:change=move |ev| {
                                if let Some(to) = IssueStatus::parse(&event_target_value(&ev)) {
                                    save(UpdateIssueRequest { status: Some(to), ..Default::default() });
                                }
                            }>
                            {IssueStatus::ALL.iter().map(|s| {
                                let s = *s;
                                view! { <option value=s.as_str() selected=s == status>{s.as_str()}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                </div>
            })}
            {show_when(move || can_accept() && !accepted && status != IssueStatus::Resolved, move || view! {
                <div class="row accept">
                    <input type="text" class="accept-reason" placeholder="Why the run may complete with it"
                        aria-label=format!("Reason to accept issue #{number}")
                        prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev))/>
                    <button type="button" class="accept-issue" disabled=move || busy.get() || reason.with(|r| r.trim().is_empty())
                        on:click=move |_| save(UpdateIssueRequest {
                            accepted_reason: Some(Some(reason.get_untracked())),
                            ..Default::default()
                        })>"Accept"</button>
                </div>
            })}
            <ErrorNote error=error/>
        </li>
    }
}

#[component]
fn NewIssue() -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let title = RwSignal::new(String::new());
    let severity = RwSignal::new(Severity::Sev3);
    let owner = RwSignal::new(String::new());
    let notes = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let members = Memo::new(move |_| {
        ctx.run.with(|r| {
            r.as_ref()
                .map(|r| {
                    r.members
                        .iter()
                        .map(|m| m.username.clone())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        error.set(None);
        let body = CreateIssueRequest {
            title: title.get_untracked(),
            severity: severity.get_untracked(),
            status: None,
            owner: Some(owner.get_untracked()).filter(|o| !o.is_empty()),
            item_ids: Vec::new(),
            notes: Some(notes.get_untracked()).filter(|n| !n.trim().is_empty()),
        };
        leptos::task::spawn_local(async move {
            match api::create_issue(&ctx.id(), &body).await {
                Ok(_) => {
                    title.try_set(String::new());
                    notes.try_set(String::new());
                    ctx.reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
            busy.try_set(false);
        });
    };
    view! {
        <form class="new-issue" on:submit=submit>
            <h3>"Log an issue"</h3>
            <label>"What went wrong"
                <input type="text" name="issue-title" required prop:value=move || title.get()
                    on:input=move |ev| title.set(event_target_value(&ev))/>
            </label>
            <label>"Severity"
                <select name="issue-severity" on:change=move |ev| {
                    if let Some(s) = Severity::parse(&event_target_value(&ev)) { severity.set(s); }
                }>
                    {Severity::ALL.iter().map(|s| {
                        let s = *s;
                        view! { <option value=s.as_str() selected=move || severity.get() == s>{severity_word(s)}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"Owner"
                <select name="issue-owner" on:change=move |ev| owner.set(event_target_value(&ev))>
                    <option value="">"nobody yet"</option>
                    {move || members.get().into_iter().map(|m| view! { <option value=m.clone()>{m.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Notes"
                <textarea name="issue-notes" rows="3" prop:value=move || notes.get()
                    on:input=move |ev| notes.set(event_target_value(&ev))></textarea>
            </label>
            <button type="submit" disabled=move || busy.get()>"Log issue"</button>
            <ErrorNote error=error/>
        </form>
    }
}

/// The retrospective: its text, publishing it, its action items, and a template proposal.
pub(crate) fn retrospective_panel() -> AnyView {
    view! { <RetroPanel/> }.into_any()
}

#[component]
fn RetroPanel() -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let retro = RwSignal::new(None::<Retrospective>);
    let error = RwSignal::new(None::<ApiError>);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::retrospective(&ctx.id()).await {
                Ok(r) => {
                    retro.try_set(Some(r));
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let finished = Memo::new(move |_| {
        ctx.run
            .with(|r| r.as_ref().is_some_and(|r| r.summary.status.is_terminal()))
    });
    // The form is built once the retrospective is read, with its text.
    let loaded = Memo::new(move |_| retro.with(Option::is_some));
    view! {
        {reload_on(run_version(ctx), load)}
        <div class="retrospective">
            {move || (!finished.get()).then(|| view! {
                <p class="muted">"The retrospective is written once the run is finished (completed, rolled back or aborted)."</p>
            })}
            {move || (finished.get() && loaded.get()).then(|| view! { <RetroForm retro=retro/> })}
            <ErrorNote error=error/>
        </div>
    }
}

#[component]
fn RetroForm(retro: RwSignal<Option<Retrospective>>) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let first = retro.get_untracked();
    let field = |f: fn(&Retrospective) -> Option<String>| {
        RwSignal::new(first.as_ref().and_then(f).unwrap_or_default())
    };
    let went_well = field(|r| r.went_well.clone());
    let went_badly = field(|r| r.went_badly.clone());
    let root_cause = field(|r| r.root_cause.clone());
    let lessons = field(|r| r.lessons.clone());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let saved = RwSignal::new(None::<&'static str>);
    let can_work = can(Permission::WorkItems);
    let closed = Memo::new(move |_| {
        ctx.run
            .with(|r| r.as_ref().is_some_and(|r| r.summary.closed_at.is_some()))
    });
    let rolled_back = Memo::new(move |_| {
        ctx.run.with(|r| {
            r.as_ref()
                .is_some_and(|r| r.summary.status.has_rolled_back())
        })
    });
    let status =
        Memo::new(move |_| retro.with(|r| r.as_ref().map_or(RetroStatus::Draft, |r| r.status)));
    // The version the form's text was read from: a save names it, so a save over someone
    // else's newer text is refused (412), never silently written over it. Until the user
    // types, newer text read in replaces the form's.
    let base = RwSignal::new(first.as_ref().map_or(0, |r| r.version));
    let dirty = RwSignal::new(false);
    let follow = move || {
        retro.with(|r| {
            if let Some(r) = r
                && r.version != base.get_untracked()
                && !dirty.get_untracked()
            {
                went_well.set(r.went_well.clone().unwrap_or_default());
                went_badly.set(r.went_badly.clone().unwrap_or_default());
                root_cause.set(r.root_cause.clone().unwrap_or_default());
                lessons.set(r.lessons.clone().unwrap_or_default());
                base.set(r.version);
            }
        });
    };
    let save = move |publish: bool| {
        busy.set(true);
        error.set(None);
        saved.set(None);
        let text = |s: RwSignal<String>| Some(s.get_untracked()).filter(|t| !t.trim().is_empty());
        let body = PutRetrospectiveRequest {
            held_at: retro.with_untracked(|r| r.as_ref().and_then(|r| r.held_at)),
            went_well: text(went_well),
            went_badly: text(went_badly),
            root_cause: text(root_cause),
            lessons: text(lessons),
            status: publish.then_some(RetroStatus::Published),
        };
        let version = base.get_untracked();
        leptos::task::spawn_local(async move {
            match api::put_retrospective(&ctx.id(), &body, version).await {
                Ok(r) => {
                    base.try_set(r.version);
                    dirty.try_set(false);
                    retro.try_set(Some(r));
                    saved.try_set(Some(if publish { "Published." } else { "Saved." }));
                    ctx.reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
            busy.try_set(false);
        });
    };
    let editable = move || can_work() && !closed.get();
    let area = move |label: &'static str, name: &'static str, value: RwSignal<String>| {
        view! {
            <label>{label}
                <textarea name=name rows="3" prop:value=move || value.get() disabled=move || !editable()
                    on:input=move |ev| { dirty.set(true); value.set(event_target_value(&ev)); }></textarea>
            </label>
        }
    };
    view! {
        {follow}
        <p class="retro-status" data-status=move || status.get().as_str()>
            {move || match status.get() {
                RetroStatus::Draft => "Draft: publishing it completes the checklist's retrospective items.",
                RetroStatus::Published => "Published: the checklist's retrospective items are done, with the run report as their evidence.",
            }}
        </p>
        {area("What went well", "went-well", went_well)}
        {area("What did not", "went-badly", went_badly)}
        <label>{move || if rolled_back.get() { "Root cause (required: the run rolled back)" } else { "Root cause" }}
            <textarea name="root-cause" rows="3" prop:value=move || root_cause.get() disabled=move || !editable()
                on:input=move |ev| { dirty.set(true); root_cause.set(event_target_value(&ev)); }></textarea>
        </label>
        {area("Lessons learned (required to publish)", "lessons", lessons)}
        {show_when(editable, move || view! {
            <div class="row">
                <button type="button" class="save-retro" disabled=move || busy.get() on:click=move |_| save(false)>"Save draft"</button>
                <button type="button" class="publish-retro" disabled=move || busy.get() on:click=move |_| save(true)>
                    {move || if status.get() == RetroStatus::Published { "Save" } else { "Publish" }}
                </button>
            </div>
        })}
        <p role="status" class="saved">{move || saved.get()}</p>
        <ErrorNote error=error/>
        <h3>"Action items"</h3>
        {move || retro.with(|r| r.as_ref().map(|r| r.action_items.clone()).unwrap_or_default()).into_iter().map(|a| view! { <ActionRow action=a retro=retro/> }).collect_view()}
        {show_when(can_work, move || view! { <NewAction retro=retro/> })}
        {show_when(can(Permission::SteerRuns), || view! { <Propose/> })}
    }
}

#[component]
fn ActionRow(action: ActionItem, retro: RwSignal<Option<Retrospective>>) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let error = RwSignal::new(None::<ApiError>);
    let can_work = can(Permission::WorkItems);
    let (id, version, status) = (
        StoredValue::new(action.id.clone()),
        action.version,
        action.status,
    );
    let title = action.title.clone();
    let set_status = move |to: ActionStatus| {
        let body = UpdateActionItemRequest {
            status: Some(to),
            ..Default::default()
        };
        leptos::task::spawn_local(async move {
            match api::update_action(&ctx.id(), &id.get_value(), &body, version).await {
                Ok(updated) => {
                    retro.try_update(|r| {
                        if let Some(slot) = r
                            .as_mut()
                            .and_then(|r| r.action_items.iter_mut().find(|a| a.id == updated.id))
                        {
                            *slot = updated;
                        }
                    });
                    ctx.reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    view! {
        <div class="action-item" data-status=status.as_str() data-overdue=action.overdue.to_string()>
            <span>{action.title.clone()}</span>
            <span class="muted">{format!(" · {} · due {}", action.assignee, action.due_on)}</span>
            {action.overdue.then(|| view! { <span class="badge warn">"overdue"</span> })}
            {show_when(can_work, move || view! {
                <select class="action-status" aria-label=format!("Status of the action “{title}”")
                    on:change=move |ev| {
                        if let Some(s) = ActionStatus::parse(&event_target_value(&ev)) { set_status(s); }
                    }>
                    {ActionStatus::ALL.iter().map(|s| {
                        let s = *s;
                        view! { <option value=s.as_str() selected=s == status>{s.as_str()}</option> }
                    }).collect_view()}
                </select>
            })}
            <ErrorNote error=error/>
        </div>
    }
}

#[component]
fn NewAction(retro: RwSignal<Option<Retrospective>>) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let title = RwSignal::new(String::new());
    let assignee = RwSignal::new(String::new());
    let due = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(due_on) = shipshape_domain::timestamp::parse_date(&due.get_untracked()) else {
            error.set(Some(ApiError::invalid("Give a due date.")));
            return;
        };
        busy.set(true);
        error.set(None);
        let body = CreateActionItemRequest {
            title: title.get_untracked(),
            assignee: assignee.get_untracked(),
            due_on,
        };
        leptos::task::spawn_local(async move {
            match api::create_action(&ctx.id(), &body).await {
                Ok(a) => {
                    retro.try_update(|r| {
                        if let Some(r) = r.as_mut() {
                            r.action_items.push(a);
                        }
                    });
                    title.try_set(String::new());
                    ctx.reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
            busy.try_set(false);
        });
    };
    view! {
        <form class="new-action" on:submit=submit>
            <label>"Action"
                <input type="text" name="action-title" required prop:value=move || title.get()
                    on:input=move |ev| title.set(event_target_value(&ev))/>
            </label>
            <label>"Assignee (user name)"
                <input type="text" name="action-assignee" required prop:value=move || assignee.get()
                    on:input=move |ev| assignee.set(event_target_value(&ev))/>
            </label>
            <label>"Due"
                <input type="date" name="action-due" required prop:value=move || due.get()
                    on:input=move |ev| due.set(event_target_value(&ev))/>
            </label>
            <button type="submit" disabled=move || busy.get()>"Add action item"</button>
            <ErrorNote error=error/>
        </form>
    }
}

/// A release manager proposes a change to the run's template: its latest Markdown, edited.
#[component]
fn Propose() -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let open = RwSignal::new(false);
    let markdown = RwSignal::new(String::new());
    let summary = RwSignal::new(String::new());
    let base = RwSignal::new(0);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let made = RwSignal::new(None::<TemplateProposal>);
    let template_id = move || {
        ctx.run.with_untracked(|r| {
            r.as_ref()
                .map(|r| r.summary.template_id.clone())
                .unwrap_or_default()
        })
    };
    let start = move |_| {
        open.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::template_markdown(&template_id()).await {
                Ok((text, version)) => {
                    base.try_set(version);
                    markdown.try_set(text);
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        error.set(None);
        let body = CreateProposalRequest {
            base_version: base.get_untracked(),
            summary: summary.get_untracked(),
            markdown: markdown.get_untracked(),
        };
        leptos::task::spawn_local(async move {
            match api::propose(&ctx.id(), &body).await {
                Ok(p) => {
                    made.try_set(Some(p));
                    open.try_set(false);
                    ctx.reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
            busy.try_set(false);
        });
    };
    view! {
        <h3>"Carry the lessons into the checklist"</h3>
        {move || (!open.get()).then(|| view! {
            <button type="button" class="propose" on:click=start>"Propose a template change"</button>
        })}
        {move || open.get().then(|| view! {
            <form class="proposal-form" on:submit=submit>
                <label>"What it changes and why"
                    <input type="text" name="proposal-summary" required prop:value=move || summary.get()
                        on:input=move |ev| summary.set(event_target_value(&ev))/>
                </label>
                <label>{move || format!("The template (version {}), as Markdown: edit it", base.get())}
                    <textarea name="proposal-markdown" rows="16" prop:value=move || markdown.get()
                        on:input=move |ev| markdown.set(event_target_value(&ev))></textarea>
                </label>
                <button type="submit" disabled=move || busy.get()>"Send the proposal"</button>
            </form>
        })}
        {move || made.get().map(|p| view! {
            <p class="proposal-made" role="status">{format!("Proposed: {} — waiting for an administrator.", p.summary)}</p>
            {diff_view(&p)}
        })}
        <ErrorNote error=error/>
    }
}

/// A proposal's diff, changed lines only with two lines of context.
pub(crate) fn diff_view(p: &TemplateProposal) -> impl IntoView + use<> {
    let keep: Vec<bool> = (0..p.diff.len())
        .map(|i| {
            let lo = i.saturating_sub(2);
            let hi = (i + 3).min(p.diff.len());
            p.diff[lo..hi].iter().any(|l| l.op != DiffOp::Same)
        })
        .collect();
    let lines: Vec<(DiffOp, String)> = p
        .diff
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(l, _)| (l.op, l.text.clone()))
        .collect();
    view! {
        <pre class="diff">
            {lines.into_iter().map(|(op, text)| {
                let (class, mark) = match op {
                    DiffOp::Same => ("same", "  "),
                    DiffOp::Add => ("add", "+ "),
                    DiffOp::Remove => ("remove", "- "),
                };
                view! { <span class=class>{format!("{mark}{text}\n")}</span> }
            }).collect_view()}
        </pre>
    }
}
