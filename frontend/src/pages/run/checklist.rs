//! The checklist: parts, sections and item rows, each edited inline with `If-Match`; a
//! conflict shows the other person's values and a way to re-apply yours.

use super::*;

#[component]
pub(super) fn Checklist() -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    // Keyed: a break-glass override adds a part (and then items to it) while people work;
    // the rows already shown stay as they are, each following its own item, so an open
    // editor survives every change streamed in.
    let parts = Memo::new(move |_| {
        ctx.run.with(|r| {
            r.as_ref()
                .map(|r| {
                    r.parts
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (i, p.title.clone(), p.sections.len()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    view! {
    <section class="panel checklist" id="checklist" tabindex="-1" aria-labelledby="checklist-h" data-filter="all">
        <h2 id="checklist-h">"Checklist"</h2>
        <p class="muted none-shown">"No item is shown: none matches the filter chosen above."</p>
        <For each=move || parts.get() key=|p| p.clone() let:part>
            <div class="part">
                <h3>{part.1.clone()}</h3>
                {(0..part.2).map(|s| view! { <SectionView part=part.0 section=s/> }).collect_view()}
            </div>
        </For>
        </section>
    }
}

#[component]
pub(super) fn SectionView(part: usize, section: usize) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let title = ctx.run.with_untracked(|r| {
        r.as_ref()
            .and_then(|r| r.parts.get(part)?.sections.get(section))
            .map(|s| s.title.clone())
            .unwrap_or_default()
    });
    let ids = Memo::new(move |_| {
        ctx.run.with(|r| {
            r.as_ref()
                .and_then(|r| r.parts.get(part)?.sections.get(section))
                .map(|s| s.items.iter().map(|i| i.id.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    });
    view! {
        <div class="section">
            <h4>{title}</h4>
            <ul class="items">
                <For each=move || ids.get() key=|id| id.clone() let:id>
                    <ItemRow item_id=id/>
                </For>
            </ul>
        </div>
    }
}

/// Where a row's latest save stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saving {
    Idle,
    /// A status reached with the keys, waiting for Enter or "Set".
    Confirm(ItemStatus),
    Busy,
    /// No answer after a few seconds.
    Slow,
    Saved,
    /// Refused or not answered (the reason shows below); the status to retry, when the
    /// change was one.
    Failed(Option<ItemStatus>),
}

/// Shows the status the server holds in a row's control, whatever it was set to.
fn revert(select: NodeRef<leptos::html::Select>, status: Signal<ItemStatus>) {
    if let Some(Some(el)) = select.try_get_untracked()
        && let Some(held) = status.try_get_untracked()
    {
        el.set_value(held.as_str());
    }
}

/// Which part of an item row a save came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Status,
    Details,
    Skip,
    Reapply,
}

/// An edit that met a newer version: what the user wanted and what is there now.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    mine: UpdateItemRequest,
    theirs: RunItem,
}

#[component]
pub(super) fn ItemRow(item_id: String) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let session = use_session();
    let item = {
        let id = item_id.clone();
        Memo::new(move |_| {
            ctx.run
                .with(|r| r.as_ref().and_then(|r| find_item(r, &id)).cloned())
        })
    };
    let Some(first) = item.get_untracked() else {
        return ().into_any();
    };
    let reference = first.reference.clone();
    let gate = first.gate;
    let kind = first.kind;

    let status =
        Signal::derive(move || item.with(|i| i.as_ref().map_or(ItemStatus::Pending, |i| i.status)));
    let version = move || item.with_untracked(|i| i.as_ref().map_or(0, |i| i.version));
    // Whether the person signed in may change the item now, and may sign it off: the rules
    // the server applies, over the run as it stands.
    let editable = Memo::new(move |_| {
        let user = session.user();
        ctx.run.with(|r| {
            item.with(|i| match (r, i, &user) {
                (Some(r), Some(i), Some(u)) => may_work(r, i, u),
                _ => false,
            })
        })
    });
    let may_sign = move || {
        let user = session.user();
        ctx.run.with(|r| {
            item.with(|i| match (r, i, &user) {
                (Some(r), Some(i), Some(u)) => {
                    u.role.allows(Permission::SignOff)
                        && i.signoff_refusal(&r.summary, u, None).is_none()
                }
                _ => false,
            })
        })
    };
    let me = move || session.user().map(|u| u.username);

    let error = RwSignal::new(None::<ApiError>);
    let conflict = RwSignal::new(None::<Conflict>);
    let busy = RwSignal::new(false);
    // Where the row's latest save stands, said beside its controls.
    let saving = RwSignal::new(Saving::Idle);
    // Whether the status control was last changed from the keyboard (that waits for Enter).
    let keyed = StoredValue::new(false);
    // The details editor: the version it was opened on (its fields are the editor's own).
    let editing = RwSignal::new(None::<RunItem>);
    let skipping = RwSignal::new(false);
    // The version the skip was chosen on: the reason takes a while to type.
    let skip_base = RwSignal::new(0_i64);
    // The sign-off form (a panel, fetched when opened).
    let signing = RwSignal::new(false);
    let select = NodeRef::<leptos::html::Select>::new();

    let item_id = StoredValue::new(item_id);
    // A save settles only the part of the row it came from: a status change leaves an open
    // editor, a typed skip reason or a pending conflict as they are.
    let save = move |change: UpdateItemRequest, base: i64, from: Source| {
        // The item the change was made on, when it is known: someone else's change to other
        // fields of it is merged rather than shown as a conflict.
        let before = match from {
            Source::Details => editing.get_untracked(),
            _ => item.get_untracked().filter(|i| i.version == base),
        };
        busy.set(true);
        error.set(None);
        saving.set(Saving::Busy);
        // A save that has not answered in a few seconds says so.
        set_timeout(
            move || {
                saving.try_update(|s| {
                    if *s == Saving::Busy {
                        *s = Saving::Slow;
                    }
                });
            },
            std::time::Duration::from_secs(3),
        );
        leptos::task::spawn_local(async move {
            let id = item_id.try_get_value().unwrap_or_default();
            let mut result = api::update_item(&ctx.id(), &id, &change, base).await;
            let mut theirs = None;
            if matches!(&result, Err(e) if e.is_conflict()) {
                // Settled by code that comes with the panels: merged with a change to other
                // fields, or a conflict to show.
                match crate::pages::settle(ctx.id(), id.clone(), change.clone(), before).await {
                    Ok(settling) => (result, theirs) = settling.await,
                    Err(_) => theirs = api::get_item(&ctx.id(), &id).await.ok(),
                }
            }
            match result {
                Ok(updated) => {
                    match from {
                        Source::Status => {}
                        Source::Details => {
                            editing.try_set(None);
                        }
                        Source::Skip => {
                            skipping.try_set(false);
                        }
                        Source::Reapply => {
                            conflict.try_set(None);
                            editing.try_set(None);
                            skipping.try_set(false);
                        }
                    }
                    ctx.accept_item(updated);
                    ctx.reload();
                    saving.try_set(Saving::Saved);
                }
                Err(e) if e.is_conflict() => {
                    saving.try_set(Saving::Idle);
                    match theirs {
                        Some(theirs) => {
                            ctx.accept_item(theirs.clone());
                            conflict.try_set(Some(Conflict {
                                mine: change,
                                theirs,
                            }));
                        }
                        None => {
                            error.try_set(Some(e));
                        }
                    }
                    ctx.reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                    // A status can be retried from here; the editor and the skip reason
                    // stay open with their own buttons.
                    saving.try_set(Saving::Failed(
                        (from == Source::Status).then_some(change.status).flatten(),
                    ));
                }
            }
            // Show the status the server holds, whatever the select was set to.
            revert(select, status);
            busy.try_set(false);
        });
    };

    let set_status = move |new: ItemStatus| {
        if new == ItemStatus::Skipped {
            skip_base.set(version());
            skipping.set(true);
            return;
        }
        skipping.set(false);
        save(
            UpdateItemRequest {
                status: Some(new),
                ..UpdateItemRequest::default()
            },
            version(),
            Source::Status,
        );
    };
    // A status picked with the mouse is saved at once; one reached with the keys (arrows,
    // type-ahead) waits for Enter or "Set", and focus stays on the control.
    let on_status = move |ev: leptos::ev::Event| {
        let Some(new) = ItemStatus::parse(&event_target_value(&ev)) else {
            return;
        };
        if busy.get_untracked() {
            revert(select, status);
        } else if std::mem::take(&mut *keyed.write_value()) {
            saving.set(Saving::Confirm(new));
        } else {
            set_status(new);
        }
    };
    let on_key =
        move |ev: leptos::ev::KeyboardEvent| match (ev.key().as_str(), saving.get_untracked()) {
            ("Enter", Saving::Confirm(new)) => {
                ev.prevent_default();
                set_status(new);
            }
            ("Escape", Saving::Confirm(_)) => {
                revert(select, status);
                saving.set(Saving::Idle);
            }
            ("Tab" | "Enter" | "Escape" | "Shift", _) => {}
            _ => keyed.set_value(true),
        };
    let open_editor = move |_| {
        if let Some(current) = item.get_untracked() {
            editing.set(Some(current));
        }
    };
    // The panels a row opens now and then (the editor, the skip reason, a conflict) are
    // fetched with the forms when first opened; they save through the row.
    let save = Callback::new(
        move |(change, base, from): (UpdateItemRequest, i64, Source)| save(change, base, from),
    );
    let claim = move |_| {
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let id = item_id.try_get_value().unwrap_or_default();
            match api::claim(&ctx.id(), &id).await {
                Ok(updated) => {
                    ctx.accept_item(updated);
                    ctx.reload();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
            busy.set(false);
        });
    };
    let r = reference.clone();
    // Buttons repeated on every item say which item they act on.
    let claim_label = StoredValue::new(format!("Assign to me: {reference}"));
    let edit_label = StoredValue::new(format!("Edit details of {reference}"));
    let sign_label = StoredValue::new(format!("Sign off {reference}"));
    let sign_ref = StoredValue::new(reference.clone());
    view! {
        <li class="item" id=format!("item-{reference}") data-ref=reference.clone() data-id=item_id.get_value() tabindex="-1"
            data-status=move || status.get().as_str()
            class:na=move || item.with(|i| i.as_ref().is_some_and(|i| !i.applicable))>
            // Shown while picking several (see the cockpit).
            <button type="button" class="pick" id=format!("pick-{reference}") aria-pressed="false" aria-label=format!("Select {reference}")></button>
            // Shown while picking several (the checklist says so, the stylesheet shows it).
            <div class="item-head">
                <span class="ref">{reference.clone()}</span>
                <span class="title">{first.title.clone()}</span>
                <ItemStatusBadge status=status/>
                <span class="tags">
                    <span class="tag" title="The transition this item must be finished before">{format!("before {}", gate_word(gate))}</span>
                    // One kind of element for every plain tag.
                    {[
                        (!first.required).then(|| "optional".to_owned()),
                        (kind == ItemKind::Approval).then(|| "approval".to_owned()),
                        (kind == ItemKind::Probe).then(|| "checked by the server".to_owned()),
                        first.evidence_required.then(|| "evidence required".to_owned()),
                        first.role.map(|r| format!("for {}", format::role(r))),
                        match first.applies {
                            Applicability::Always => None,
                            Applicability::AfterRollback => Some("only after a rollback".to_owned()),
                            Applicability::AfterSuccess => Some("only after a successful deployment".to_owned()),
                        },
                    ].into_iter().flatten().map(|t| view! { <span class="tag">{t}</span> }).collect_view()}
                    {first.record.map(|r| {
                        let (href, text) = match r {
                            RecordKind::Issues => ("#issues", "kept in the issues log"),
                            RecordKind::Retrospective => ("#retrospective", "done by publishing the retrospective"),
                            RecordKind::Contacts => ("#environment", "the environment's escalation contacts"),
                        };
                        view! { <a class="tag record-link" href=href>{text}</a> }
                    })}
                </span>
            </div>
            {first.guidance.clone().map(|g| view! { <p class="guidance">{g}</p> })}
            <p class="item-meta">
                {move || item.get().map(|i| view! {
                    <span>"Assignee: "<strong class="assignee">{i.assignee.clone().unwrap_or_else(|| "nobody".into())}</strong></span>
                    {i.note.clone().map(|n| view! { <span>" · Note: "<span class="note">{n}</span></span> })}
                    {i.evidence.iter().map(|l| view! { <span>" · "<a class="evidence" href=l.url.clone() target="_blank" rel="noopener noreferrer">{l.label.clone()}</a></span> }).collect_view()}
                    {i.skip_reason.clone().map(|s| view! { <span>" · Skipped because: "{s}</span> })}
                    {i.updated_by.clone().map(|by| view! { <span class="muted">{format!(" · changed by {by}{}", i.updated_at.map(|t| format!(" at {}", format::time(t))).unwrap_or_default())}</span> })}
                })}
            </p>
            {show_when(move || editable.get(), move || view! {
                <div class="item-controls">
                    <label class="inline">"Status"
                        <select node_ref=select name="status" aria-label=format!("Status of {r}")
                            prop:value=move || status.get().as_str()
                            aria-busy=move || busy.get().to_string()
                            on:change=on_status on:keydown=on_key on:pointerdown=move |_| keyed.set_value(false)>
                            // Only the statuses a person may set on this kind of item (the
                            // domain's rule); in words, so typing a letter picks one.
                            // `selected` on the options: the select's value is set before
                            // its options exist.
                            {ItemStatus::ALL.iter().map(|s| {
                                let s = *s;
                                view! {
                                    <option value=s.as_str() selected=move || status.get() == s
                                        hidden=move || status_by_hand(kind, first.record, status.get(), s).is_err()>{format::item_status_word(s)}</option>
                                }
                            }).collect_view()}
                        </select>
                    </label>
                    <button type="button" class="claim" aria-label=move || claim_label.get_value() disabled=move || busy.get() on:click=claim
                        hidden=move || item.with(|i| i.as_ref().map(|i| i.assignee.clone())) == Some(me())>"Assign to me"</button>
                    <button type="button" class="edit" aria-label=move || edit_label.get_value() aria-expanded=move || editing.with(Option::is_some).to_string()
                        on:click=open_editor>"Edit details"</button>
                    <span class="save-state" role="status">
                        {move || match saving.get() {
                            Saving::Idle => String::new(),
                            Saving::Confirm(s) => format!("Press Enter or Set to mark it {}", format::item_status_word(s)),
                            Saving::Busy => "Saving…".into(),
                            Saving::Slow => "Still saving: no answer yet after 3 seconds…".into(),
                            Saving::Saved => "Saved ✓".into(),
                            Saving::Failed(_) => "Not saved:".into(),
                        }}
                    </span>
                    <button type="button" class="state-action" hidden=move || !matches!(saving.get(), Saving::Confirm(_) | Saving::Failed(Some(_)))
                        on:click=move |_| if let Saving::Confirm(s) | Saving::Failed(Some(s)) = saving.get_untracked() { set_status(s) }>
                        {move || if matches!(saving.get(), Saving::Failed(_)) { "Retry" } else { "Set" }}
                    </button>
                </div>
            })}
            {move || skipping.get().then(|| crate::pages::lazy_panel(crate::pages::item_panel(ItemPanel::Skip(SkipPanel {
                required: first.required, skipping, skip_base, busy, select, status, save,
            }))))}
            {move || editing.with(Option::is_some).then(|| crate::pages::lazy_panel(crate::pages::item_panel(ItemPanel::Details(DetailsPanel {
                editing, busy, save,
            }))))}
            {(kind == ItemKind::Probe).then(|| view! { <Probe item=item editable=editable/> })}
            {(kind == ItemKind::Approval).then(|| view! {
                <div class="approval">
                    {move || item.get().and_then(|i| i.approval).map(|a| view! {
                        <p>
                            <strong class="approval-state">{format::approval_state(&a.state)}</strong>
                            {format!(" — needs one sign-off each from: {}", a.approvers.iter().map(|r| format::role(*r)).collect::<Vec<_>>().join(", "))}
                            {(!a.missing.is_empty()).then(|| format!("; still missing: {}", a.missing.iter().map(|r| format::role(*r)).collect::<Vec<_>>().join(", ")))}
                        </p>
                        <ul class="signoffs">
                            {a.signoffs.iter().map(|s| view! {
                                <li>{format!("{} {} ({}) at {}{}",
                                    if s.verdict == Verdict::Approve { "✓ approved by" } else { "✗ rejected by" },
                                    s.username, format::role(s.role), format::time(s.signed_at),
                                    s.comment.as_ref().map(|c| format!(": “{c}”")).unwrap_or_default())}</li>
                            }).collect_view()}
                        </ul>
                    })}
                    <button type="button" class="sign-off" aria-label=sign_label.get_value()
                        hidden=move || !may_sign()
                        aria-expanded=move || signing.get().to_string()
                        on:click=move |_| signing.update(|s| *s = !*s)>"Sign off"</button>
                    {move || signing.get().then(|| crate::pages::lazy_panel(crate::pages::item_panel(ItemPanel::Signoff(SignoffPanel {
                        ctx, item_id: item_id.get_value(), reference: sign_ref.get_value(), signing, error,
                    }))))}
                </div>
            })}
            {move || conflict.with(Option::is_some).then(|| crate::pages::lazy_panel(crate::pages::item_panel(ItemPanel::Conflict(ConflictPanel {
                conflict, editing, skipping, busy, save,
            }))))}
            <ErrorNote error=error/>
        </li>
    }
    .into_any()
}

/// What became of an item change that met a newer version: the change's result, and the
/// item as it now is when the change could not be merged.
pub(crate) type Settled = (Result<RunItem, ApiError>, Option<RunItem>);

/// Re-reads an item whose change met a newer version; when the other change left the fields
/// of this one alone, applies this one on top of it (the server still checks the version).
pub(crate) async fn settle(
    run_id: String,
    item_id: String,
    change: UpdateItemRequest,
    before: Option<RunItem>,
) -> Settled {
    let now = match api::get_item(&run_id, &item_id).await {
        Ok(now) => now,
        Err(e) => return (Err(e), None),
    };
    if !before
        .as_ref()
        .is_some_and(|b| change.is_disjoint_from(b, &now))
    {
        let conflict = ApiError {
            status: 412,
            problem: None,
        };
        return (Err(conflict), Some(now));
    }
    match api::update_item(&run_id, &item_id, &change, now.version).await {
        Err(e) if e.is_conflict() => (Err(e), api::get_item(&run_id, &item_id).await.ok()),
        result => (result, None),
    }
}

/// What a row's lazily fetched panel needs: the row's state and its save.
#[derive(Debug)]
pub enum ItemPanel {
    Details(DetailsPanel),
    Skip(SkipPanel),
    Conflict(ConflictPanel),
    Signoff(SignoffPanel),
}

type Save = Callback<(UpdateItemRequest, i64, Source)>;

#[derive(Debug)]
pub struct DetailsPanel {
    editing: RwSignal<Option<RunItem>>,
    busy: RwSignal<bool>,
    save: Save,
}

#[derive(Debug)]
pub struct SkipPanel {
    required: bool,
    skipping: RwSignal<bool>,
    skip_base: RwSignal<i64>,
    busy: RwSignal<bool>,
    select: NodeRef<leptos::html::Select>,
    status: Signal<ItemStatus>,
    save: Save,
}

#[derive(Debug)]
pub struct ConflictPanel {
    conflict: RwSignal<Option<Conflict>>,
    editing: RwSignal<Option<RunItem>>,
    skipping: RwSignal<bool>,
    busy: RwSignal<bool>,
    save: Save,
}

/// A row's panel (see [`crate::pages::item_panel`]).
pub fn item_panel(panel: ItemPanel) -> AnyView {
    match panel {
        ItemPanel::Details(p) => details(p).into_any(),
        ItemPanel::Skip(p) => skip(p).into_any(),
        ItemPanel::Conflict(p) => conflict(p).into_any(),
        ItemPanel::Signoff(p) => signoff(p).into_any(),
    }
}

#[derive(Debug)]
pub struct SignoffPanel {
    ctx: RunCtx,
    item_id: String,
    reference: String,
    signing: RwSignal<bool>,
    error: RwSignal<Option<ApiError>>,
}

/// An approver's sign-off: a comment (required to reject), Approve or Reject.
fn signoff(p: SignoffPanel) -> impl IntoView {
    let SignoffPanel {
        ctx,
        item_id,
        reference,
        signing,
        error,
    } = p;
    let comment = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let item_id = StoredValue::new(item_id);
    let sign = move |verdict: Verdict| {
        busy.set(true);
        error.set(None);
        let request = CreateSignoffRequest {
            verdict,
            comment: Some(comment.get_untracked().trim().to_owned()).filter(|c| !c.is_empty()),
        };
        leptos::task::spawn_local(async move {
            match api::sign_off(&ctx.id(), &item_id.get_value(), &request).await {
                Ok(_) => {
                    signing.try_set(false);
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
        <div class="row signoff">
            <input name="signoff_comment" aria-label="Sign-off comment (required to reject)" placeholder="comment" bind:value=comment/>
            <button type="button" class="approve" aria-label=format!("Approve {reference}") disabled=move || busy.get() on:click=move |_| sign(Verdict::Approve)>"Approve"</button>
            <button type="button" class="reject" aria-label=format!("Reject {reference}") disabled=move || busy.get() on:click=move |_| sign(Verdict::Reject)>"Reject"</button>
        </div>
    }
}

/// The details editor: assignee, note, evidence links (one per line: a label and a URL).
fn details(p: DetailsPanel) -> impl IntoView {
    let DetailsPanel {
        editing,
        busy,
        save,
    } = p;
    let base = editing.get_untracked();
    let field = |f: fn(&RunItem) -> Option<String>| {
        RwSignal::new(base.as_ref().and_then(f).unwrap_or_default())
    };
    let assignee = field(|i| i.assignee.clone());
    let note = field(|i| i.note.clone());
    let evidence = RwSignal::new(
        base.as_ref()
            .map(|i| shipshape_domain::item::evidence_lines(&i.evidence))
            .unwrap_or_default(),
    );
    // An item a person may mark done, not done yet, offers to do both in one change (its
    // evidence and its status, one event).
    // (Read once: the editor's fields must survive the session changing under it.)
    let can_finish = base.as_ref().is_some_and(|i| {
        let user = untrack(|| use_session().user());
        expect_context::<RunCtx>()
            .run
            .with_untracked(|r| match (r, &user) {
                (Some(r), Some(u)) => {
                    may_mark_done(&i.context(&r.summary), u.role, is_member(r, u))
                }
                _ => false,
            })
    });
    let apply = move |done: bool| {
        let Some(base) = editing.get_untracked() else {
            return;
        };
        let value = |s: RwSignal<String>| {
            let v = s.get_untracked().trim().to_owned();
            (!v.is_empty()).then_some(v)
        };
        let mut change = UpdateItemRequest::default();
        if value(assignee) != base.assignee {
            change.assignee = Some(value(assignee));
        }
        if value(note) != base.note {
            change.note = Some(value(note));
        }
        let links = shipshape_domain::item::parse_evidence_lines(&evidence.get_untracked());
        if links != base.evidence {
            change.evidence = Some(links);
        }
        if done {
            change.status = Some(ItemStatus::Done);
        }
        if change == UpdateItemRequest::default() {
            editing.set(None);
            return;
        }
        save.run((change, base.version, Source::Details));
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        apply(false);
    };
    let members = expect_context::<RunCtx>()
        .run
        .with_untracked(|r| r.as_ref().map(|r| r.members.clone()).unwrap_or_default());
    let list_id = format!(
        "team-for-{}",
        base.as_ref().map_or("", |i| i.reference.as_str())
    );
    // The editor takes focus when it opens, and Escape closes it (focus back on its item).
    let first = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(el) = first.get() {
            let _ = el.focus();
        }
    });
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        use wasm_bindgen::JsCast;
        if ev.key() != "Escape" {
            return;
        }
        ev.prevent_default();
        let row = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|t| t.closest("li.item").ok().flatten())
            .and_then(|r| r.dyn_into::<web_sys::HtmlElement>().ok());
        editing.set(None);
        if let Some(row) = row {
            let _ = row.focus();
        }
    };
    view! {
        <form class="editor stack" on:submit=submit on:keydown=on_key aria-label="Item details">
            <label>"Assignee (a team member)"<input node_ref=first name="assignee" list=list_id.clone() autocomplete="off" bind:value=assignee/></label>
            // The team, to choose from as one types.
            <datalist id=list_id>
                {members.into_iter().map(|m| view! {
                    <option value=m.username.clone()>{format!("{} — {}", m.username, m.run_role)}</option>
                }).collect_view()}
            </datalist>
            <label>"Note"<textarea name="note" bind:value=note></textarea></label>
            <label>"Evidence links, one per line: label and URL"<textarea name="evidence" placeholder="Backup job https://…" bind:value=evidence></textarea></label>
            <div class="row">
                <button type="submit" class="primary" disabled=move || busy.get()>"Save"</button>
                {can_finish.then(|| view! {
                    <button type="button" class="save-done" disabled=move || busy.get() on:click=move |_| apply(true)>"Save and mark done"</button>
                })}
                <button type="button" on:click=move |_| editing.set(None)>"Cancel"</button>
            </div>
        </form>
    }
}

/// Why the item is skipped (a waiver, when it is required).
fn skip(p: SkipPanel) -> impl IntoView {
    let SkipPanel {
        required,
        skipping,
        skip_base,
        busy,
        select,
        status,
        save,
    } = p;
    let can_waive = can(Permission::SteerRuns);
    let reason = RwSignal::new(String::new());
    let confirm = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        save.run((
            UpdateItemRequest {
                status: Some(ItemStatus::Skipped),
                reason: Some(reason.get_untracked()),
                ..UpdateItemRequest::default()
            },
            skip_base.get_untracked(),
            Source::Skip,
        ));
    };
    view! {
        <form class="inline-form" on:submit=confirm aria-label="Skip the item">
            <label>{if required { "Why is this required item waived? (release managers only)" } else { "Why is it skipped?" }}
                <input name="skip_reason" required bind:value=reason/>
            </label>
            <button type="submit" disabled=move || busy.get() || (required && !can_waive())>"Skip"</button>
            <button type="button" on:click=move |_| {
                skipping.set(false);
                if let Some(el) = select.get_untracked() { el.set_value(status.get_untracked().as_str()); }
            }>"Cancel"</button>
        </form>
    }
}

/// Someone else changed the item first: their values, and re-applying yours or keeping
/// theirs.
fn conflict(p: ConflictPanel) -> impl IntoView {
    let ConflictPanel {
        conflict,
        editing,
        skipping,
        busy,
        save,
    } = p;
    let reapply = move |_| {
        if let Some(c) = conflict.get_untracked() {
            save.run((c.mine, c.theirs.version, Source::Reapply));
        }
    };
    let keep_theirs = move |_| {
        conflict.set(None);
        editing.set(None);
        skipping.set(false);
    };
    move || {
        conflict.get().map(|c| {
            let t = &c.theirs;
            view! {
                <div class="conflict" role="alert">
                    <p><strong>"Changed by someone else. "</strong>
                        {format!("{} changed this item{}. It now reads: {}; assignee {}; note {}; evidence {}.",
                            t.updated_by.clone().unwrap_or_else(|| "Someone".into()),
                            t.updated_at.map(|at| format!(" at {}", format::time(at))).unwrap_or_default(),
                            format::item_status(t.status),
                            t.assignee.clone().unwrap_or_else(|| "nobody".into()),
                            t.note.as_ref().map_or("empty".into(), |n| format!("“{n}”")),
                            format::evidence(&t.evidence))}
                    </p>
                    <p>{format!("Your change was not saved: {}.", format::item_change(&c.mine))}</p>
                    <div class="row">
                        <button type="button" class="reapply" on:click=reapply disabled=move || busy.get()>"Re-apply my change"</button>
                        <button type="button" class="keep" on:click=keep_theirs>"Keep theirs"</button>
                    </div>
                </div>
            }
        })
    }
}

/// A probe item's check: its latest result with its age, why it does not count now, "Run
/// check", and its history (a panel fetched when opened).
#[component]
fn Probe(item: Memo<Option<RunItem>>, editable: Memo<bool>) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let history = RwSignal::new(false);
    let (id, reference) = item.with_untracked(|i| {
        i.as_ref()
            .map(|i| (i.id.clone(), i.reference.clone()))
            .unwrap_or_default()
    });
    let id = StoredValue::new(id);
    let run_check = move |_| {
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            if let Err(e) = api::run_check(&ctx.id(), &id.get_value()).await {
                error.try_set(Some(e));
            }
            ctx.reload();
            busy.try_set(false);
        });
    };
    view! {
        <div class="probe">
            {move || item.get().and_then(|i| i.probe).map(|p| view! {
                <p>
                    {p.url.map(|u| view! { "Checks "<code class="probe-url">{u}</code> })}
                    {p.latest.map(|r| view! {
                        <span class="probe-latest" data-passed=r.passed.to_string()>
                            {format!(" · last check {} ago: {} — ",
                                shipshape_domain::probe::format_age((ctx.now.get() - r.checked_at).num_seconds().max(0)),
                                if r.passed { "✓ passed" } else { "✗ failed" })}
                            <span class="probe-summary">{r.summary}</span>
                        </span>
                    })}
                    {p.problem.map(|why| view! { <strong class="probe-problem">{format!(" · Not done: {why}")}</strong> })}
                </p>
            })}
            <div class="row">
                <button type="button" class="run-check" aria-label=format!("Run check of {reference}")
                    hidden=move || !editable.get()
                    disabled=move || busy.get() on:click=run_check>"Run check"</button>
                <button type="button" class="probe-history" aria-expanded=move || history.get().to_string()
                    on:click=move |_| history.update(|h| *h = !*h)>"History"</button>
            </div>
            {move || history.get().then(|| crate::pages::lazy_panel(crate::pages::probe_history(id.get_value())))}
            <ErrorNote error=error/>
        </div>
    }
}

/// A probe item's latest results, newest first (read when opened, and again when the item
/// changes).
#[component]
pub fn ProbeHistory(item_id: String) -> impl IntoView {
    let ctx = expect_context::<RunCtx>();
    let results = RwSignal::new(None::<Vec<shipshape_domain::wire::ProbeResult>>);
    let error = RwSignal::new(None::<ApiError>);
    let version = {
        let id = item_id.clone();
        Memo::new(move |_| {
            ctx.run.with(|r| {
                r.as_ref()
                    .and_then(|r| find_item(r, &id))
                    .and_then(|i| i.probe.as_ref()?.latest.as_ref().map(|l| l.checked_at))
            })
        })
    };
    let item_id = StoredValue::new(item_id);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::checks(&ctx.id(), &item_id.get_value()).await {
                Ok(page) => {
                    results.try_set(Some(page.items));
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    view! {
        {reload_on(version, load)}
        {move || results.get().map(|results| view! {
            <ol class="probe-results">
                {results.into_iter().map(|r| view! {
                    <li data-passed=r.passed.to_string()>{format!("{} {} — {} ({})",
                        format::time(r.checked_at),
                        if r.passed { "✓" } else { "✗" },
                        r.summary,
                        if r.checked_by == "system" { "scheduled" } else { r.checked_by.as_str() })}</li>
                }).collect_view()}
            </ol>
        })}
        <ErrorNote error=error/>
    }
}

pub(super) fn gate_word(gate: Gate) -> &'static str {
    match gate {
        Gate::Deploy => "deploying",
        Gate::Verify => "verifying",
        Gate::Complete => "completing",
        Gate::Close => "closing",
    }
}
