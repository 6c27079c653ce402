//! The release calendar (`/calendar`): scheduled runs, freezes and locks, a week or a month at
//! a time, in UTC. Buttons move through time (and ← → on the calendar, T for today); on a
//! narrow screen the days read as a list. The same calendar is an iCalendar feed.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use leptos::prelude::*;
use shipshape_domain::environment::{CalendarEntry, CalendarKind};

use crate::api::{self, ApiError};
use crate::components::ErrorNote;
use crate::format;

fn today() -> NaiveDate {
    DateTime::from_timestamp_millis(js_sys::Date::now() as i64)
        .unwrap_or_default()
        .date_naive()
}

fn monday(d: NaiveDate) -> NaiveDate {
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

/// The days shown: a week from its Monday, or the weeks that hold a month.
fn days(anchor: NaiveDate, month: bool) -> Vec<NaiveDate> {
    if !month {
        let first = monday(anchor);
        return (0..7).map(|i| first + Duration::days(i)).collect();
    }
    let first = anchor.with_day(1).unwrap_or(anchor);
    let start = monday(first);
    let mut out = Vec::new();
    let mut d = start;
    while d.month() == first.month() || d < first || out.len() % 7 != 0 {
        out.push(d);
        d += Duration::days(1);
    }
    out
}

fn step(anchor: NaiveDate, month: bool, forward: bool) -> NaiveDate {
    match (month, forward) {
        (false, f) => anchor + Duration::days(if f { 7 } else { -7 }),
        (true, true) => anchor
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(anchor),
        (true, false) => anchor
            .checked_sub_months(chrono::Months::new(1))
            .unwrap_or(anchor),
    }
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// Whether an entry is on a day (an open-ended one shows on its first day).
fn on_day(e: &CalendarEntry, d: NaiveDate) -> bool {
    let (from, to) = (day_start(d), day_start(d) + Duration::days(1));
    let end = e.ends_at.unwrap_or(e.starts_at + Duration::minutes(1));
    e.starts_at < to && from < end
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "December", without chrono's formatter (the web app's size is budgeted).
fn month_name(d: NaiveDate) -> &'static str {
    MONTHS[d.month0() as usize % 12]
}

fn weekday(d: NaiveDate) -> &'static str {
    WEEKDAYS[d.weekday().num_days_from_monday() as usize % 7]
}

/// A day's start as the API reads it, RFC 3339 in UTC.
fn stamp(d: NaiveDate) -> String {
    format!("{:04}-{:02}-{:02}T00:00:00Z", d.year(), d.month(), d.day())
}

/// The calendar screen.
#[component]
pub fn CalendarPage() -> impl IntoView {
    let month = RwSignal::new(false);
    let anchor = RwSignal::new(today());
    let entries = RwSignal::new(Vec::<CalendarEntry>::new());
    let error = RwSignal::new(None::<ApiError>);
    let shown = Memo::new(move |_| days(anchor.get(), month.get()));
    Effect::new(move |_| {
        let list = shown.get();
        let (Some(first), Some(last)) = (list.first().copied(), list.last().copied()) else {
            return;
        };
        let from = stamp(first);
        let to = stamp(last + Duration::days(1));
        leptos::task::spawn_local(async move {
            match api::calendar(&from, &to).await {
                Ok(c) => {
                    error.try_set(None);
                    entries.try_set(c.entries);
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    });
    let keys = move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
        "ArrowLeft" => anchor.update(|a| *a = step(*a, month.get_untracked(), false)),
        "ArrowRight" => anchor.update(|a| *a = step(*a, month.get_untracked(), true)),
        "t" | "T" => anchor.set(today()),
        _ => {}
    };
    let title = move || {
        let a = anchor.get();
        if month.get() {
            format!("{} {}", month_name(a), a.year())
        } else {
            let m = monday(a);
            format!("Week of {} {} {}", m.day(), month_name(m), m.year())
        }
    };
    let origin = window().location().origin().unwrap_or_default();
    view! {
        <h1>"Release calendar"</h1>
        <div class="cal-bar" role="toolbar" aria-label="Calendar">
            <button type="button" on:click=move |_| anchor.update(|a| *a = step(*a, month.get_untracked(), false))>"← Previous"</button>
            <button type="button" on:click=move |_| anchor.set(today())>"Today"</button>
            <button type="button" on:click=move |_| anchor.update(|a| *a = step(*a, month.get_untracked(), true))>"Next →"</button>
            <button type="button" class="cal-week" aria-pressed=move || (!month.get()).to_string() on:click=move |_| month.set(false)>"Week"</button>
            <button type="button" class="cal-month" aria-pressed=move || month.get().to_string() on:click=move |_| month.set(true)>"Month"</button>
        </div>
        <h2 class="cal-title" aria-live="polite">{title}" (UTC)"</h2>
        <ErrorNote error=error/>
        <div class=move || if month.get() { "calendar month" } else { "calendar week" } tabindex="0"
            aria-label="Days: ← and → move, T goes to today" on:keydown=keys>
            {WEEKDAYS.map(|d| view! { <div class="cal-head" aria-hidden="true">{d}</div> }).collect_view()}
            {move || {
                let list = entries.get();
                let current = anchor.get().month();
                let is_month = month.get();
                shown.get().into_iter().map(|d| {
                    let here: Vec<CalendarEntry> = list.iter().filter(|e| on_day(e, d)).cloned().collect();
                    let outside = is_month && d.month() != current;
                    view! {
                        <section class=if outside { "cal-day outside" } else { "cal-day" } aria-label=format!("{} {} {}", weekday(d), d.day(), month_name(d))>
                            <h3 class="cal-date">{format!("{} {}", weekday(d), d.day())}</h3>
                            <ul class="plain">
                                {here.into_iter().map(|e| {
                                    let class = match e.kind {
                                        CalendarKind::Run => "cal-entry run",
                                        CalendarKind::Freeze => "cal-entry freeze",
                                        CalendarKind::Lock => "cal-entry lock",
                                    };
                                    let when = format!("{} – {}", format::time(e.starts_at),
                                        e.ends_at.map_or("until lifted".to_owned(), format::time));
                                    let href = match e.kind {
                                        CalendarKind::Run => format!("/runs/{}", e.id),
                                        CalendarKind::Freeze | CalendarKind::Lock => format!("/environments/{}", e.environment),
                                    };
                                    view! { <li class=class><a href=href title=when>{e.title}</a></li> }
                                }).collect_view()}
                            </ul>
                        </section>
                    }
                }).collect_view()
            }}
        </div>
        <p class="muted">
            "Subscribe from Google Calendar, Outlook or Thunderbird with "
            <code>{format!("{origin}/api/v1/calendar.ics?token=…")}</code>
            ": an "<a href="/tokens">"API token"</a>" with runs:read. Add "<code>"&environment=production"</code>" for one environment."
        </p>
    }
}
