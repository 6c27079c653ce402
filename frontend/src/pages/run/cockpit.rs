//! The cockpit: what the run bar's buttons and the shortcut keys do. Its code comes with the
//! panels when the first command is given (the bar itself is in the run page's first load).
//!
//! - Filters: the checklist's `data-filter` says which rows show, and the stylesheet hides
//!   the others; this module keeps each row's `data-mine` and `data-blocking` up to date as
//!   the run changes.
//! - Picking several: the rows' checkboxes, and "Mark done" on the picked ones, each its own
//!   change with its own `If-Match`; those refused are named with the server's reason and stay
//!   picked.
//! - Shortcuts (listed behind "?"): they act through the focused row's own controls, so they
//!   do what a click there does.

use wasm_bindgen::JsCast;

use super::*;

/// The shortcut keys.
pub(super) const KEYS: [&str; 7] = ["j", "k", "e", "d", "c", "x", "?"];

/// Which items the checklist shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    All,
    /// Applicable and neither done nor skipped.
    Open,
    /// Assigned to the person signed in.
    Mine,
    /// Blocking the next step.
    Blocking,
}

impl Filter {
    fn parse(s: &str) -> Option<Filter> {
        match s {
            "all" => Some(Filter::All),
            "open" => Some(Filter::Open),
            "mine" => Some(Filter::Mine),
            "blocking" => Some(Filter::Blocking),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Open => "open",
            Filter::Mine => "mine",
            Filter::Blocking => "blocking",
        }
    }
}

fn document() -> Option<web_sys::Document> {
    web_sys::window().and_then(|w| w.document())
}

fn by_id(id: &str) -> Option<web_sys::HtmlElement> {
    document()?.get_element_by_id(id)?.dyn_into().ok()
}

/// Says `on` in an attribute (`"true"` or `"false"`).
fn say(el: &web_sys::Element, name: &str, on: bool) {
    let _ = el.set_attribute(name, if on { "true" } else { "false" });
}

/// Every item of the run, in checklist order.
fn all_items(run: &Run) -> impl Iterator<Item = &RunItem> {
    run.parts
        .iter()
        .flat_map(|p| &p.sections)
        .flat_map(|s| &s.items)
}

/// Whether `item` blocks the run's next step.
fn blocks(run: &Run, item: &RunItem) -> bool {
    next_step(run).is_some_and(|t| {
        t.blockers
            .iter()
            .any(|b| matches!(b, Blocker::Item { item_id, .. } if *item_id == item.id))
    })
}

/// Whether `filter` shows `item` to `me` (what the stylesheet does with the rows' marks).
fn shows(filter: Filter, run: &Run, item: &RunItem, me: Option<&str>) -> bool {
    match filter {
        Filter::All => true,
        Filter::Open => item.applicable && !item.status.is_settled(),
        Filter::Mine => me.is_some() && item.assignee.as_deref() == me,
        Filter::Blocking => blocks(run, item),
    }
}

/// Shows the items `filter` keeps, and says which filter is on.
fn apply(filter: Filter) {
    if let Some(list) = by_id("checklist") {
        let _ = list.set_attribute("data-filter", filter.as_str());
    }
    for f in [Filter::All, Filter::Open, Filter::Mine, Filter::Blocking] {
        if let Some(b) = by_id(&format!("show-{}", f.as_str())) {
            say(&b, "aria-pressed", f == filter);
        }
    }
}

/// Marks each row that is `me`'s (`data-mine`) and each that blocks the next step
/// (`data-blocking`).
fn mark_rows(run: &Run, me: Option<&str>) {
    for item in all_items(run) {
        if let Some(row) = by_id(&format!("item-{}", item.reference)) {
            say(&row, "data-mine", shows(Filter::Mine, run, item, me));
            say(&row, "data-blocking", blocks(run, item));
        }
    }
}

/// An item's pick box: a toggle button, pressed when picked.
fn pick_box(item: &RunItem) -> Option<web_sys::HtmlElement> {
    by_id(&format!("pick-{}", item.reference))
}

fn is_picked(b: &web_sys::Element) -> bool {
    b.get_attribute("aria-pressed").as_deref() == Some("true")
}

/// The ids of the items picked.
fn picked(run: &Run) -> Vec<String> {
    all_items(run)
        .filter(|i| pick_box(i).is_some_and(|b| is_picked(&b)))
        .map(|i| i.id.clone())
        .collect()
}

/// Picks the items `pick` says, and no other.
fn pick_only(run: &Run, pick: impl Fn(&RunItem) -> bool) -> usize {
    let mut n = 0;
    for item in all_items(run) {
        if let Some(b) = pick_box(item) {
            let on = pick(item);
            say(&b, "aria-pressed", on);
            n += usize::from(on);
        }
    }
    n
}

/// Whether `user` may mark `item` done by hand now (the server's rule, [`may_mark_done`]);
/// items the run does not ask for are not picked.
fn can_mark_done(run: &Run, item: &RunItem, user: &User) -> bool {
    item.applicable && may_mark_done(&item.context(&run.summary), user.role, is_member(run, user))
}

/// A shortcut on the row in focus (j and k move between the rows `filter` shows).
fn on_row(ctx: RunCtx, key: &str, filter: Filter, picking: RwSignal<bool>) {
    let me = use_session().user().map(|u| u.username);
    let row = document()
        .and_then(|d| d.active_element())
        .and_then(|e| e.closest("li.item").ok().flatten());
    let find = |css: &str| {
        row.as_ref()
            .and_then(|r| r.query_selector(css).ok().flatten())
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    };
    match key {
        "j" | "k" => {
            let at = row.as_ref().and_then(|r| r.get_attribute("data-ref"));
            let shown: Vec<String> = ctx.run.with_untracked(|r| {
                r.as_ref()
                    .map(|r| {
                        all_items(r)
                            .filter(|i| shows(filter, r, i, me.as_deref()))
                            .map(|i| i.reference.clone())
                            .collect()
                    })
                    .unwrap_or_default()
            });
            let i = shown.iter().position(|r| Some(r) == at.as_ref());
            let next = match (key, i) {
                ("j", Some(i)) => (i + 1).min(shown.len().saturating_sub(1)),
                ("k", Some(i)) => i.saturating_sub(1),
                _ => 0,
            };
            if let Some(el) = shown.get(next).and_then(|r| by_id(&format!("item-{r}"))) {
                let _ = el.focus();
            }
        }
        "e" => find("button.edit").into_iter().for_each(|b| b.click()),
        "c" => find("button.claim").into_iter().for_each(|b| b.click()),
        "d" => {
            // As if "Done" were picked in the row's status control (when it offers it).
            if let Some(select) = find("select[name=status]")
                .and_then(|e| e.dyn_into::<web_sys::HtmlSelectElement>().ok())
                .filter(|s| {
                    s.query_selector("option[value=done]:not([hidden])")
                        .ok()
                        .flatten()
                        .is_some()
                })
            {
                select.set_value(ItemStatus::Done.as_str());
                if let Ok(change) = web_sys::Event::new("change") {
                    let _ = select.dispatch_event(&change);
                }
            }
        }
        "x" if row.is_some() => {
            picking.set(true);
            find("button.pick").into_iter().for_each(|b| b.click());
        }
        _ => {}
    }
}

/// The cockpit (see [`crate::pages::Panel::Cockpit`]): carries out the commands given, and
/// shows the picking bar and the shortcuts' list when asked.
pub fn cockpit_panel(ctx: RunCtx, commands: RwSignal<String>) -> AnyView {
    let session = use_session();
    let picking = RwSignal::new(false);
    let help = RwSignal::new(false);
    let scheduling = RwSignal::new(false);
    let filter = StoredValue::new(Filter::All);
    // How many are picked: a pick box clicked changes it.
    let count = RwSignal::new(0_usize);
    let recount = move || {
        count.try_set(
            ctx.run
                .with_untracked(|r| r.as_ref().map_or(0, |r| picked(r).len())),
        );
    };
    let clicks = window_event_listener(leptos::ev::click, move |ev| {
        let Some(b) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|t| t.closest("li.item button.pick").ok().flatten())
        else {
            return;
        };
        say(&b, "aria-pressed", !is_picked(&b));
        recount();
    });
    on_cleanup(move || clicks.remove());
    // The rows follow the run: whose they are, what blocks the next step.
    Effect::new(move |_| {
        let me = session.user().map(|u| u.username);
        ctx.run.with(|r| {
            if let Some(r) = r {
                mark_rows(r, me.as_deref());
            }
        });
    });
    // Every command given so far, once each.
    Effect::new(move |_| {
        commands.track();
        let given = commands
            .try_update_untracked(std::mem::take)
            .unwrap_or_default();
        for command in given.split_whitespace() {
            match command {
                "pick" => picking.update(|p| *p = !*p),
                "schedule" => scheduling.update(|s| *s = !*s),
                "?" => help.update(|h| *h = !*h),
                other => match Filter::parse(other) {
                    Some(f) => {
                        filter.set_value(f);
                        apply(f);
                    }
                    None => on_row(ctx, other, filter.get_value(), picking),
                },
            }
        }
    });
    // While picking, the rows show their boxes; when it stops, nothing stays picked.
    Effect::new(move |_| {
        let on = picking.get();
        if let Some(list) = by_id("checklist") {
            say(&list, "data-picking", on);
        }
        if let Some(b) = by_id("pick-mode") {
            say(&b, "aria-pressed", on);
        }
        if !on {
            ctx.run
                .with_untracked(|r| r.as_ref().map(|r| pick_only(r, |_| false)));
        }
        recount();
    });
    Effect::new(move |_| {
        if let Some(b) = by_id("edit-schedule") {
            say(&b, "aria-pressed", scheduling.get());
        }
    });
    view! {
        {move || picking.get().then(|| bulk(ctx, picking, filter, count))}
        {move || scheduling.get().then(|| schedule(ctx, scheduling))}
        {move || help.get().then(|| keys(help))}
    }
    .into_any()
}

/// An item *Mark N done* could not mark done, and why.
#[derive(Debug, Clone, PartialEq)]
struct Refused {
    id: String,
    reference: String,
    line: String,
    /// Refused for want of evidence: the outcome offers to give it and mark the item done.
    evidence: bool,
}

impl Refused {
    fn new(item: &RunItem, why: String, evidence: bool) -> Self {
        Refused {
            id: item.id.clone(),
            reference: item.reference.clone(),
            line: format!("{} — {why}", item.reference),
            evidence,
        }
    }
}

/// Evidence for an item refused for want of it, and marking it done with it (one change, its
/// own `If-Match`); done, it is no longer picked.
fn give_evidence(ctx: RunCtx, r: Refused, count: RwSignal<usize>) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let state = RwSignal::new(None::<Result<(), ApiError>>);
    let id = StoredValue::new(r.id);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(Some(item)) = ctx.run.try_with_untracked(|run| {
            run.as_ref()
                .and_then(|run| find_item(run, &id.get_value()))
                .cloned()
        }) else {
            return;
        };
        let change = UpdateItemRequest {
            status: Some(ItemStatus::Done),
            evidence: Some(shipshape_domain::item::parse_evidence_lines(
                &text.get_untracked(),
            )),
            ..UpdateItemRequest::default()
        };
        leptos::task::spawn_local(async move {
            match api::update_item(&ctx.id(), &item.id, &change, item.version).await {
                Ok(updated) => {
                    if let Some(b) = pick_box(&updated) {
                        say(&b, "aria-pressed", false);
                    }
                    count.try_update(|n| *n = n.saturating_sub(1));
                    ctx.accept_item(updated);
                    ctx.reload();
                    state.try_set(Some(Ok(())));
                }
                Err(e) => {
                    state.try_set(Some(Err(e)));
                }
            }
        });
    };
    let label = format!("Evidence for {}: a label and a URL", r.reference);
    move || {
        match state.get() {
        Some(Ok(())) => view! { <span class="done">" ✓ marked done with its evidence"</span> }.into_any(),
        failed => view! {
            <form class="give-evidence row" on:submit=submit>
                <input name="evidence" aria-label=label.clone() placeholder="Backup job https://…" required bind:value=text/>
                <button type="submit">"Add and mark done"</button>
                {failed.and_then(Result::err).map(|e| view! { <span class="error">{e.message()}</span> })}
            </form>
        }
        .into_any(),
    }
    }
}

/// Marking the picked items done.
fn bulk(
    ctx: RunCtx,
    picking: RwSignal<bool>,
    filter: StoredValue<Filter>,
    count: RwSignal<usize>,
) -> impl IntoView {
    let session = use_session();
    let busy = RwSignal::new(false);
    let outcome = RwSignal::new(None::<(usize, Vec<Refused>)>);
    // The rows the filter shows whose item can be marked done by hand.
    let pick_shown = move |_| {
        let user = session.user();
        let me = user.as_ref().map(|u| u.username.as_str());
        let f = filter.get_value();
        let n = ctx.run.with_untracked(|r| {
            r.as_ref().map_or(0, |r| {
                pick_only(r, |i| {
                    shows(f, r, i, me) && user.as_ref().is_some_and(|u| can_mark_done(r, i, u))
                })
            })
        });
        count.set(n);
    };
    let mark_done = move |_| {
        let ids = ctx
            .run
            .with_untracked(|r| r.as_ref().map(picked).unwrap_or_default());
        busy.set(true);
        outcome.set(None);
        leptos::task::spawn_local(async move {
            let run_id = ctx.id();
            let change = UpdateItemRequest {
                status: Some(ItemStatus::Done),
                ..UpdateItemRequest::default()
            };
            let (mut marked, mut refused, mut kept) = (0, Vec::new(), Vec::new());
            for id in ids {
                let Some(Some(item)) = ctx
                    .run
                    .try_with_untracked(|r| r.as_ref().and_then(|r| find_item(r, &id)).cloned())
                else {
                    continue;
                };
                let mut result = api::update_item(&run_id, &id, &change, item.version).await;
                // Changed meanwhile: marked done on top of the other change unless that
                // change was to the status.
                if matches!(&result, Err(e) if e.is_conflict())
                    && let Ok(now) = api::get_item(&run_id, &id).await
                {
                    if change.is_disjoint_from(&item, &now) {
                        result = api::update_item(&run_id, &id, &change, now.version).await;
                    } else {
                        let why = format!(
                            "{} changed it to {} meanwhile",
                            now.updated_by.clone().unwrap_or_else(|| "someone".into()),
                            format::item_status_word(now.status)
                        );
                        ctx.accept_item(now);
                        refused.push(Refused::new(&item, why, false));
                        kept.push(id);
                        continue;
                    }
                }
                match result {
                    Ok(updated) => {
                        marked += 1;
                        ctx.accept_item(updated);
                    }
                    Err(e) => {
                        // Refused for want of evidence: it can be given right here.
                        let evidence = item.evidence_required && item.evidence.is_empty();
                        refused.push(Refused::new(&item, e.message(), evidence));
                        kept.push(id);
                    }
                }
            }
            ctx.reload();
            ctx.run
                .with_untracked(|r| r.as_ref().map(|r| pick_only(r, |i| kept.contains(&i.id))));
            count.try_set(kept.len());
            outcome.try_set(Some((marked, refused)));
            busy.try_set(false);
        });
    };
    view! {
        <div class="bulk" role="group" aria-label="Several items at once">
            <span class="picked" role="status">{move || format!("{} selected", count.get())}</span>
            <button type="button" class="pick-shown" on:click=pick_shown>"Select all shown"</button>
            <button type="button" class="primary mark-done" disabled=move || busy.get() || count.get() == 0
                on:click=mark_done>{move || format!("Mark {} done", count.get())}</button>
            <button type="button" class="pick-none" on:click=move |_| picking.set(false)>"Stop selecting"</button>
            {move || outcome.get().map(|(marked, refused)| view! {
                <div class="bulk-outcome" role="alert">
                    <p>{format!("{marked} marked done.{}", if refused.is_empty() { "" } else { " Not marked done (still selected):" })}</p>
                    <ul class="refused">{refused.into_iter().map(|r| {
                        let (reference, line) = (r.reference.clone(), r.line.clone());
                        let fix = r.evidence.then(|| give_evidence(ctx, r, count));
                        view! { <li data-ref=reference>{line}{fix}</li> }
                    }).collect_view()}</ul>
                </div>
            })}
        </div>
    }
}

/// How many valid sign-offs the run's approval items hold.
fn signoffs(run: &Run) -> usize {
    all_items(run)
        .filter_map(|i| i.approval.as_ref())
        .map(|a| a.signoffs.len())
        .sum()
}

/// Editing the release version and the schedule (release managers). A new version
/// invalidates the sign-offs given for the earlier one; the form says how many, and which
/// items need signing again.
fn schedule(ctx: RunCtx, open: RwSignal<bool>) -> impl IntoView {
    let summary = ctx
        .run
        .with_untracked(|r| r.as_ref().map(|r| r.summary.clone()));
    let text = |f: fn(&shipshape_domain::wire::RunSummary) -> String| {
        RwSignal::new(summary.as_ref().map(f).unwrap_or_default())
    };
    let version = text(|s| s.release_version.clone());
    let start = text(|s| format::utc_input(s.window_start));
    let end = text(|s| format::utc_input(s.window_end));
    let downtime = text(|s| {
        s.expected_downtime_minutes
            .map(|m| m.to_string())
            .unwrap_or_default()
    });
    let error = RwSignal::new(None::<ApiError>);
    let done = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(before) = ctx.run.get_untracked() else {
            return;
        };
        let was = &before.summary;
        let mut change = shipshape_domain::wire::UpdateRunRequest::default();
        let v = version.get_untracked().trim().to_owned();
        if v != was.release_version {
            change.release_version = Some(v);
        }
        let times = (
            format::parse_utc_input(&start.get_untracked()),
            format::parse_utc_input(&end.get_untracked()),
        );
        let (Ok(s), Ok(e)) = times else {
            error.set(Some(ApiError::invalid(
                "the window's times are dates and times, e.g. 2026-12-07T14:00",
            )));
            return;
        };
        if s != was.window_start {
            change.window_start = Some(s);
        }
        if e != was.window_end {
            change.window_end = Some(e);
        }
        let d = downtime.get_untracked();
        let d = d.trim();
        let minutes = if d.is_empty() {
            None
        } else if let Ok(m) = d.parse::<i32>() {
            Some(m)
        } else {
            error.set(Some(ApiError::invalid(
                "expected downtime is a whole number of minutes",
            )));
            return;
        };
        if minutes != was.expected_downtime_minutes {
            change.expected_downtime_minutes = Some(minutes);
        }
        if change == shipshape_domain::wire::UpdateRunRequest::default() {
            open.set(false);
            return;
        }
        busy.set(true);
        error.set(None);
        done.set(None);
        let held = signoffs(&before);
        leptos::task::spawn_local(async move {
            match api::update_run(&ctx.id(), &change, before.summary.version).await {
                Ok(after) => {
                    let lost = held.saturating_sub(signoffs(&after));
                    let again: Vec<String> = all_items(&before)
                        .filter(|i| i.approval.as_ref().is_some_and(|a| !a.signoffs.is_empty()))
                        .map(|i| i.reference.clone())
                        .collect();
                    done.try_set(Some(if lost > 0 {
                        format!(
                            "Saved. The new version invalidated {lost} sign-off(s), given for the earlier one: {} need signing again.",
                            again.join(", ")
                        )
                    } else {
                        "Saved.".to_owned()
                    }));
                    ctx.accept(after);
                }
                Err(e) => {
                    error.try_set(Some(e));
                    ctx.reload();
                }
            }
            busy.try_set(false);
        });
    };
    view! {
        <form class="schedule row" on:submit=save aria-label="The run's schedule">
            <label>"Release version"<input name="release_version" required bind:value=version/></label>
            <label>"Window opens (UTC)"<input name="window_start" type="datetime-local" bind:value=start/></label>
            <label>"Window closes (UTC)"<input name="window_end" type="datetime-local" bind:value=end/></label>
            <label>"Expected downtime (minutes)"<input name="expected_downtime" type="number" min="0" max="10080" bind:value=downtime/></label>
            <p class="muted">"A new release version invalidates the sign-offs given for the earlier one."</p>
            <button type="submit" class="primary" disabled=move || busy.get()>"Save the schedule"</button>
            <button type="button" on:click=move |_| open.set(false)>"Close"</button>
            <ErrorNote error=error/>
            {move || done.get().map(|d| view! { <p class="saved" role="status">{d}</p> })}
        </form>
    }
}

/// The run page's keyboard shortcuts.
fn keys(open: RwSignal<bool>) -> impl IntoView {
    view! {
        <div class="shortcuts" role="dialog" aria-label="Keyboard shortcuts">
            <dl>
                <dt><kbd>"j"</kbd>" / "<kbd>"k"</kbd></dt><dd>"next / previous item shown"</dd>
                <dt><kbd>"e"</kbd></dt><dd>"edit the item's details (Escape closes)"</dd>
                <dt><kbd>"d"</kbd></dt><dd>"mark the item done"</dd>
                <dt><kbd>"c"</kbd></dt><dd>"assign the item to me"</dd>
                <dt><kbd>"x"</kbd></dt><dd>"select the item (for several at once)"</dd>
                <dt><kbd>"?"</kbd></dt><dd>"show or hide this list"</dd>
                <dt>"Status control"</dt><dd>"arrows or a letter choose, Enter sets it, Escape undoes"</dd>
            </dl>
            <button type="button" on:click=move |_| open.set(false)>"Close"</button>
        </div>
    }
}
