//! A tiny writer of MaxMind DB files (format 2.0, IPv4, 24-bit records),
//! enough for a country database the daemon's `geoip_database` can read:
//! each network maps to `{"country": {"iso_code": "XX"}}`. Written from
//! the public format specification, so the tests download nothing.

use std::net::Ipv4Addr;

#[derive(Clone, Copy)]
enum Record {
    Empty,
    Node(usize),
    Data(usize),
}

fn control(kind: u8, size: usize, out: &mut Vec<u8>) {
    assert!(size < 29, "sizes over 28 are not needed here");
    if kind <= 7 {
        out.push((kind << 5) | size as u8);
    } else {
        out.push(size as u8);
        out.push(kind - 7);
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    control(2, s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

fn uint(kind: u8, v: u64, out: &mut Vec<u8>) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(kind, 8 - skip, out);
    out.extend_from_slice(&bytes[skip..]);
}

/// A country database with `(CIDR, ISO code)` entries, e.g.
/// `("127.0.1.0/24", "FR")`.
pub fn country_db(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut data = Vec::new();
    let mut nodes: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
    for (cidr, iso) in entries {
        let (addr, len) = cidr.split_once('/').expect("a CIDR");
        let bits = u32::from(addr.parse::<Ipv4Addr>().expect("an IPv4 network"));
        let len: u32 = len.parse().expect("a prefix length");
        let offset = data.len();
        control(7, 1, &mut data);
        string("country", &mut data);
        control(7, 1, &mut data);
        string("iso_code", &mut data);
        string(iso, &mut data);
        let mut node = 0;
        for depth in 0..len {
            let bit = ((bits >> (31 - depth)) & 1) as usize;
            if depth + 1 == len {
                nodes[node][bit] = Record::Data(offset);
            } else {
                node = match nodes[node][bit] {
                    Record::Node(next) => next,
                    _ => {
                        nodes.push([Record::Empty; 2]);
                        let next = nodes.len() - 1;
                        nodes[node][bit] = Record::Node(next);
                        next
                    }
                };
            }
        }
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        for rec in node {
            let value = match *rec {
                Record::Empty => count,
                Record::Node(n) => n,
                Record::Data(off) => count + 16 + off,
            };
            out.extend_from_slice(&(value as u32).to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    control(7, 9, &mut out);
    string("node_count", &mut out);
    uint(6, count as u64, &mut out);
    string("record_size", &mut out);
    uint(5, 24, &mut out);
    string("ip_version", &mut out);
    uint(5, 4, &mut out);
    string("database_type", &mut out);
    string("mfad-test-Country", &mut out);
    string("languages", &mut out);
    control(11, 1, &mut out);
    string("en", &mut out);
    string("binary_format_major_version", &mut out);
    uint(5, 2, &mut out);
    string("binary_format_minor_version", &mut out);
    uint(5, 0, &mut out);
    string("build_epoch", &mut out);
    uint(9, 1_700_000_000, &mut out);
    string("description", &mut out);
    control(7, 1, &mut out);
    string("en", &mut out);
    string("mfad test countries", &mut out);
    out
}
