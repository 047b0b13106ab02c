//! Address policy: which IPs a node may probe or gossip with, and how addresses group.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// True for addresses a public node must never send a request to: anything that is not a
/// globally routable unicast address (loopback, private, link-local including the cloud
/// metadata address 169.254.169.254, CGNAT, multicast, reserved, documentation, IPv6 ULA
/// and link-local), including IPv4 addresses hidden in IPv6 forms (v4-mapped,
/// v4-compatible, the well-known NAT64 prefix, 6to4) and the whole local-use NAT64 prefix.
///
/// The drivers apply it to the addresses a name resolves to, right before connecting,
/// unless `--allow-private-peers` is given; otherwise any node could make every other node
/// send requests into its own private network.
pub fn is_forbidden_probe_target(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", includes 0.0.0.0
        || a == 10 // private
        || a == 127 // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (deprecated)
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224 // multicast, reserved, broadcast
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_forbidden_v4(v4);
    }
    let s = ip.segments();
    // 64:ff9b::/32 outside the well-known /96 (handled above): the local-use translation
    // prefix 64:ff9b:1::/48 (RFC 8215), which an operator may split at any RFC 6052
    // length, so the IPv4 address inside can sit in several places; it is not globally
    // reachable, and the rest of the /32 is reserved. All of it, whatever it embeds.
    s[0] == 0x0064 && s[1] == 0xff9b
        || ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (includes fd00:ec2::254 metadata)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF assignments incl. Teredo 2001::/32
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x3fff && s[1] < 0x1000) // documentation 3fff::/20
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard 100::/64
        || s[0] == 0 // the rest of ::/16 (reserved) once the v4 forms are handled
}

/// The IPv4 address inside the IPv6 forms that reach IPv4 hosts: v4-mapped `::ffff:a.b.c.d`,
/// the deprecated v4-compatible `::a.b.c.d`, the well-known NAT64 `64:ff9b::a.b.c.d` and 6to4
/// `2002:AABB:CCDD::`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new(
        (s[6] >> 8) as u8,
        (s[6] & 0xff) as u8,
        (s[7] >> 8) as u8,
        (s[7] & 0xff) as u8,
    );
    if s[0..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || (s[5] == 0 && !(s[6] == 0 && s[7] <= 1))) {
        return Some(low);
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return Some(low);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            (s[1] & 0xff) as u8,
            (s[2] >> 8) as u8,
            (s[2] & 0xff) as u8,
        ));
    }
    None
}

/// An address with IPv4-mapped IPv6 folded to IPv4, so `::ffff:1.2.3.4` and `1.2.3.4`
/// count as one address.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The network an address belongs to, wherever clients or nodes are grouped by network: the
/// listed nodes per network, each client's share of the Docker Hub budget, the DNS response
/// rate limit (and, at an owner, fills from one network). Its /24 for IPv4 and its /56 for
/// IPv6: a home or small office gets a /56 (or a /48) where it gets one IPv4 address, and a
/// server at least a /64, so grouping IPv6 by /64 gave one customer 256 networks' worth of
/// every allowance where its IPv4 /24 gets one.
pub fn subnet_of(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3] & 0xff00, 0, 0, 0, 0))
        }
    }
}

/// The key a gossip request is rate-limited under: the address for IPv4, the /64 for IPv6
/// (what one host holds: a per-address limit, not a per-network one).
pub fn rate_limit_key(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        v4 @ IpAddr::V4(_) => v4,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(s: &str) -> bool {
        is_forbidden_probe_target(s.parse().expect(s))
    }

    #[test]
    fn internal_addresses_are_forbidden() {
        for s in [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "2001::1",
        ] {
            assert!(forbidden(s), "{s} must be forbidden");
        }
    }

    #[test]
    fn every_nat64_form_of_a_forbidden_address_is_forbidden() {
        // The metadata address 169.254.169.254 (a9fe:a9fe) in each prefix length RFC 6052
        // allows: the well-known /96, and the local-use /48 split at /48, /56, /64 and /96.
        for s in [
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::169.254.169.254",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:a9fe:a9:fe00::",
            "64:ff9b:1:a9:fe:a9fe::",
            "64:ff9b:1:0:a9:fea9:fe00:0",
            "64:ff9b:1:ffff::7f00:1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            // The local-use prefix is not globally reachable whatever it embeds.
            "64:ff9b:1::808:808",
            // Reserved parts of 64:ff9b::/32.
            "64:ff9b:2::808:808",
            "64:ff9b:0:1::808:808",
        ] {
            assert!(forbidden(s), "{s} must be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "169.253.1.1",
            "11.0.0.1",
            "2a00:1450:4001::200e",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!forbidden(s), "{s} must be allowed");
        }
    }

    #[test]
    fn subnets_group_addresses() {
        let ip = |s: &str| -> IpAddr { s.parse().expect(s) };
        assert_eq!(subnet_of(ip("203.0.113.77")), ip("203.0.113.0"));
        assert_eq!(subnet_of(ip("::ffff:203.0.113.77")), ip("203.0.113.0"));
        assert_eq!(subnet_of(ip("2a00:1:2:3:4:5:6:7")), ip("2a00:1:2::"));
        assert_eq!(subnet_of(ip("2a00:1:2:3ff:4::7")), ip("2a00:1:2:300::"));
        assert_eq!(
            subnet_of(ip("2a00:1:2:3ff::1")),
            subnet_of(ip("2a00:1:2:300::1")),
            "one /56"
        );
        assert_ne!(
            subnet_of(ip("2a00:1:2:3ff::1")),
            subnet_of(ip("2a00:1:2:400::1")),
            "the next /56"
        );
        assert_eq!(rate_limit_key(ip("2a00:1:2:3:4:5:6:7")), ip("2a00:1:2:3::"));
        assert_eq!(rate_limit_key(ip("1.2.3.4")), ip("1.2.3.4"));
    }
}
