//! Helpers for the browser tests: a headless Chromium driven through WebDriver (Debian's
//! `chromium` and `chromedriver`; `CHROMIUM` and `CHROMEDRIVER` override the paths) against
//! the real server serving the built web app (`frontend/dist`, built by `just web`).
//!
//! Every browser gets its own chromedriver, in its own process group, killed with the
//! browser when the [`Browser`] is dropped — also when a test fails. Browser tests take turns
//! ([`take_turn`]), so a 2-core machine is not swamped and waits stay meaningful.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use thirtyfour::prelude::*;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::{Backend, TestApp};

/// How long a browser test waits for the page to show something.
pub const PATIENCE: Duration = Duration::from_secs(15);

static TURN: Semaphore = Semaphore::const_new(1);

/// Waits until no other browser test runs; the turn lasts as long as the returned permit.
pub async fn take_turn() -> SemaphorePermit<'static> {
    TURN.acquire()
        .await
        .unwrap_or_else(|e| panic!("browser test turn: {e}"))
}

/// The built web app.
pub fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../frontend/dist")
}

impl TestApp {
    /// Starts a server that serves the built web app.
    pub async fn spawn_web(backend: Backend) -> TestApp {
        let dir = web_dir();
        assert!(
            dir.join("index.html").is_file(),
            "the web app is not built at {}: run `just web` (the README's test command does)",
            dir.display()
        );
        TestApp::spawn_with(backend, |config| config.web_dir = dir).await
    }
}

/// One headless Chromium.
#[derive(Debug)]
pub struct Browser {
    /// The WebDriver session.
    pub driver: WebDriver,
    base: String,
    chromedriver: Child,
    profile: PathBuf,
    /// What a person did so far: each click, each text typed into a field, each key pressed.
    interactions: std::sync::atomic::AtomicUsize,
}

impl Browser {
    /// Opens a browser for the app at `base` (`http://127.0.0.1:PORT`).
    pub async fn open(base: &str) -> Browser {
        let port = crate::free_port();
        let chromedriver_bin =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromedriver = {
            use std::os::unix::process::CommandExt;
            Command::new(&chromedriver_bin)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("{chromedriver_bin} (Debian's chromium-driver package): {e}")
                })
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = std::env::temp_dir().join(format!(
            "shipshape-browser-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&chromium)
            .unwrap_or_else(|e| panic!("chromium binary: {e}"));
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", profile.display()),
        ] {
            caps.add_arg(arg)
                .unwrap_or_else(|e| panic!("chromium argument: {e}"));
        }
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
            .await
            .unwrap_or_else(|e| panic!("a Chromium session ({chromium}): {e}"));
        Browser {
            driver,
            base: base.to_owned(),
            chromedriver,
            profile,
            interactions: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// How many times a person acted so far: each click (a choice in a list included), each
    /// text typed or set in a field, each key pressed. Loading a page is not counted.
    pub fn interactions(&self) -> usize {
        self.interactions.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn acted(&self, times: usize) {
        self.interactions
            .fetch_add(times, std::sync::atomic::Ordering::Relaxed);
    }

    /// Loads a path of the app.
    pub async fn goto(&self, path: &str) {
        self.driver
            .goto(format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// Runs JavaScript in the page and returns its result.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.driver
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
            .json()
            .clone()
    }

    /// The text of the first element matching `css` (a field's value), if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        let v = self
            .js(
                "const e = document.querySelector(arguments[0]); \
                 return !e ? null : ['TEXTAREA', 'INPUT', 'SELECT'].includes(e.tagName) ? e.value : e.innerText;",
                vec![json!(css)],
            )
            .await;
        v.as_str().map(str::to_owned)
    }

    /// What the page shows (its path and text), for failure messages.
    pub async fn page_text(&self) -> String {
        let text = self
            .js(
                "return location.pathname + ' :: ' + (document.body ? document.body.innerText : '');",
                vec![],
            )
            .await;
        text.as_str()
            .unwrap_or_default()
            .chars()
            .take(3000)
            .collect()
    }

    /// Waits (up to 15 s) until the number `read` finds in the first element matching `css`
    /// is at least `want`; returns the last number read (0 while there is none). `read` is a
    /// JavaScript expression over the element `e`, e.g. `Number(e.dataset.version)`.
    pub async fn wait_at_least(&self, css: &str, read: &str, want: i64) -> i64 {
        let script = format!(
            "const css = arguments[0], want = arguments[1], until = Date.now() + 15000;
             return new Promise(done => (function look() {{
                 const e = document.querySelector(css);
                 const n = (e && ({read})) || 0;
                 if (n >= want || Date.now() > until) done(n); else setTimeout(look, 50);
             }})());"
        );
        self.js(&script, vec![json!(css), json!(want)])
            .await
            .as_i64()
            .unwrap_or_default()
    }

    /// Waits until the first element matching `css` contains `needle`; returns its text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let text = self.text(css).await;
            if let Some(t) = &text
                && t.contains(needle)
            {
                return t.clone();
            }
            if started.elapsed() > PATIENCE {
                let page = self.page_text().await;
                panic!(
                    "waited for {css:?} to show {needle:?}; it shows {text:?}; the page: {page}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until an element matches `css`; returns it.
    pub async fn find(&self, css: &str) -> WebElement {
        let started = Instant::now();
        loop {
            if let Ok(el) = self.driver.find(By::Css(css)).await {
                return el;
            }
            if started.elapsed() > PATIENCE {
                let page = self.page_text().await;
                panic!("waited for {css:?} to appear; the page: {page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        // Out of view elements cannot be clicked; bring it in first.
        let _ = self
            .driver
            .execute(
                "arguments[0].scrollIntoView({block: 'center'});",
                vec![el.to_json().unwrap_or(Value::Null)],
            )
            .await;
        el.click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
        self.acted(1);
    }

    /// Types into the field matching `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        el.clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        el.send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
        self.acted(1);
    }

    /// Sets a field's value as a picker would (date and time inputs take typing by segments,
    /// which depends on the browser's locale), firing its input and change events.
    pub async fn set_value(&self, css: &str, value: &str) {
        self.find(css).await;
        self.js(
            "const e = document.querySelector(arguments[0]); e.value = arguments[1]; \
             e.dispatchEvent(new Event('input', {bubbles: true})); \
             e.dispatchEvent(new Event('change', {bubbles: true}));",
            vec![json!(css), json!(value)],
        )
        .await;
        self.acted(1);
    }

    /// Chooses the option with `value` in the select matching `css` (as a user would: the
    /// select's change event fires).
    pub async fn choose(&self, css: &str, value: &str) {
        self.click(&format!("{css} option[value=\"{value}\"]"))
            .await;
    }

    /// Signs in on the sign-in page the browser is on (or is being sent to) and waits for the
    /// app to show the user.
    pub async fn sign_in(&self, username: &str, password: &str) {
        self.fill("input[name=username]", username).await;
        self.fill("input[name=password]", password).await;
        self.click("form[aria-label='Sign in'] button[type=submit]")
            .await;
        self.wait_text("[data-testid=whoami]", username).await;
    }

    /// The accessibility rules axe-core finds broken on the page as it is now (each: the
    /// rule, how many elements, and the first of them), for an `assert!` to show.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../frontend/node_modules/axe-core/axe.min.js");
        let axe = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (`npm ci --prefix frontend` installs axe-core; `just web` runs it)",
                path.display()
            )
        });
        self.js(&format!("{axe}\n;return true;"), vec![]).await;
        let found = self
            .js(
                "return axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => \
                 v.id + ' (' + v.impact + ', ' + v.nodes.length + '): ' + v.help + ' — ' + \
                 v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')));",
                vec![],
            )
            .await;
        serde_json::from_value(found).unwrap_or_default()
    }

    /// Fails the test, listing them, when axe-core finds any accessibility rule broken on the
    /// page as it is now (`what` says which state of which screen).
    pub async fn assert_accessible(&self, what: &str) {
        let violations = self.accessibility_violations().await;
        assert!(
            violations.is_empty(),
            "{what}: axe-core finds {} rule(s) broken:\n{}",
            violations.len(),
            violations.join("\n")
        );
    }

    /// Presses keys where the page's focus is, as a person would.
    pub async fn press(&self, keys: &str) {
        self.driver
            .action_chain()
            .send_keys(keys)
            .perform()
            .await
            .unwrap_or_else(|e| panic!("press {keys:?}: {e}"));
        self.acted(keys.chars().count());
    }

    /// The `data-ref` of the item row that has focus (or holds it).
    pub async fn focused_row(&self) -> Option<String> {
        self.js(
            "const r = document.activeElement && document.activeElement.closest('li.item'); return r ? r.dataset.ref : null;",
            vec![],
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// The page's path (and query).
    pub async fn path(&self) -> String {
        self.js("return location.pathname + location.search;", vec![])
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Ends the session.
    pub async fn quit(self) {
        let _ = self.driver.clone().quit().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and the Chromium it started share a process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.chromedriver.id())])
            .status();
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The CSS selector of the checklist row of the item with this reference (`1.2.3`).
pub fn row(reference: &str) -> String {
    format!("li[data-ref='{reference}']")
}

/// The item of a run (its JSON) with this reference.
pub fn item(run: &Value, reference: &str) -> Value {
    crate::items(run)
        .into_iter()
        .find(|i| i["reference"] == reference)
        .unwrap_or_else(|| panic!("no item {reference}"))
}

/// A started EduLibra run to production (its JSON), and its id.
pub async fn started_run(app: &TestApp) -> (Value, String) {
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let run_id = run["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a run id: {run}"))
        .to_owned();
    app.transition(&app.admin, &run_id, "start")
        .await
        .expect(200);
    (run, run_id)
}
