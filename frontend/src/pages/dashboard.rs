//! The dashboard: live runs with a progress bar per part, upcoming scheduled runs, recent
//! outcomes and what waits on me. It listens to the tab's one event stream (a change to any
//! run refreshes it) and reads the lists again every few seconds.

use std::cell::Cell;
use std::rc::Rc;

use leptos::prelude::*;
use send_wrapper::SendWrapper;
use shipshape_domain::run::RunStatus;
use shipshape_domain::wire::{Pending, Run, RunSummary};

use crate::api::{self, ApiError};
use crate::components::{ErrorNote, ProgressBar, RunStatusBadge};
use crate::format;
use crate::live::{self, Coalesce, LinkState};

/// How often the lists are re-read for runs that appeared.
const REFRESH_MS: i32 = 10_000;

#[derive(Debug, Clone, Default, PartialEq)]
struct Board {
    live: Vec<Run>,
    upcoming: Vec<RunSummary>,
    recent: Vec<RunSummary>,
    pending: Option<Pending>,
}

async fn load() -> Result<Board, ApiError> {
    let mut board = Board::default();
    for status in [
        RunStatus::Preparing,
        RunStatus::Deploying,
        RunStatus::Verifying,
        RunStatus::RollingBack,
    ] {
        let page = api::list_runs(&format!("status={}&limit=20", status.as_str())).await?;
        for summary in page.items {
            // The whole run, for its parts' progress.
            board.live.push(api::get_run(&summary.id).await?);
        }
    }
    board
        .live
        .sort_by_key(|r| std::cmp::Reverse(r.summary.updated_at));
    let mut upcoming = api::list_runs("status=planned&limit=20").await?.items;
    upcoming.sort_by_key(|r| (r.window_start.is_none(), r.window_start));
    board.upcoming = upcoming;
    for status in [
        RunStatus::Completed,
        RunStatus::RolledBack,
        RunStatus::Aborted,
    ] {
        let page = api::list_runs(&format!("status={}&limit=5", status.as_str())).await?;
        board.recent.extend(page.items);
    }
    board
        .recent
        .sort_by_key(|r| std::cmp::Reverse(r.updated_at));
    board.recent.truncate(10);
    board.pending = Some(api::pending().await?);
    Ok(board)
}

/// The dashboard page.
#[component]
pub fn Dashboard() -> impl IntoView {
    let board = RwSignal::new(None::<Board>);
    let error = RwSignal::new(None::<ApiError>);
    let stopped = Rc::new(Cell::new(false));

    // Reads the board; a request while one is in flight is folded into one more read.
    let reads = Coalesce::default();
    let refresh: Rc<dyn Fn()> = Rc::new(move || {
        reads.read(move || async move {
            match load().await {
                Ok(b) => {
                    // Unchanged (most refreshes): leave the page, and the focus, alone.
                    let changed = board
                        .try_with_untracked(|old| old.as_ref() != Some(&b))
                        .unwrap_or(false);
                    if changed {
                        board.set(Some(b));
                    }
                    error.set(None);
                }
                Err(e) => {
                    error.set(Some(e));
                }
            }
        })
    });

    // Any change to any run refreshes the board; so does the stream coming back after a gap.
    let subscription = live::watch_all(
        {
            let refresh = refresh.clone();
            move |_| refresh()
        },
        {
            let refresh = refresh.clone();
            move |state| {
                if state == LinkState::Live {
                    refresh();
                }
            }
        },
    );

    refresh();
    leptos::task::spawn_local({
        let (stopped, refresh) = (stopped.clone(), refresh.clone());
        async move {
            loop {
                live::sleep(REFRESH_MS).await;
                if stopped.get() {
                    break;
                }
                refresh();
            }
        }
    });
    let guard = SendWrapper::new((stopped, subscription));
    on_cleanup(move || {
        let (stopped, subscription) = guard.take();
        stopped.set(true);
        drop(subscription);
    });

    view! {
        <h1>"Dashboard"</h1>
        <ErrorNote error=error/>
        {move || match board.get() {
            None => view! { <p class="loading" role="status">"Loading…"</p> }.into_any(),
            Some(b) => view! {
                <div class="dashboard">
                    <section aria-labelledby="pending-h" class="panel wide pending">
                        <h2 id="pending-h">"Waiting on me"</h2>
                        {pending_view(b.pending.unwrap_or(Pending { assigned: vec![], approvals: vec![], decisions: vec![], action_items: vec![] }))}
                    </section>
                    <section aria-labelledby="live-h" class="panel wide">
                        <h2 id="live-h">"Live runs"</h2>
                        {if b.live.is_empty() {
                            view! { <p class="muted">"No run is under way."</p> }.into_any()
                        } else {
                            view! { <ul class="cards">{b.live.into_iter().map(live_card).collect_view()}</ul> }.into_any()
                        }}
                    </section>
                    <section aria-labelledby="upcoming-h" class="panel">
                        <h2 id="upcoming-h">"Upcoming"</h2>
                        {run_list(b.upcoming, "Nothing is scheduled.")}
                    </section>
                    <section aria-labelledby="recent-h" class="panel">
                        <h2 id="recent-h">"Recent outcomes"</h2>
                        {run_list(b.recent, "No run has finished yet.")}
                        <p><a href="/runs">"All runs: search the history"</a></p>
                    </section>
                </div>
            }.into_any(),
        }}
    }
}

fn label(r: &RunSummary) -> String {
    format!("{} {} → {}", r.product, r.release_version, r.environment)
}

fn live_card(run: Run) -> impl IntoView {
    let s = run.summary;
    let href = format!("/runs/{}", s.id);
    let status = s.status;
    let run_id = s.id.clone();
    let title = label(&s);
    let overridden = s.overridden;
    view! {
        <li class="card" data-run=run_id>
            <h3><a href=href>{title}</a></h3>
            <p><RunStatusBadge status=status/>
               {overridden.then(|| view! { <span class="badge warn">"⚠ Override in effect"</span> })}
            </p>
            {run.parts.into_iter().map(|p| {
                let progress = p.progress;
                view! { <ProgressBar label=p.title progress=progress/> }
            }).collect_view()}
        </li>
    }
}

fn run_list(runs: Vec<RunSummary>, empty: &'static str) -> AnyView {
    if runs.is_empty() {
        return view! { <p class="muted">{empty}</p> }.into_any();
    }
    view! {
        <ul class="plain">
            {runs.into_iter().map(|r| {
                let href = format!("/runs/{}", r.id);
                let when = r.window_start.map(format::time).unwrap_or_else(|| format!("updated {}", format::time(r.updated_at)));
                let status = r.status;
                view! {
                    <li><a href=href>{label(&r)}</a>" "<RunStatusBadge status=status/>
                        <span class="muted">" · "{when}</span></li>
                }
            }).collect_view()}
        </ul>
    }
    .into_any()
}

fn pending_view(p: Pending) -> AnyView {
    if p.assigned.is_empty()
        && p.approvals.is_empty()
        && p.decisions.is_empty()
        && p.action_items.is_empty()
    {
        return view! { <p class="muted">"Nothing waits on you."</p> }.into_any();
    }
    let items = |list: Vec<shipshape_domain::wire::PendingItem>, what: &'static str| {
        list.into_iter()
            .map(move |i| {
                let href = format!("/runs/{}#item-{}", i.run_id, i.item.reference);
                view! {
                    <li><span class="tag">{what}</span>" "<a href=href>{format!("{} {}", i.item.reference, i.item.title)}</a>
                        <span class="muted">" · "{i.run_label}</span></li>
                }
            })
            .collect_view()
    };
    view! {
        <ul class="plain pending">
            {items(p.assigned, "Assigned")}
            {items(p.approvals, "Sign off")}
            {p.decisions.into_iter().map(|d| {
                let href = format!("/runs/{}#decide-{}", d.run_id, d.point_key);
                view! {
                    <li><span class="tag">"Decide"</span>" "<a href=href>{d.title}</a>
                        <span class="muted">" · "{d.run_label}</span></li>
                }
            }).collect_view()}
            {p.action_items.into_iter().map(|a| {
                let href = format!("/runs/{}#retrospective", a.run_id);
                let overdue = a.action.overdue;
                view! {
                    <li class="pending-action" data-overdue=overdue.to_string()><span class="tag">"Action"</span>" "<a href=href>{a.action.title}</a>
                        <span class="muted">{format!(" · due {} · {}", a.action.due_on, a.run_label)}</span>
                        {overdue.then(|| view! { <span class="badge warn">"overdue"</span> })}</li>
                }
            }).collect_view()}
        </ul>
    }
    .into_any()
}
