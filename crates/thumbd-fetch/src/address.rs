//! Which IP addresses a URL source may not reach: everything that is not plainly a public
//! unicast address on the Internet.
//!
//! The tables follow the IANA special-purpose address registries. IPv6 forms that carry an
//! IPv4 address (mapped, compatible, NAT64, 6to4) are judged by that IPv4 address, so
//! `::ffff:127.0.0.1` or `64:ff9b::a9fe:a9fe` are refused like `127.0.0.1` and
//! `169.254.169.254`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Refused IPv4 ranges: (network, prefix length, name).
const V4: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "this network"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "carrier-grade NAT"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    // 240/4 holds 255.255.255.255 (broadcast) as well.
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
];

/// Refused IPv6 ranges that do not embed an IPv4 address.
const V6: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
    (Ipv6Addr::LOCALHOST, 128, "loopback"),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "local-use NAT64",
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only",
    ),
    // Teredo (2001::/32), benchmarking, ORCHID and a few anycast services.
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        "IETF protocol assignments",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
        16,
        "segment routing",
    ),
    // Holds AWS's metadata address fd00:ec2::254.
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique local",
    ),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

/// The name of the refused range `ip` is in (`"loopback"`, `"private"`, `"link-local"`, …),
/// or `None` for a public unicast address a URL source may reach.
///
/// ```
/// use thumbd_fetch::refused_range;
///
/// assert_eq!(refused_range("169.254.169.254".parse()?), Some("link-local"));
/// assert_eq!(refused_range("::ffff:10.1.2.3".parse()?), Some("private"));
/// assert_eq!(refused_range("93.184.215.14".parse()?), None);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => refused_v4(v4),
            None => refused_v6(v6),
        },
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    V4.iter()
        .find(|(net, len, _)| prefix_v4(bits, *len) == prefix_v4(u32::from(*net), *len))
        .map(|(_, _, name)| *name)
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    V6.iter()
        .find(|(net, len, _)| prefix_v6(bits, *len) == prefix_v6(u128::from(*net), *len))
        .map(|(_, _, name)| *name)
}

/// The IPv4 address an IPv6 address stands for, where the network would deliver it to
/// that IPv4 address (or could be told to).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    let low32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match u128::from(ip) >> 32 {
        // IPv4-mapped ::ffff:a.b.c.d.
        0xffff => Some(low32),
        // IPv4-compatible ::a.b.c.d (deprecated); `::` and `::1` are IPv6's own.
        0 if u128::from(ip) > 1 => Some(low32),
        // NAT64 well-known prefix 64:ff9b::/96.
        0x0064_ff9b_0000_0000_0000_0000 => Some(low32),
        // 6to4 2002:a.b.c.d::/48.
        _ if o[..2] == [0x20, 0x02] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

fn prefix_v4(bits: u32, len: u8) -> u32 {
    bits.checked_shr(32 - u32::from(len)).unwrap_or(0)
}

fn prefix_v6(bits: u128, len: u8) -> u128 {
    bits.checked_shr(128 - u32::from(len)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(table: &[(&str, Option<&str>)]) {
        let mut wrong = Vec::new();
        for &(text, expected) in table {
            let ip: IpAddr = text.parse().expect(text);
            let got = refused_range(ip);
            if got != expected {
                wrong.push(format!("{text}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn ipv4_table() {
        check(&[
            ("0.0.0.0", Some("this network")),
            ("0.255.255.255", Some("this network")),
            ("1.1.1.1", None),
            ("8.8.8.8", None),
            ("9.255.255.255", None),
            ("10.0.0.1", Some("private")),
            ("10.255.255.255", Some("private")),
            ("11.0.0.0", None),
            ("100.63.255.255", None),
            ("100.64.0.1", Some("carrier-grade NAT")),
            ("100.127.255.255", Some("carrier-grade NAT")),
            ("100.128.0.0", None),
            ("126.255.255.255", None),
            ("127.0.0.1", Some("loopback")),
            ("127.255.255.254", Some("loopback")),
            ("128.0.0.0", None),
            ("169.253.255.255", None),
            ("169.254.169.254", Some("link-local")),
            ("169.255.0.0", None),
            ("172.15.255.255", None),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("172.32.0.0", None),
            ("192.0.0.8", Some("IETF protocol assignments")),
            ("192.0.1.1", None),
            ("192.0.2.1", Some("documentation")),
            ("192.88.99.1", Some("6to4 relay anycast")),
            ("192.167.255.255", None),
            ("192.168.1.1", Some("private")),
            ("192.169.0.0", None),
            ("198.17.255.255", None),
            ("198.18.0.1", Some("benchmarking")),
            ("198.19.255.255", Some("benchmarking")),
            ("198.20.0.0", None),
            ("198.51.100.7", Some("documentation")),
            ("203.0.113.9", Some("documentation")),
            ("223.255.255.255", None),
            ("224.0.0.1", Some("multicast")),
            ("239.255.255.250", Some("multicast")),
            ("240.0.0.1", Some("reserved")),
            ("255.255.255.255", Some("reserved")),
        ]);
    }

    #[test]
    fn ipv6_table() {
        check(&[
            ("::", Some("unspecified")),
            ("::1", Some("loopback")),
            ("::2", Some("this network")), // IPv4-compatible 0.0.0.2
            ("2606:4700::1111", None),
            ("2a00:1450:4001:80b::200e", None),
            ("fe80::1", Some("link-local")),
            ("febf:ffff::1", Some("link-local")),
            ("fec0::1", Some("site-local")),
            ("fc00::1", Some("unique local")),
            ("fd12:3456::1", Some("unique local")),
            ("fd00:ec2::254", Some("unique local")),
            ("ff02::1", Some("multicast")),
            ("ff0e::101", Some("multicast")),
            ("2001:db8::1", Some("documentation")),
            ("3fff::1", Some("documentation")),
            ("2001::1", Some("IETF protocol assignments")),
            ("2001:1ff:ffff::1", Some("IETF protocol assignments")),
            ("2001:200::1", None),
            ("100::1", Some("discard-only")),
            ("64:ff9b:1::1", Some("local-use NAT64")),
            ("5f00::1", Some("segment routing")),
            ("2002:808:808::1", None), // 6to4 of 8.8.8.8
        ]);
    }

    #[test]
    fn ipv6_forms_of_ipv4_are_judged_by_their_ipv4_address() {
        check(&[
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:7f00:1", Some("loopback")),
            ("::ffff:10.0.0.1", Some("private")),
            ("::ffff:169.254.169.254", Some("link-local")),
            ("::ffff:0.0.0.0", Some("this network")),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some("loopback")),
            ("::192.168.0.1", Some("private")),
            ("::8.8.8.8", None),
            ("64:ff9b::127.0.0.1", Some("loopback")),
            ("64:ff9b::a9fe:a9fe", Some("link-local")),
            ("64:ff9b::10.0.0.1", Some("private")),
            ("64:ff9b::8.8.8.8", None),
            ("2002:7f00:1::", Some("loopback")),
            ("2002:a9fe:a9fe::1", Some("link-local")),
            ("2002:c0a8:101::1", Some("private")),
        ]);
    }
}
