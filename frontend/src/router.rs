//! Where the app is: its pages, read from the browser's address, and navigation through the
//! History API. Links are plain `<a href="/…">`: one listener turns a click on a same-app link
//! into a navigation without a reload; the back and forward buttons are followed too.
//!
//! A dozen routes need no routing framework; this one is small enough to read at a glance and
//! keeps the download small.

use leptos::prelude::*;
use shipshape_domain::wire::is_server_path;
use wasm_bindgen::JsCast;

/// A page of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    Login,
    Dashboard,
    NewRun,
    Run(String),
    /// Every run, searched and filtered (`/runs`).
    History,
    Announce(String),
    Report(String),
    Templates,
    ImportTemplate,
    Template(String),
    Users,
    Tokens,
    Integrations,
    Environments(Option<String>),
    Calendar,
    Insights,
    NotFound,
}

impl Page {
    /// The page a path names (`/runs/42`, `/templates/import`, …). A trailing slash is allowed;
    /// ids are percent-decoded.
    pub fn from_path(path: &str) -> Page {
        let trimmed = path.trim_matches('/');
        let segments: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        match segments.as_slice() {
            [] => Page::Dashboard,
            ["login"] => Page::Login,
            ["runs"] => Page::History,
            ["runs", "new"] => Page::NewRun,
            ["runs", id] => Page::Run(decode(id)),
            ["runs", id, "announce"] => Page::Announce(decode(id)),
            ["runs", id, "report"] => Page::Report(decode(id)),
            ["templates"] => Page::Templates,
            ["templates", "import"] => Page::ImportTemplate,
            ["templates", id] => Page::Template(decode(id)),
            ["users"] => Page::Users,
            ["tokens"] => Page::Tokens,
            ["integrations"] => Page::Integrations,
            ["environments"] => Page::Environments(None),
            ["environments", name] => Page::Environments(Some(decode(name))),
            ["calendar"] => Page::Calendar,
            ["insights"] => Page::Insights,
            _ => Page::NotFound,
        }
    }
}

/// A path segment, percent-decoded (as it was when encoded into a link).
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[at], bytes.get(at + 1), bytes.get(at + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(value as u8);
                at += 3;
            }
            (b, _, _) => {
                out.push(b);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a link to `href` is the page at `path`, for `aria-current`: the same path, or a
/// page under it (`/templates/7` is in "Templates"; only `/` itself is the dashboard).
pub fn is_current(href: &str, path: &str) -> bool {
    href == path || (href != "/" && path.starts_with(href) && path[href.len()..].starts_with('/'))
}

/// Whether a click on a link to `href` is a move to another page of the app, made in place.
/// Not: other sites, the server's own pages (the API and its documentation), and a link that
/// only changes the `#fragment` of the page shown (the browser scrolls to it).
pub fn is_app_link(href: &str, path: &str, search: &str) -> bool {
    if !href.starts_with('/') || href.starts_with("//") {
        return false;
    }
    let page = href.split('#').next().unwrap_or_default();
    let page_path = page.split('?').next().unwrap_or_default();
    let same_page = href.contains('#') && page == format!("{path}{search}");
    !is_server_path(page_path) && !same_page
}

/// The value of `name` in a query string (`?next=%2Fruns%2F4`), percent-decoded.
pub fn query_value(search: &str, name: &str) -> Option<String> {
    search
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| decode(key) == name)
        .map(|(_, value)| decode(&value.replace('+', " ")))
}

/// The browser's address, kept in step with the History API.
#[derive(Debug, Clone, Copy)]
pub struct Location {
    /// The path (`/runs/42`).
    pub path: RwSignal<String>,
    /// The query string, with its `?` (or empty).
    pub search: RwSignal<String>,
}

impl Location {
    /// Reads the address, follows the back and forward buttons, turns clicks on the app's own
    /// links into navigations, and makes the location available to every page.
    pub fn install() -> Location {
        let (path, search) = current();
        let location = Location {
            path: RwSignal::new(path),
            search: RwSignal::new(search),
        };
        provide_context(location);
        window_event_listener(leptos::ev::popstate, move |_| location.sync());
        window_event_listener(leptos::ev::click, move |ev| {
            location.follow_link(&ev);
            // A new attempt (a button pressed in a form; Enter in a field presses its submit
            // button too) shows what the server says then: see [`mark_form`].
            mark_form(&ev, "form button", false);
        });
        location
    }

    /// Goes to `to` (a path with an optional query), adding it to the history.
    pub fn navigate(self, to: &str) {
        self.go(to, false);
    }

    /// Goes to `to` in place of the current entry (a redirect: Back skips it).
    pub fn replace(self, to: &str) {
        self.go(to, true);
    }

    fn go(self, to: &str, replace: bool) {
        let Some(history) = window().history().ok() else {
            return;
        };
        let url = Some(to);
        let moved = if replace {
            history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", url)
        } else {
            history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", url)
        };
        if moved.is_ok() {
            self.sync();
            // As a page load would: the new page starts at its top (or at its `#fragment`,
            // which the page scrolls to once it has drawn it).
            if !to.contains('#') {
                window().scroll_to_with_x_and_y(0.0, 0.0);
            }
        }
    }

    /// Takes the address the browser now shows.
    fn sync(self) {
        let (path, search) = current();
        if self.path.get_untracked() != path {
            self.path.set(path);
        }
        if self.search.get_untracked() != search {
            self.search.set(search);
        }
    }

    /// A plain left click on a link to one of the app's own pages navigates in place; any
    /// other click (new tab, download, another site, a `#` anchor) is the browser's.
    fn follow_link(self, ev: &web_sys::MouseEvent) {
        if ev.default_prevented()
            || ev.button() != 0
            || ev.meta_key()
            || ev.ctrl_key()
            || ev.shift_key()
            || ev.alt_key()
        {
            return;
        }
        let Some(link) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest("a[href]").ok().flatten())
        else {
            return;
        };
        if link.has_attribute("target") || link.has_attribute("download") {
            return;
        }
        let href = link.get_attribute("href").unwrap_or_default();
        if !is_app_link(
            &href,
            &self.path.get_untracked(),
            &self.search.get_untracked(),
        ) {
            return;
        }
        ev.prevent_default();
        self.navigate(&href);
    }
}

/// The path and query the browser shows.
fn current() -> (String, String) {
    let location = window().location();
    (
        location.pathname().unwrap_or_else(|_| "/".into()),
        location.search().unwrap_or_default(),
    )
}

/// The app's location (installed by the app).
pub fn use_location() -> Location {
    expect_context()
}

/// Marks the form around an event's target (when the target is inside `within`) as edited
/// since its last attempt, or not. An error said in a form goes away once someone edits the
/// form, fixing its cause (`form[data-edited]` in the stylesheet).
pub fn mark_form(ev: &web_sys::Event, within: &str, edited: bool) {
    let Some(form) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .filter(|e| e.closest(within).ok().flatten().is_some())
        .and_then(|e| e.closest("form").ok().flatten())
    else {
        return;
    };
    let _ = if edited {
        form.set_attribute("data-edited", "")
    } else {
        form.remove_attribute("data-edited")
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_pages() {
        assert_eq!(Page::from_path("/"), Page::Dashboard);
        assert_eq!(Page::from_path(""), Page::Dashboard);
        assert_eq!(Page::from_path("/login"), Page::Login);
        assert_eq!(Page::from_path("/runs/new"), Page::NewRun);
        assert_eq!(Page::from_path("/runs/42"), Page::Run("42".into()));
        assert_eq!(Page::from_path("/runs/42/"), Page::Run("42".into()));
        assert_eq!(Page::from_path("/templates"), Page::Templates);
        assert_eq!(Page::from_path("/templates/import"), Page::ImportTemplate);
        assert_eq!(
            Page::from_path("/templates/edu%20libra"),
            Page::Template("edu libra".into())
        );
        assert_eq!(Page::from_path("/users"), Page::Users);
        assert_eq!(Page::from_path("/tokens"), Page::Tokens);
        assert_eq!(Page::from_path("/runs"), Page::History);
        assert_eq!(Page::from_path("/runs/4/items"), Page::NotFound);
        assert_eq!(Page::from_path("/nowhere"), Page::NotFound);
    }

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(decode("a%2Fb"), "a/b");
        assert_eq!(decode("%E2%9A%93"), "⚓");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }

    #[test]
    fn query_values_are_found_and_decoded() {
        let search = "?x=1&next=%2Fruns%2F4%3Ftab%3Dlog&flag";
        assert_eq!(
            query_value(search, "next").as_deref(),
            Some("/runs/4?tab=log")
        );
        assert_eq!(query_value(search, "x").as_deref(), Some("1"));
        assert_eq!(query_value(search, "flag").as_deref(), Some(""));
        assert_eq!(query_value(search, "missing"), None);
        assert_eq!(query_value("", "next"), None);
        assert_eq!(query_value("?q=a+b", "q").as_deref(), Some("a b"));
    }

    #[test]
    fn only_links_to_other_pages_of_the_app_are_followed_in_place() {
        assert!(is_app_link("/runs/4", "/", ""));
        assert!(is_app_link("/templates?x=1", "/", ""));
        assert!(is_app_link("/runs/4#item-1.2.1", "/", ""));
        assert!(!is_app_link("/runs/4#item-1.2.1", "/runs/4", ""));
        assert!(is_app_link("/runs/4", "/runs/4", "?tab=log"));
        assert!(!is_app_link("https://example.com/", "/", ""));
        assert!(!is_app_link("//example.com/x", "/", ""));
        assert!(!is_app_link("#main", "/", ""));
        assert!(!is_app_link("/api/v1/runs", "/", ""));
        assert!(!is_app_link("/api", "/", ""));
        assert!(!is_app_link("/docs/", "/", ""));
        assert!(!is_app_link("/api-docs/openapi.json", "/", ""));
        assert!(is_app_link("/apis-and-more", "/", ""));
    }

    #[test]
    fn a_link_is_current_on_its_page_and_below_it() {
        assert!(is_current("/", "/"));
        assert!(!is_current("/", "/templates"));
        assert!(is_current("/templates", "/templates"));
        assert!(is_current("/templates", "/templates/7"));
        assert!(!is_current("/templates", "/templatesx"));
        assert!(!is_current("/runs/new", "/runs/4"));
    }
}
