//! Where Sift may send requests: webhook subscriptions, workflow `webhook`
//! actions and Facebook's `graph_url` all name a URL that a client chose,
//! and the server then connects to it from inside the network it runs in.
//! Without a policy a client could reach the loopback interface, the cloud
//! metadata service or private hosts (server-side request forgery), and the
//! Facebook access token would go along.
//!
//! The policy refuses, unless an operator allows private destinations:
//! URLs with user info, names that only mean something locally
//! (`localhost`, `*.internal`, …, single labels) and every address that is
//! not public (loopback, private, link-local, CGNAT, unspecified,
//! multicast, broadcast, documentation and other reserved ranges, also
//! inside IPv4-mapped, 6to4 and NAT64 IPv6 addresses). It is checked twice:
//! when the URL is saved (literal addresses and names; a public name need
//! not resolve then) and at every connection, by a DNS resolver that drops
//! non-public answers, so a name that later resolves to a private address
//! (DNS rebinding) is refused too. No client follows redirects.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How the operator set the policy (`Config::allow_private_destinations`).
#[derive(Clone, Debug, Default)]
pub struct Destinations {
    /// Allows every destination (tests, receivers on the premises).
    pub allow_private: bool,
    /// Names answered without DNS, as `/etc/hosts` would; the policy applies
    /// to them like to any answer. Tests use it to make a name resolve to
    /// loopback.
    pub hosts: Arc<HashMap<String, Vec<IpAddr>>>,
}

/// A destination the policy refuses; carried as the cause of a failed
/// request so that the attempt's message says why.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// What an operator can do about a refusal, appended to its messages.
const HOW_TO_ALLOW: &str = "only public destinations are allowed (an operator can allow private ones with --allow-private-destinations)";

impl Destinations {
    pub fn new(allow_private: bool) -> Destinations {
        Destinations {
            allow_private,
            hosts: Arc::default(),
        }
    }

    /// Parses `text` as an http(s) URL and checks what can be checked
    /// without DNS. The error is a sentence for a person.
    pub fn parse(&self, text: &str) -> Result<Url, String> {
        let url = Url::parse(text).map_err(|e| {
            format!("is not a valid URL ({e}): give an http:// or https:// address")
        })?;
        self.check(&url)?;
        Ok(url)
    }

    /// Checks a parsed URL: scheme, user info, and a host that is a literal
    /// address or a known local name. Run again before every request.
    pub fn check(&self, url: &Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("must use http or https, not {:?}", url.scheme()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "must not hold a user name or password (user:password@host): put credentials in the receiver's own check, such as the signature"
                    .to_string(),
            );
        }
        let Some(host) = url.host() else {
            return Err("has no host".to_string());
        };
        // Such addresses can never be reached: refusing them when saved
        // beats a delivery that fails forever.
        if url.port() == Some(0) {
            return Err("has port 0, which nothing can listen on".to_string());
        }
        if let url::Host::Domain(name) = host
            && name.trim_end_matches('.').split('.').any(str::is_empty)
        {
            return Err(format!("has an empty label in its host name {name:?}"));
        }
        if self.allow_private {
            return Ok(());
        }
        match host {
            url::Host::Ipv4(ip) => refuse_address(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => refuse_address(IpAddr::V6(ip)),
            url::Host::Domain(name) => match local_name(name) {
                Some(why) => Err(format!("points to {name:?}, {why}: {HOW_TO_ALLOW}")),
                None => Ok(()),
            },
        }
    }

    /// A client builder that follows no redirect and, unless private
    /// destinations are allowed, resolves names through the policy.
    pub fn client(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if self.allow_private && self.hosts.is_empty() {
            return builder;
        }
        builder.dns_resolver(Arc::new(PublicOnly {
            allow_private: self.allow_private,
            hosts: self.hosts.clone(),
        }))
    }
}

fn refuse_address(ip: IpAddr) -> Result<(), String> {
    match non_public(ip) {
        Some(kind) => Err(format!("points to {ip}, {kind}: {HOW_TO_ALLOW}")),
        None => Ok(()),
    }
}

/// Why a host name only means something locally, if it does.
fn local_name(name: &str) -> Option<&'static str> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    const LOCAL_SUFFIXES: [&str; 5] =
        ["localhost", "internal", "local", "localdomain", "home.arpa"];
    for suffix in LOCAL_SUFFIXES {
        if name == suffix || name.ends_with(&format!(".{suffix}")) {
            return Some(match suffix {
                "localhost" => "a name of this machine",
                "internal" => "a private network's name (cloud metadata services live there)",
                _ => "a local network's name",
            });
        }
    }
    if !name.contains('.') {
        return Some("a name without a dot, which only a local network resolves");
    }
    None
}

/// Why an address is not public (what kind of range it is in), if it is not.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => non_public_v4(ip),
        IpAddr::V6(ip) => non_public_v6(ip),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        (0, _, _) => "an unspecified (\"this network\") address",
        (10, _, _) => "a private address",
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (127, _, _) => "a loopback address",
        (169, 254, _) => "a link-local address (cloud metadata services live there)",
        (172, 16..=31, _) => "a private address",
        (192, 0, 0) => "an IETF protocol address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (192, 88, 99) => "a 6to4 relay address",
        (192, 168, _) => "a private address",
        (198, 18..=19, _) => "a benchmarking address",
        _ if ip.is_broadcast() => "the broadcast address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved address",
        _ => return None,
    };
    Some(kind)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    let s = ip.segments();
    // Addresses that carry an IPv4 address are as public as it is.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return non_public_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return non_public_v4(embedded(s[1], s[2]));
    }
    let kind = if ip.is_unspecified() {
        "the unspecified address"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if s[0..6] == [0, 0, 0, 0, 0, 0] {
        "an IPv4-compatible address (deprecated)"
    } else if s[0] & 0xff00 == 0xff00 {
        "a multicast address"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "a unique local (private) address"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "a link-local address"
    } else if s[0] & 0xffc0 == 0xfec0 {
        "a site-local address"
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        "a documentation address"
    } else if s[0] == 0x2001 && s[1] < 0x0200 {
        "an IETF protocol address (Teredo and others)"
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        "a local-use NAT64 address"
    } else if s[0] & 0xe000 != 0x2000 {
        // Only 2000::/3 is global unicast.
        "a reserved address"
    } else {
        return None;
    };
    Some(kind)
}

/// The resolver every outbound client uses: the system's answers (or the
/// configured `hosts`) without the non-public addresses; none left fails
/// the connection with [`Refused`].
struct PublicOnly {
    allow_private: bool,
    hosts: Arc<HashMap<String, Vec<IpAddr>>>,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let allow_private = self.allow_private;
        let fixed = self.hosts.get(&host).cloned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = match fixed {
                Some(ips) => ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            if allow_private {
                return Ok(Box::new(found.into_iter()) as Addrs);
            }
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = found
                .into_iter()
                .partition(|addr| non_public(addr.ip()).is_none());
            if let Some(first) = refused.first().filter(|_| public.is_empty()) {
                let kind = non_public(first.ip()).unwrap_or("a non-public address");
                let message = format!("{host} resolves to {}, {kind}: {HOW_TO_ALLOW}", first.ip());
                return Err(Box::new(Refused(message)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// What went wrong with a request, for a delivery status: the policy's
/// refusal when that was it, else the innermost cause ("Connection
/// refused"), which says more than reqwest's own summary.
pub fn describe(error: &reqwest::Error) -> String {
    if let Some(refused) = refusal(error) {
        return refused;
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let what = if error.is_timeout() {
        "no answer in time"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    format!("{what}: {cause}")
}

/// The policy's message, when a request failed because of it.
pub fn refusal(error: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<Refused>() {
            return Some(format!("destination refused: {refused}"));
        }
        cause = current.source();
    }
    None
}

/// A 3xx answer's message: redirects are never followed, so that a body
/// (and a token) is never re-sent somewhere the client did not name.
pub fn redirect_message(status: reqwest::StatusCode, location: Option<&str>) -> String {
    match location {
        Some(to) => format!(
            "the endpoint answered {status}, a redirect to {to}: redirects are not followed; save the final address instead"
        ),
        None => format!("the endpoint answered {status}, a redirect: redirects are not followed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        match Destinations::new(false).parse(text) {
            Err(message) => message,
            Ok(url) => panic!("{text} ({url}) was allowed"),
        }
    }

    #[test]
    fn numeric_forms_of_loopback_are_refused() {
        for text in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://017700000001/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
        ] {
            assert!(
                refused(text).contains("loopback"),
                "{text}: {}",
                refused(text)
            );
        }
    }

    #[test]
    fn every_non_public_range_is_refused() {
        for (text, kind) in [
            ("http://0.0.0.0/", "unspecified"),
            ("http://[::]/", "unspecified"),
            ("http://10.1.2.3/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://172.31.255.255/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://100.64.0.1/", "carrier-grade NAT"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[fd00::1]/", "unique local"),
            ("http://224.0.0.1/", "multicast"),
            ("http://[ff02::1]/", "multicast"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://192.0.2.1/", "documentation"),
            ("http://[2001:db8::1]/", "documentation"),
            ("http://[::ffff:10.0.0.1]/", "private"),
            ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),
            ("http://[2002:7f00:1::]/", "loopback"),
            ("http://localhost:8080/", "this machine"),
            ("http://api.localhost/", "this machine"),
            ("http://LOCALHOST./", "this machine"),
            ("http://metadata.google.internal/", "private network"),
            ("http://db.internal/", "private network"),
            ("http://printer.local/", "local network"),
            ("http://intranet/", "without a dot"),
            ("http://user:pw@example.com/", "user name or password"),
            ("http://user@example.com/", "user name or password"),
            ("ftp://example.com/", "http or https"),
        ] {
            let message = refused(text);
            assert!(message.contains(kind), "{text}: {message}");
        }
    }

    #[test]
    fn unreachable_hosts_are_refused_whatever_the_setting() {
        for allow_private in [false, true] {
            let policy = Destinations::new(allow_private);
            for text in [
                "https://example.com:0/hook",
                "https://.com/hook",
                "https://a..b/hook",
            ] {
                assert!(policy.parse(text).is_err(), "{text} was accepted");
            }
            assert!(policy.parse("https://hooks.example.com./in").is_ok());
        }
    }

    #[test]
    fn public_destinations_and_the_setting_pass() {
        let policy = Destinations::new(false);
        for text in [
            "https://example.com/hooks",
            "https://graph.facebook.com",
            "http://93.184.216.34:8080/x",
            "http://[2606:4700::1111]/",
            "http://[::ffff:8.8.8.8]/",
            "http://172.32.0.1/",
            "http://100.128.0.1/",
        ] {
            assert!(policy.parse(text).is_ok(), "{text}");
        }
        let open = Destinations::new(true);
        for text in ["http://127.0.0.1:9/", "http://localhost/", "http://[::1]/"] {
            assert!(open.parse(text).is_ok(), "{text}");
        }
        assert!(open.parse("http://u:p@127.0.0.1/").is_err());
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_when_connecting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut policy = Destinations::new(false);
        policy.hosts = Arc::new(HashMap::from([(
            "rebound.example.com".to_string(),
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        )]));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = policy.client().build().unwrap();
        let url = format!("http://rebound.example.com:{port}/");
        assert!(policy.parse(&url).is_ok(), "the name itself looks public");
        let error = client.get(&url).send().await.unwrap_err();
        let message = describe(&error);
        assert!(
            message.contains("resolves to 127.0.0.1, a loopback address"),
            "{message}"
        );
        let accepted =
            tokio::time::timeout(std::time::Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err(), "nothing may connect");
    }
}
