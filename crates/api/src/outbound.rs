//! The one guard every outbound request passes (webhook deliveries today, probes later):
//! the URL's host is resolved by the guard's own resolver, which hands the HTTP client only
//! the addresses the rules allow (`shipshape_domain::outbound`). The check is therefore made
//! on the very addresses the client connects to, at connection time: a name that answers
//! differently between a check and the connection (DNS rebinding) gains nothing. A URL
//! whose host is an address literal is checked before the request; redirects are not
//! followed and no proxy is used, so nothing else decides where a request goes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use shipshape_domain::outbound::{AllowList, check};

/// The guard: its allow-list and the HTTP client that resolves through it.
#[derive(Debug, Clone)]
pub struct Guard {
    allow: Arc<AllowList>,
    client: reqwest::Client,
}

/// Why an outbound URL is refused or a request failed before an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutboundError(pub String);

#[derive(Debug)]
struct GuardedResolver {
    allow: Arc<AllowList>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed = resolve_allowed(&allow, &host).await?;
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The addresses `host` resolves to that the rules allow; an error saying why when none is.
async fn resolve_allowed(
    allow: &AllowList,
    host: &str,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    if !allow.could_allow(host) {
        return Err(Box::new(OutboundError(format!(
            "{host} is not allow-listed (outbound requests are limited to SHIPSHAPE_OUTBOUND_ALLOW)"
        ))));
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| OutboundError(format!("{host} does not resolve: {e}")))?
        .collect();
    let mut refused = None;
    let mut allowed = Vec::new();
    for addr in found {
        match check(allow, host, addr.ip()) {
            Ok(()) => allowed.push(addr),
            Err(r) => refused = Some(r),
        }
    }
    match (allowed.is_empty(), refused) {
        (false, _) => Ok(allowed),
        (true, Some(r)) => Err(Box::new(OutboundError(r.to_string()))),
        (true, None) => Err(Box::new(OutboundError(format!(
            "{host} resolves to no address"
        )))),
    }
}

/// The host of `url` as an address, if it is an address literal.
fn literal(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

impl Guard {
    /// A guard with `allow`, whose requests give up after `timeout`.
    pub fn new(allow: AllowList, timeout: Duration) -> Result<Guard, OutboundError> {
        let allow = Arc::new(allow);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                allow: allow.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .pool_max_idle_per_host(2)
            .user_agent(concat!("Shipshape/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OutboundError(format!("cannot build the HTTP client: {e}")))?;
        Ok(Guard { allow, client })
    }

    /// Parses an outbound URL: absolute http(s) with a host, no credentials.
    pub fn parse(raw: &str) -> Result<Url, OutboundError> {
        let url = Url::parse(raw).map_err(|e| OutboundError(format!("is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError("must use http or https".into()));
        }
        if url.host().is_none() {
            return Err(OutboundError("has no host".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError(
                "must not carry a user name or password".into(),
            ));
        }
        Ok(url)
    }

    /// Checks a URL now, as a user enters it: every address its host resolves to today is
    /// judged (the check is made again at every connection).
    pub async fn vet(&self, raw: &str) -> Result<Url, OutboundError> {
        let url = Guard::parse(raw)?;
        let host = url.host_str().unwrap_or_default().to_owned();
        match literal(&url) {
            Some(ip) => check(&self.allow, &host, ip).map_err(|r| OutboundError(r.to_string()))?,
            None => {
                let host = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned();
                let lookup = tokio::time::timeout(
                    Duration::from_secs(5),
                    resolve_allowed(&self.allow, &host),
                )
                .await
                .map_err(|_| OutboundError(format!("{host} does not resolve in time")))?;
                lookup.map_err(|e| OutboundError(e.to_string()))?;
            }
        }
        Ok(url)
    }

    /// A POST to `url` through the guard (not yet sent): an address-literal host is checked
    /// here, a name by the resolver when the client connects.
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, OutboundError> {
        self.request(reqwest::Method::POST, url)
    }

    /// A request to `url` through the guard (not yet sent), as [`Guard::post`].
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, OutboundError> {
        let url = Guard::parse(url)?;
        if let Some(ip) = literal(&url) {
            check(&self.allow, url.host_str().unwrap_or_default(), ip)
                .map_err(|r| OutboundError(r.to_string()))?;
        }
        Ok(self.client.request(method, url))
    }
}
