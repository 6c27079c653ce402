//! The outbound-request guard's rules: which addresses the server may connect to when it
//! sends a request a user configured (a webhook target, later a probe). Loopback,
//! link-local, private, cloud-metadata and other non-public addresses are refused unless an
//! administrator allow-lists them (`SHIPSHAPE_OUTBOUND_ALLOW`: CIDRs or host names), so that
//! a URL cannot be used to reach the server's own network (request forgery).
//!
//! These are pure functions over addresses; the API crate applies them to every address a
//! name resolves to, at connection time, so a name that changes its answer between the check
//! and the connection (DNS rebinding) gains nothing.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of address an IP address is, for the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// A public unicast address: allowed.
    Public,
    /// This host (`127.0.0.0/8`, `::1`).
    Loopback,
    /// "Any" (`0.0.0.0/8`, `::`): connecting to it reaches this host.
    Unspecified,
    /// A private network (`10/8`, `172.16/12`, `192.168/16`, `fc00::/7`).
    Private,
    /// Carrier-grade NAT space (`100.64.0.0/10`), private in practice.
    SharedAddressSpace,
    /// Link-local (`169.254/16`, `fe80::/10`): where cloud metadata services live.
    LinkLocal,
    /// A cloud provider's metadata or platform service (`169.254.169.254`, `fd00:ec2::254`,
    /// `100.100.100.200`, `168.63.129.16`).
    Metadata,
    /// Multicast or broadcast: not a server.
    Multicast,
    /// Reserved, documentation or benchmarking ranges: not a real server.
    Reserved,
}

impl AddressClass {
    /// Whether the guard lets a request through to this class without an allow-list entry.
    pub fn is_public(self) -> bool {
        self == AddressClass::Public
    }

    /// Words for a refusal: "127.0.0.1 is {a loopback address}".
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Private => "a private address",
            AddressClass::SharedAddressSpace => "a shared (carrier-grade NAT) address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Metadata => "a cloud metadata address",
            AddressClass::Multicast => "a multicast or broadcast address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

/// The class of an address. IPv6 addresses that carry an IPv4 one (IPv4-mapped,
/// IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the IPv4 address
/// they lead to.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254)
        || ip == Ipv4Addr::new(100, 100, 100, 200)
        || ip == Ipv4Addr::new(168, 63, 129, 16)
    {
        AddressClass::Metadata
    } else if a == 127 {
        AddressClass::Loopback
    } else if a == 0 {
        AddressClass::Unspecified
    } else if a == 10 || (a == 172 && (16..=31).contains(&b)) || (a == 192 && b == 168) {
        AddressClass::Private
    } else if a == 100 && (64..=127).contains(&b) {
        AddressClass::SharedAddressSpace
    } else if a == 169 && b == 254 {
        AddressClass::LinkLocal
    } else if (224..=239).contains(&a) || ip == Ipv4Addr::BROADCAST {
        AddressClass::Multicast
    } else if a >= 240
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 192 && b == 88 && c == 99)
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        AddressClass::Metadata
    } else if ip == Ipv6Addr::LOCALHOST {
        AddressClass::Loopback
    } else if ip == Ipv6Addr::UNSPECIFIED {
        AddressClass::Unspecified
    } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
        // Unique local, and the deprecated site-local range.
        AddressClass::Private
    } else if s[0] & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if s[0] & 0xff00 == 0xff00 {
        AddressClass::Multicast
    } else if (s[0] == 0x2001 && s[1] == 0x0db8)
        || s[0] & 0xe000 != 0x2000
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])
    {
        // Documentation, anything outside global unicast 2000::/3, and the discard prefix.
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// The IPv4 address an IPv6 address leads to, if it carries one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    // IPv4-compatible (deprecated) `::a.b.c.d`, except `::` and `::1`.
    if s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1) {
        return Some(low(s[6], s[7]));
    }
    // NAT64 well-known prefix `64:ff9b::/96`.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low(s[6], s[7]));
    }
    // 6to4 `2002:a.b.c.d::/48`.
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2]));
    }
    None
}

/// A block of addresses, `ADDR/PREFIX` (a bare address is one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `127.0.0.1`, `fd00::/8`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max)?
            }
            Some(_) => return None,
            None => max,
        };
        Some(Cidr { network, prefix })
    }

    /// Whether `ip` is inside the block (an IPv4-mapped IPv6 address counts as its IPv4
    /// address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// What an administrator allows beyond public addresses: address blocks, and host names
/// (allowed whatever they resolve to). Public addresses are allowed too, unless the
/// administrator turned that off (strict egress: only what is listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    blocks: Vec<Cidr>,
    hosts: Vec<String>,
    public: bool,
}

impl Default for AllowList {
    fn default() -> Self {
        AllowList {
            blocks: Vec::new(),
            hosts: Vec::new(),
            public: true,
        }
    }
}

/// Why an allow-list entry is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither an address block (e.g. 10.1.0.0/16) nor a host name")]
pub struct AllowListError(pub String);

impl AllowList {
    /// Parses comma- or white-space-separated entries: CIDRs, addresses or host names.
    pub fn parse(s: &str) -> Result<AllowList, AllowListError> {
        let mut list = AllowList::default();
        for entry in s.split(|c: char| c == ',' || c.is_whitespace()) {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            if let Some(block) = Cidr::parse(entry) {
                list.blocks.push(block);
            } else if is_host_name(entry) {
                list.hosts
                    .push(entry.trim_end_matches('.').to_ascii_lowercase());
            } else {
                return Err(AllowListError(entry.to_owned()));
            }
        }
        Ok(list)
    }

    /// The same list, with public addresses allowed or not.
    pub fn with_public(mut self, public: bool) -> AllowList {
        self.public = public;
        self
    }

    /// Whether the list names `host` (allowed whatever it resolves to).
    pub fn names(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Whether the list allows connecting to `ip` for a URL whose host is `host`.
    pub fn allows(&self, host: &str, ip: IpAddr) -> bool {
        self.names(host) || self.blocks.iter().any(|b| b.contains(ip))
    }

    /// Whether some address `host` resolves to could be allowed: if not, there is no need
    /// to look it up (strict egress, and neither the name nor any block listed).
    pub fn could_allow(&self, host: &str) -> bool {
        self.public || !self.blocks.is_empty() || self.names(host)
    }

    /// Whether nothing is allowed beyond public addresses.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty() && self.hosts.is_empty()
    }
}

fn is_host_name(s: &str) -> bool {
    let s = s.trim_end_matches('.');
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Why the guard refuses an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The URL's host.
    pub host: String,
    /// The address it led to.
    pub ip: IpAddr,
    /// What kind of address that is.
    pub class: AddressClass,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        if host.parse::<IpAddr>().is_ok() {
            write!(f, "{host} is {}", self.class.describe())?;
        } else if self.class.is_public() {
            write!(
                f,
                "{host} resolves to {}, which is not allow-listed",
                self.ip
            )?;
            return f.write_str(" (outbound requests are limited to SHIPSHAPE_OUTBOUND_ALLOW)");
        } else {
            write!(
                f,
                "{host} resolves to {}, {}",
                self.ip,
                self.class.describe()
            )?;
        }
        f.write_str("; an administrator can allow it with SHIPSHAPE_OUTBOUND_ALLOW")
    }
}

impl std::error::Error for Refused {}

/// The guard's verdict on connecting to `ip` for a URL whose host is `host`.
pub fn check(allow: &AllowList, host: &str, ip: IpAddr) -> Result<(), Refused> {
    let class = classify(ip);
    if (class.is_public() && allow.public) || allow.allows(host, ip) {
        Ok(())
    } else {
        Err(Refused {
            host: host.to_owned(),
            ip,
            class,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn every_class_is_recognised_on_both_families() {
        let cases = [
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.0.9", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("0.0.0.0", AddressClass::Unspecified),
            ("::", AddressClass::Unspecified),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("fd12:3456::1", AddressClass::Private),
            ("fc00::1", AddressClass::Private),
            ("100.64.0.1", AddressClass::SharedAddressSpace),
            ("169.254.1.1", AddressClass::LinkLocal),
            ("fe80::1", AddressClass::LinkLocal),
            ("169.254.169.254", AddressClass::Metadata),
            ("fd00:ec2::254", AddressClass::Metadata),
            ("100.100.100.200", AddressClass::Metadata),
            ("168.63.129.16", AddressClass::Metadata),
            ("224.0.0.1", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Multicast),
            ("ff02::1", AddressClass::Multicast),
            ("192.0.2.10", AddressClass::Reserved),
            ("198.51.100.7", AddressClass::Reserved),
            ("203.0.113.1", AddressClass::Reserved),
            ("240.0.0.1", AddressClass::Reserved),
            ("2001:db8::1", AddressClass::Reserved),
            ("8.8.8.8", AddressClass::Public),
            ("172.32.0.1", AddressClass::Public),
            ("100.128.0.1", AddressClass::Public),
            ("2606:4700::1111", AddressClass::Public),
        ];
        for (ip, want) in cases {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_of_an_ipv4_address_are_judged_by_it() {
        assert_eq!(class("::ffff:127.0.0.1"), AddressClass::Loopback);
        assert_eq!(class("::ffff:169.254.169.254"), AddressClass::Metadata);
        assert_eq!(class("::10.0.0.1"), AddressClass::Private);
        assert_eq!(class("64:ff9b::a9fe:a9fe"), AddressClass::Metadata);
        assert_eq!(class("2002:c0a8:0101::1"), AddressClass::Private);
        assert_eq!(class("::ffff:8.8.8.8"), AddressClass::Public);
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains("10.1.200.3".parse().unwrap()));
        assert!(!block.contains("10.2.0.1".parse().unwrap()));
        assert!(block.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        assert!(
            Cidr::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "::/129",
            "1.2.3.4/+8",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_allow_list_lets_through_its_blocks_and_hosts_only() {
        let allow = AllowList::parse("127.0.0.1/32, hooks.internal  10.9.0.0/16").unwrap();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(check(&allow, "127.0.0.1", loopback).is_ok());
        assert!(check(&allow, "anything", "10.9.1.1".parse().unwrap()).is_ok());
        assert!(check(&allow, "HOOKS.internal.", "192.168.0.4".parse().unwrap()).is_ok());
        let refused = check(&allow, "evil.example", "169.254.169.254".parse().unwrap());
        assert_eq!(
            refused.unwrap_err().to_string(),
            "evil.example resolves to 169.254.169.254, a cloud metadata address; an \
             administrator can allow it with SHIPSHAPE_OUTBOUND_ALLOW"
        );
        assert_eq!(
            check(&AllowList::default(), "[::1]", "::1".parse().unwrap())
                .unwrap_err()
                .to_string(),
            "::1 is a loopback address; an administrator can allow it with \
             SHIPSHAPE_OUTBOUND_ALLOW"
        );
        assert!(check(&AllowList::default(), "h", "127.0.0.2".parse().unwrap()).is_err());
        assert!(check(&AllowList::default(), "h", "93.184.215.14".parse().unwrap()).is_ok());
        assert_eq!(
            AllowList::parse("10.0.0.0/8,http://x").unwrap_err(),
            AllowListError("http://x".into())
        );
        assert!(AllowList::parse(" , ").unwrap().is_empty());
        // Strict egress: only what is listed, public or not.
        let strict = AllowList::parse("localhost").unwrap().with_public(false);
        assert!(check(&strict, "localhost", loopback).is_ok());
        assert_eq!(
            check(&strict, "example.com", "93.184.215.14".parse().unwrap())
                .unwrap_err()
                .to_string(),
            "example.com resolves to 93.184.215.14, which is not allow-listed (outbound \
             requests are limited to SHIPSHAPE_OUTBOUND_ALLOW)"
        );
        assert!(strict.could_allow("localhost") && !strict.could_allow("example.com"));
        assert!(AllowList::default().could_allow("example.com"));
    }
}
