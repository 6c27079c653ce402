//! The bus: pushes every committed event to the open streams of this instance, at once.
//!
//! A commit signals it (in process; on PostgreSQL also through `NOTIFY`, which one listening
//! connection per instance hears, whichever instance wrote). One dispatcher per instance
//! then reads what is new from the log, once for all streams, and broadcasts it in log
//! order. Streams catch up from the log themselves, then follow the broadcast; one that
//! falls behind the broadcast re-reads from the log. Nothing here queries the database while
//! nothing happens.
//!
//! The same signals keep this instance's copies in memory (who a credential belongs to, a
//! run as served) exactly as fresh as the bus can: a commit here voids what it changed before
//! its writer answers; another instance's, once `NOTIFY` brings it; and while the listening
//! connection is lost, no copy is used at all (see [`crate::cache`]).
//!
//! Also here: this instance's record among the instances serving the database (a heartbeat
//! keeps it alive; the per-user stream cap counts streams on live instances), and the lease
//! that makes housekeeping run on one instance at a time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::time::Duration;

use shipshape_domain::wire::Event;
use shipshape_store::{Heard, Signal, Store, TokenRecord, UserRecord};

use crate::cache::{Cache, Versioned};
use tokio::sync::broadcast;

/// Events read from the log per query.
pub const BATCH: i64 = 500;
/// How often an instance says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// An instance not heard from for this long is taken for dead: its streams no longer count.
pub const ALIVE: Duration = Duration::from_secs(20);
/// The lease of the housekeeping work (reaping dead instances).
pub const HOUSEKEEPING: &str = "housekeeping";
/// Runs whose served form is kept in memory (the most recently used).
pub const RUN_VIEWS: usize = 64;
/// Credentials whose owner is kept in memory.
pub const CREDENTIALS: usize = 4096;
/// Pages of the run list kept in memory (the most recently used queries).
pub const LIST_PAGES: usize = 64;

/// A run as served: its version (the ETag) and its JSON.
#[derive(Debug)]
pub struct RunCopy {
    /// The run's version.
    pub version: i64,
    /// The run as JSON.
    pub json: actix_web::web::Bytes,
}

/// Who a credential belongs to, as last read.
#[derive(Debug)]
pub struct Known {
    /// The user.
    pub user: UserRecord,
    /// For an API token: the token.
    pub token: Option<TokenRecord>,
    /// For an API token: when its use was last recorded.
    pub last_used: std::sync::Mutex<Option<chrono::NaiveDateTime>>,
}

/// An event of the log with its position in the all-runs order.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The position.
    pub position: i64,
    /// The event.
    pub event: Event,
}

/// What the bus broadcasts to the streams of this instance.
#[derive(Debug, Clone)]
pub enum Message {
    /// An event, in log order.
    Event(Arc<Delivered>),
    /// A user's access changed (`None`: anyone's may have; every stream checks).
    Access(Option<Arc<str>>),
}

/// The bus of one instance.
#[derive(Debug)]
pub struct Bus {
    sender: broadcast::Sender<Message>,
    wake: std::sync::Mutex<mpsc::Sender<()>>,
    closed: std::sync::Mutex<mpsc::Sender<String>>,
    head: AtomicI64,
    instance: String,
    store: Store,
    outbox: Arc<tokio::sync::Notify>,
    mail: Arc<tokio::sync::Notify>,
    mail_now: Arc<tokio::sync::Notify>,
    metrics: Arc<crate::metrics::Metrics>,
    runs: Cache<String, Arc<RunCopy>>,
    credentials: Cache<String, Arc<Known>>,
    lists: Versioned<String, actix_web::web::Bytes>,
}

impl Drop for Bus {
    /// The instance stops: it leaves the record, with its streams and its work, at once.
    fn drop(&mut self) {
        let (store, instance) = (self.store.clone(), std::mem::take(&mut self.instance));
        let _ = std::thread::Builder::new()
            .name("shipshape-retire".into())
            .spawn(move || {
                if let Err(e) = store.retire_instance(&instance) {
                    tracing::warn!(error = %e, "cannot record that this instance stopped");
                }
            });
    }
}

impl Bus {
    /// Starts the bus of an instance on `store`: registers the instance, and starts the
    /// dispatcher, the listener (PostgreSQL) and the heartbeat on threads of their own,
    /// which end once the returned bus is dropped.
    /// `capacity` events are held for a slow stream before it must re-read from the log.
    pub fn start(
        store: &Store,
        capacity: u32,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Arc<Bus>, shipshape_store::StoreError> {
        let instance = uuid::Uuid::new_v4().to_string();
        store.register_instance(&instance, env!("CARGO_PKG_VERSION"))?;
        let (wake, woken) = mpsc::channel();
        let (closed, to_close) = mpsc::channel();
        let bus = Arc::new(Bus {
            sender: broadcast::channel(usize::try_from(capacity).unwrap_or(1).max(1)).0,
            wake: std::sync::Mutex::new(wake),
            closed: std::sync::Mutex::new(closed),
            head: AtomicI64::new(store.log_head()?),
            instance,
            store: store.clone(),
            outbox: Arc::new(tokio::sync::Notify::new()),
            mail: Arc::new(tokio::sync::Notify::new()),
            mail_now: Arc::new(tokio::sync::Notify::new()),
            metrics,
            runs: Cache::new(RUN_VIEWS),
            credentials: Cache::new(CREDENTIALS),
            lists: Versioned::new(LIST_PAGES),
        });
        if !store.shares_signals() {
            // One process's database: every commit signals here, at once.
            bus.runs.enable(true);
            bus.credentials.enable(true);
        }
        let weak = Arc::downgrade(&bus);
        store.on_signal({
            let weak = weak.clone();
            move |s| {
                if let Some(bus) = weak.upgrade() {
                    bus.heard(Heard::Signal(s.clone()));
                }
            }
        });
        spawn("shipshape-bus", {
            let (store, weak) = (store.clone(), weak.clone());
            move || dispatch(&store, &weak, &woken)
        })?;
        if store.shares_signals() {
            spawn("shipshape-listen", {
                let (store, weak) = (store.clone(), weak.clone());
                move || {
                    let w = weak.clone();
                    store.listen(
                        move || w.strong_count() > 0,
                        |heard| {
                            if let Some(bus) = weak.upgrade() {
                                bus.heard(heard);
                            }
                        },
                    );
                }
            })?;
        }
        spawn("shipshape-closer", {
            let store = store.clone();
            move || close_streams(&store, &to_close)
        })?;
        spawn("shipshape-heartbeat", {
            let store = store.clone();
            move || heartbeat(&store, &weak)
        })?;
        Ok(bus)
    }

    /// This instance's metrics.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// Runs as served, kept while nothing they were made from changed.
    pub fn runs(&self) -> &Cache<String, Arc<RunCopy>> {
        &self.runs
    }

    /// Pages of the run list as served (JSON), each kept with the runs' version it was read
    /// at (see [`shipshape_store::Store::log_head`]).
    pub fn lists(&self) -> &Versioned<String, actix_web::web::Bytes> {
        &self.lists
    }

    /// Who credentials belong to, kept while nothing about their owner changed.
    pub fn credentials(&self) -> &Cache<String, Arc<Known>> {
        &self.credentials
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// What wakes the delivery worker: deliveries were queued (or resumed) on some instance.
    pub fn outbox(&self) -> Arc<tokio::sync::Notify> {
        self.outbox.clone()
    }

    /// What wakes the mail worker: events were written (what waits on someone may have
    /// changed).
    pub fn mail(&self) -> Arc<tokio::sync::Notify> {
        self.mail.clone()
    }

    /// What wakes the mail worker at once: mail was queued (an announcement).
    pub fn mail_now(&self) -> Arc<tokio::sync::Notify> {
        self.mail_now.clone()
    }

    /// Moves the head to `position` (the log's head, read while no stream was open here) if
    /// still no stream is open: what was written while no one listened is not pushed. A
    /// stream that opens reads what it needs from the log itself, after subscribing (so after
    /// `position` was read); left behind, the head would have the first streams to open pushed
    /// that whole backlog, fall behind the bus together and each read the log again. Once a
    /// stream is open, the head is the pushing's alone: moving it could skip an event that
    /// stream has neither read nor been pushed.
    pub fn skip_to(&self, position: i64) {
        if self.subscribers() == 0 {
            self.head.fetch_max(position, Ordering::AcqRel);
        }
    }

    /// Subscribes to what the bus broadcasts from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Message> {
        self.sender.subscribe()
    }

    /// The position of the last event broadcast.
    pub fn head(&self) -> i64 {
        self.head.load(Ordering::Acquire)
    }

    /// Streams open on this instance.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    fn heard(&self, heard: Heard) {
        match heard {
            Heard::Signal(Signal::Events(run)) => {
                if run.is_empty() {
                    // From an instance that does not name the run: any may have changed.
                    self.runs.changed_all();
                } else {
                    self.runs.changed(&run);
                }
                self.mail.notify_one();
                self.wake();
            }
            Heard::Signal(Signal::Access(user)) => {
                self.credentials.changed(&user);
                // A run's team shows its members' roles.
                self.runs.changed_all();
                let _ = self.sender.send(Message::Access(Some(user.into())));
            }
            Heard::Signal(Signal::Settings) => self.runs.changed_all(),
            Heard::Signal(Signal::Outbox) => {
                self.outbox.notify_one();
                self.mail_now.notify_one();
            }
            Heard::Deaf => {
                self.runs.enable(false);
                self.credentials.enable(false);
            }
            Heard::Listening => {
                self.runs.enable(true);
                self.credentials.enable(true);
                self.outbox.notify_one();
                self.mail.notify_one();
                // Whatever was published while nobody listened: catch up, and have every
                // stream check its caller again.
                self.wake();
                let _ = self.sender.send(Message::Access(None));
            }
        }
    }

    /// Records, off the executor, that a stream of this instance closed (its lease frees
    /// the user's place). If the database is away, the lease goes with this instance.
    pub fn stream_closed(&self, lease: String) {
        let closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        let _ = closed.send(lease);
    }

    fn wake(&self) {
        let wake = self.wake.lock().unwrap_or_else(|e| e.into_inner());
        let _ = wake.send(());
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), shipshape_store::StoreError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map(drop)
        .map_err(|e| shipshape_store::StoreError::Config(format!("cannot start {name}: {e}")))
}

/// Reads what is new in the log whenever woken, and broadcasts it in order.
fn dispatch(store: &Store, bus: &Weak<Bus>, woken: &mpsc::Receiver<()>) {
    let mut pending = false;
    loop {
        match woken.recv_timeout(Duration::from_secs(1)) {
            Ok(()) => pending = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        while woken.try_recv().is_ok() {}
        let Some(bus) = bus.upgrade() else {
            return;
        };
        // With no stream open there is no one to tell, and nothing is read; the first stream
        // to open moves the head past what was written meanwhile (see [`Bus::skip_to`]).
        if !pending || bus.subscribers() == 0 {
            continue;
        }
        loop {
            match store.events_since(bus.head(), None, BATCH) {
                Ok(page) => {
                    let full = page.len() as i64 >= BATCH;
                    for p in page {
                        if let Some(event) = p.event {
                            let lag = (chrono::Utc::now() - event.at).to_std().unwrap_or_default();
                            bus.metrics.pushed(lag);
                            let _ = bus.sender.send(Message::Event(Arc::new(Delivered {
                                position: p.position,
                                event,
                            })));
                        }
                        bus.head.store(p.position, Ordering::Release);
                    }
                    if !full {
                        pending = false;
                        break;
                    }
                }
                Err(e) => {
                    // The database is away: try again shortly (the wake is kept).
                    tracing::warn!(error = %e, "the bus cannot read the log; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                    break;
                }
            }
        }
    }
}

/// Most stream leases closed in one transaction.
const CLOSE_BATCH: usize = 500;

/// Closes the leases of streams that ended, on one thread: those that end together (a proxy
/// dropping every connection) are closed together, not on a thread each. A close that fails
/// (the database is busy or away) is tried again, with whatever ended meanwhile: a lease left
/// open would hold its user's place for as long as this instance lives.
fn close_streams(store: &Store, to_close: &mpsc::Receiver<String>) {
    let mut leases: Vec<String> = Vec::new();
    loop {
        if leases.is_empty() {
            match to_close.recv() {
                Ok(lease) => leases.push(lease),
                Err(mpsc::RecvError) => return,
            }
        }
        let mut open = true;
        while leases.len() < CLOSE_BATCH {
            match to_close.try_recv() {
                Ok(lease) => leases.push(lease),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        match store.close_streams(&leases) {
            Ok(()) => leases.clear(),
            // The instance is stopping: its record goes, with its streams.
            Err(_) if !open => return,
            Err(e) => {
                tracing::warn!(error = %e, leases = leases.len(), "cannot record that streams closed; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// Keeps this instance's record alive, and (on one instance at a time) forgets dead ones.
fn heartbeat(store: &Store, bus: &Weak<Bus>) {
    loop {
        let Some(instance) = bus.upgrade().map(|b| b.instance.clone()) else {
            return;
        };
        if let Err(e) = store.heartbeat(&instance, env!("CARGO_PKG_VERSION")) {
            tracing::warn!(error = %e, "cannot record that this instance is alive");
        }
        match store.hold_lease(HOUSEKEEPING, &instance, ALIVE) {
            Ok(true) => {
                if let Err(e) = store.reap_instances(ALIVE * 3) {
                    tracing::warn!(error = %e, "cannot forget stopped instances");
                }
                let kept = chrono::Duration::from_std(crate::idempotency::KEEP).unwrap_or_default();
                if let Err(e) = store.forget_idempotency_keys(shipshape_store::now_micros() - kept)
                {
                    tracing::warn!(error = %e, "cannot forget expired idempotency keys");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot take the housekeeping lease"),
        }
        // Sleep in short steps so that a stopped server's thread ends soon.
        for _ in 0..(HEARTBEAT.as_millis() / 100) {
            if bus.strong_count() == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
