//! Turns at SQLite's one writer connection, first come first served.
//!
//! The connection pool hands a returned connection to whichever thread asks next: one that
//! has just arrived often beats those already waiting, so under many writers some wait far
//! longer than their share (16 writers: a p99 twice the median). Writers take a turn here,
//! in order of arrival, before they take the connection.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// A first-come-first-served queue for one holder at a time.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Who holds the turn now, if anyone (a number given on arrival).
    holder: Option<u64>,
    next: u64,
    waiting: VecDeque<(u64, Thread)>,
}

/// A turn held: the next in line gets it when this is dropped.
#[derive(Debug)]
pub(crate) struct Turn<'a> {
    turns: &'a Turns,
}

impl Turns {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this thread's turn, at most `patience`; `None` if it did not come.
    pub(crate) fn take(&self, patience: Duration) -> Option<Turn<'_>> {
        let deadline = Instant::now() + patience;
        let me = {
            let mut inner = self.lock();
            let me = inner.next;
            inner.next += 1;
            if inner.holder.is_none() && inner.waiting.is_empty() {
                inner.holder = Some(me);
                return Some(Turn { turns: self });
            }
            inner.waiting.push_back((me, std::thread::current()));
            me
        };
        loop {
            let now = Instant::now();
            if now < deadline {
                std::thread::park_timeout(deadline - now);
            }
            let mut inner = self.lock();
            if inner.holder == Some(me) {
                return Some(Turn { turns: self });
            }
            if Instant::now() >= deadline {
                inner.waiting.retain(|(n, _)| *n != me);
                return None;
            }
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut inner = self.turns.lock();
        match inner.waiting.pop_front() {
            Some((next, thread)) => {
                inner.holder = Some(next);
                thread.unpark();
            }
            None => inner.holder = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn turns_go_in_order_of_arrival() {
        let turns = Arc::new(Turns::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = turns.take(Duration::from_secs(1)).unwrap();
        let mut waiting = Vec::new();
        for i in 0..8 {
            let (queued, order) = (turns.clone(), order.clone());
            waiting.push(std::thread::spawn(move || {
                let _turn = queued.take(Duration::from_secs(5)).unwrap();
                order.lock().unwrap().push(i);
            }));
            // Each has queued before the next arrives.
            while turns.lock().waiting.len() < i + 1 {
                std::thread::yield_now();
            }
        }
        drop(first);
        for w in waiting {
            w.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
        assert!(turns.take(Duration::ZERO).is_some(), "free again");
    }

    #[test]
    fn one_who_waited_too_long_leaves_the_line_and_the_next_goes_on() {
        let turns = Arc::new(Turns::default());
        let held = turns.take(Duration::from_secs(1)).unwrap();
        assert!(turns.take(Duration::from_millis(50)).is_none());
        let next = {
            let queued = turns.clone();
            std::thread::spawn(move || queued.take(Duration::from_secs(5)).is_some())
        };
        while turns.lock().waiting.is_empty() {
            std::thread::yield_now();
        }
        drop(held);
        assert!(next.join().unwrap(), "the one who left is skipped");
        assert!(turns.lock().holder.is_none());
    }
}
