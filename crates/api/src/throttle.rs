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

/// The address of the client behind a request, as [`client_address`] reads it.
pub fn request_address(
    req: &actix_web::HttpRequest,
    trusted: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    client_address(req.peer_addr().map(|a| a.ip()), forwarded, trusted)
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

fn refused(retry_after: std::time::Duration) -> ApiError {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    ApiError::too_many_attempts(secs)
}

impl Attempt {
    /// Asks the guard to admit an attempt on `username` from `address`; a refusal is `429`
    /// with `Retry-After`.
    ///
    /// Two steps, in this order: the address first, waiting for its turn when it is paced;
    /// then the account, just before the password is checked. So an attempt counts against
    /// the account only while it is really being judged: attempts parked in an address's
    /// queue (or abandoned there) never hold an account.
    pub async fn admit(
        state: &web::Data<AppState>,
        username: &str,
        address: Option<std::net::IpAddr>,
    ) -> Result<Attempt, ApiError> {
        let mut attempt = Attempt {
            state: state.clone(),
            keys: Vec::with_capacity(2),
            address: address.map(|a| a.to_string()),
            done: false,
        };
        if let Some(key) = address.map(GuardKey::address) {
            let k = [key.clone()];
            match blocking(state, move |s| s.admit_sign_in(&k)).await? {
                Admission::Refused { retry_after } => return Err(refused(retry_after)),
                Admission::Go { wait } => {
                    attempt.keys.push(key);
                    if !wait.is_zero() {
                        actix_web::rt::time::sleep(wait).await;
                    }
                }
            }
        }
        if let Some(key) = GuardKey::account(username) {
            let k = [key.clone()];
            // A refusal here drops `attempt`, which gives the address's attempt back.
            match blocking(state, move |s| s.admit_sign_in(&k)).await? {
                Admission::Refused { retry_after } => return Err(refused(retry_after)),
                Admission::Go { .. } => attempt.keys.push(key),
            }
        }
        Ok(attempt)
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
