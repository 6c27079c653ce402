//! The sign-in guard at the HTTP edge: which address a request comes from, and an attempt's
//! way through the guard (admit, wait for its turn, finish with the verdict). The rules are
//! the domain's `signin` module; the counters live in the database (the store), so they
//! survive restarts and hold across every instance on one database.

use actix_web::web;
use shipshape_domain::signin::{Admission, GuardKey, Verdict};

use crate::AppState;
use crate::error::ApiError;
use crate::routes::blocking;

/// The client's address: the peer, or — when the peer is a trusted proxy — the nearest
/// address in `X-Forwarded-For` that is not a trusted proxy.
pub fn client_address(
    peer: Option<std::net::IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    forwarded_for
        .into_iter()
        .flat_map(|h| h.rsplit(','))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .find(|a| !trusted.contains(a))
        .or(Some(peer))
}

/// A sign-in attempt admitted by the guard. Finish it with its verdict; one dropped unfinished
/// (the client went away while it waited or was judged) is given back in the background.
#[derive(Debug)]
pub struct Attempt {
    state: web::Data<AppState>,
    keys: Vec<GuardKey>,
    address: Option<String>,
    done: bool,
}

impl Attempt {
    /// Asks the guard to admit an attempt on `username` from `address`, waiting for the
    /// address's turn when it is paced; a refusal is `429` with `Retry-After`.
    pub async fn admit(
        state: &web::Data<AppState>,
        username: &str,
        address: Option<String>,
    ) -> Result<Attempt, ApiError> {
        let keys = GuardKey::for_attempt(username, address.as_deref());
        let k = keys.clone();
        match blocking(state, move |s| s.admit_sign_in(&k)).await? {
            Admission::Refused { retry_after } => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Err(ApiError::too_many_attempts(secs))
            }
            Admission::Go { wait } => {
                let attempt = Attempt {
                    state: state.clone(),
                    keys,
                    address,
                    done: false,
                };
                if !wait.is_zero() {
                    actix_web::rt::time::sleep(wait).await;
                }
                Ok(attempt)
            }
        }
    }

    /// Records the verdict. A failure that locks an account is logged here (the store has
    /// written its audit entry).
    pub async fn finish(mut self, verdict: Verdict) -> Result<(), ApiError> {
        self.done = true;
        let keys = std::mem::take(&mut self.keys);
        let address = self.address.take();
        let a = address.clone();
        let lock = blocking(&self.state, move |s| {
            s.finish_sign_in(&keys, verdict, a.as_deref())
                .map(|lock| (lock, keys))
        })
        .await?;
        if let (Some(lock), keys) = lock {
            let account = keys.iter().find_map(|k| match k {
                GuardKey::Account(name) => Some(name.as_str()),
                GuardKey::Address(_) => None,
            });
            tracing::warn!(
                account,
                address = address.as_deref(),
                failures = lock.failures,
                locked_until = %lock.until,
                "sign-in lock started"
            );
        }
        Ok(())
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let keys = std::mem::take(&mut self.keys);
        let address = self.address.take();
        let store = self.state.store.clone();
        actix_web::rt::spawn(async move {
            let _ = web::block(move || {
                store.finish_sign_in(&keys, Verdict::Unjudged, address.as_deref())
            })
            .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy: std::net::IpAddr = [10, 0, 0, 9].into();
        let client: std::net::IpAddr = [203, 0, 113, 7].into();
        let header = Some("198.51.100.1, 203.0.113.7");
        assert_eq!(
            client_address(Some(client), header, &[proxy]),
            Some(client),
            "an untrusted peer is the client"
        );
        assert_eq!(
            client_address(Some(proxy), header, &[proxy]),
            Some(client),
            "the nearest hop the proxy saw"
        );
        assert_eq!(client_address(Some(proxy), None, &[proxy]), Some(proxy));
    }
}
