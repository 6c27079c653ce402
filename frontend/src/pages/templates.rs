//! Templates: the list, one template's checklist and decision points, export to Markdown,
//! and import from Markdown with a preview (parsed in the browser by the domain crate's own
//! Markdown reader, so the preview is exactly what the server will accept).

use leptos::prelude::*;
use shipshape_domain::access::Permission;
use shipshape_domain::markdown;
use shipshape_domain::proposal::{ProposalStatus, ReviewProposalRequest, TemplateProposal};
use shipshape_domain::template::{ItemKind, TemplateDraft};
use shipshape_domain::wire::{TemplateDetail, TemplateSummary};

use crate::api::{self, ApiError};
use crate::components::{ErrorNote, show_when};
use crate::format;
use crate::session::use_session;

/// The template list.
#[component]
pub fn TemplateList() -> impl IntoView {
    let session = use_session();
    let templates = RwSignal::new(None::<Vec<TemplateSummary>>);
    let error = RwSignal::new(None::<ApiError>);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::list_templates().await {
                Ok(list) => {
                    templates.try_set(Some(list));
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    load();
    let can_write = move || session.allows(Permission::WriteTemplates);
    view! {
        <h1>"Templates"</h1>
        {show_when(can_write, move || view! {
            <p><a href="/templates/import">"Import a template from Markdown"</a></p>
        })}
        <ErrorNote error=error/>
        <Proposals reviewed=Callback::new(move |()| load())/>
        {move || templates.get().map(|list| view! {
            <table class="list">
                <thead><tr><th scope="col">"Name"</th><th scope="col">"Version"</th><th scope="col">"Items"</th><th scope="col">"Origin"</th><th scope="col">"Created"</th></tr></thead>
                <tbody>
                    {list.into_iter().map(|t| view! {
                        <tr>
                            <td><a href=format!("/templates/{}", t.id)>{t.name.clone()}</a></td>
                            <td>{format!("v{}", t.version)}</td>
                            <td>{t.item_count}</td>
                            <td>{if t.builtin { "built in" } else { "imported" }}</td>
                            <td>{format::time(t.created_at)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        })}
    }
}

/// Open proposals to change templates, each with its diff; administrators accept one as
/// the template's next version or decline it with a reason.
#[component]
fn Proposals(reviewed: Callback<()>) -> impl IntoView {
    let proposals = RwSignal::new(Vec::<TemplateProposal>::new());
    let error = RwSignal::new(None::<ApiError>);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::proposals("?status=open").await {
                Ok(list) => {
                    proposals.try_set(list.items);
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    load();
    view! {
        {move || (!proposals.with(Vec::is_empty)).then(|| view! {
            <section class="panel proposals" aria-labelledby="proposals-h">
                <h2 id="proposals-h">"Proposed changes"</h2>
                {proposals.get().into_iter().map(|p| view! { <ProposalView proposal=p reload=Callback::new(move |()| { load(); reviewed.run(()); })/> }).collect_view()}
            </section>
        })}
        <ErrorNote error=error/>
    }
}

#[component]
fn ProposalView(proposal: TemplateProposal, reload: Callback<()>) -> impl IntoView {
    let session = use_session();
    let reason = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let id = StoredValue::new(proposal.id.clone());
    let review = move |status: ProposalStatus| {
        busy.set(true);
        error.set(None);
        let body = ReviewProposalRequest {
            status,
            reason: Some(reason.get_untracked()).filter(|r| !r.trim().is_empty()),
        };
        leptos::task::spawn_local(async move {
            match api::review_proposal(&id.get_value(), &body).await {
                Ok(_) => reload.run(()),
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
            busy.try_set(false);
        });
    };
    let can_review = move || session.allows(Permission::WriteTemplates);
    view! {
        <article class="proposal" data-proposal=proposal.id.clone()>
            <h3>{proposal.summary.clone()}</h3>
            <p class="muted">{format!("{} v{} · from ", proposal.template_name, proposal.base_version)}
                <a href=format!("/runs/{}", proposal.run_id)>{proposal.run_label.clone()}</a>
                {format!(" · by {} on {}", proposal.proposed_by, format::time(proposal.proposed_at))}</p>
            {crate::pages::run::diff_view(&proposal)}
            {show_when(can_review, move || view! {
                <div class="row">
                    <button type="button" class="accept-proposal" disabled=move || busy.get()
                        on:click=move |_| review(ProposalStatus::Accepted)>"Accept as the next version"</button>
                    <input type="text" class="decline-reason" placeholder="Why not" aria-label="Reason to decline"
                        prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev))/>
                    <button type="button" class="decline-proposal" disabled=move || busy.get() || reason.with(|r| r.trim().is_empty())
                        on:click=move |_| review(ProposalStatus::Declined)>"Decline"</button>
                </div>
            })}
            <ErrorNote error=error/>
        </article>
    }
}

/// A template's content, read-only, as the run will show it.
fn outline(draft: &TemplateDraft) -> impl IntoView + use<> {
    view! {
        <div class="outline">
            {draft.parts.iter().map(|p| view! {
                <section class="part">
                    <h3>{p.title.clone()}</h3>
                    {p.sections.iter().map(|s| view! {
                        <h4>{s.title.clone()}</h4>
                        <ul class="items">
                            {s.items.iter().map(|i| view! {
                                <li>
                                    {i.title.clone()}" "
                                    <span class="tag">{format!("gate {}", i.gate.as_str())}</span>
                                    {(!i.required).then(|| view! { <span class="tag">"optional"</span> })}
                                    {(i.kind == ItemKind::Approval).then(|| view! {
                                        <span class="tag">{format!("approval: {}", i.approval_policy().iter().map(|r| format::role(*r)).collect::<Vec<_>>().join(" + "))}</span>
                                    })}
                                </li>
                            }).collect_view()}
                        </ul>
                    }).collect_view()}
                </section>
            }).collect_view()}
            <h3>"Decision points"</h3>
            <ul>
                {draft.decision_points.iter().map(|d| view! {
                    <li><strong>{d.title.clone()}</strong>{format!(" — while {}", d.stage.as_str())}
                        <ul>{d.criteria.iter().map(|c| view! { <li>{c.clone()}</li> }).collect_view()}</ul>
                    </li>
                }).collect_view()}
            </ul>
        </div>
    }
}

fn item_count(draft: &TemplateDraft) -> usize {
    draft
        .parts
        .iter()
        .flat_map(|p| &p.sections)
        .map(|s| s.items.len())
        .sum()
}

/// One template, with its Markdown export.
#[component]
pub fn TemplatePage(id: String) -> impl IntoView {
    let id = StoredValue::new(id);
    let detail = RwSignal::new(None::<TemplateDetail>);
    let markdown_text = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<ApiError>);
    leptos::task::spawn_local(async move {
        match api::get_template(&id.get_value()).await {
            Ok(d) => {
                detail.try_set(Some(d));
            }
            Err(e) => {
                error.try_set(Some(e));
            }
        }
    });
    let export = move |_| {
        let id = id.get_value();
        leptos::task::spawn_local(async move {
            match api::get_template_markdown(&id).await {
                Ok(text) => markdown_text.set(Some(text)),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let download_href = move || {
        markdown_text
            .get()
            .map(|t| format!("data:text/markdown;charset=utf-8,{}", api::encode(&t)))
    };
    view! {
        <ErrorNote error=error/>
        {move || detail.get().map(|d| {
            let file = format!("{}.md", d.content.name.to_lowercase().replace(' ', "-"));
            view! {
                <h1>{d.content.name.clone()}</h1>
                <p class="muted">{format!("Version {} · {} items · {} · created {}", d.version, item_count(&d.content),
                    if d.builtin { "built in" } else { "imported" }, format::time(d.created_at))}</p>
                {d.source.clone().map(|src| view! {
                    <p class="source">"This version carries the lessons of "<a href=format!("/runs/{}/report", src.run_id)>"a run"</a>" (an accepted proposal)."</p>
                })}
                <div class="row">
                    <button type="button" class="export" on:click=export>"Export to Markdown"</button>
                    {move || download_href().map(|href| view! { <a class="button" href=href download=file.clone()>"Download the .md file"</a> })}
                </div>
                {move || markdown_text.get().map(|t| view! {
                    <label>"Markdown"<textarea class="markdown" readonly rows="16" prop:value=t></textarea></label>
                })}
                <h2>"Checklist"</h2>
                {outline(&d.content)}
            }
        })}
    }
}

/// Import from Markdown, previewed as you type.
#[component]
pub fn ImportTemplate() -> impl IntoView {
    let location = crate::router::use_location();
    let text = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let preview = Memo::new(move |_| {
        text.with(|t| {
            if t.trim().is_empty() {
                None
            } else {
                Some(
                    markdown::parse(t)
                        .map(TemplateDraft::from)
                        .map_err(|e| e.to_string()),
                )
            }
        })
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        error.set(None);
        let body = text.get_untracked();
        leptos::task::spawn_local(async move {
            match api::import_template(&body).await {
                Ok(t) => location.navigate(&format!("/templates/{}", t.id)),
                Err(e) => {
                    busy.set(false);
                    error.set(Some(e));
                }
            }
        });
    };
    view! {
        <h1>"Import a template"</h1>
        <p>"Paste the checklist's Markdown. Item settings go in a trailing "<code>"<!-- shipshape gate=… -->"</code>" comment; decision points in a "<code>"## Decision Points"</code>" section. The preview shows what will be imported."</p>
        <div class="import">
            <form class="stack" on:submit=submit aria-label="Import a template">
                <label>"Markdown"
                    <textarea name="markdown" rows="20" required bind:value=text></textarea>
                </label>
                <ErrorNote error=error/>
                <button type="submit" class="primary"
                    disabled=move || busy.get() || !matches!(preview.get(), Some(Ok(_)))>"Import"</button>
            </form>
            <section class="panel preview" aria-labelledby="preview-h" aria-live="polite">
                <h2 id="preview-h">"Preview"</h2>
                {move || match preview.get() {
                    None => view! { <p class="muted">"Nothing to preview yet."</p> }.into_any(),
                    Some(Err(e)) => view! { <p class="error">{format!("This Markdown cannot be imported: {e}")}</p> }.into_any(),
                    Some(Ok(draft)) => view! {
                        <p><strong>{draft.name.clone()}</strong>{format!(" — {} parts, {} items, {} decision points",
                            draft.parts.len(), item_count(&draft), draft.decision_points.len())}</p>
                        {outline(&draft)}
                    }.into_any(),
                }}
            </section>
        </div>
    }
}
