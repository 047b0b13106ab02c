//! The `peers.toml` parser's tests: every field, every refusal with its line.

use super::super::identity::Identity;
use super::*;

fn key_b64(seed: u8) -> String {
    Identity::from_seed([seed; 32]).public_key().to_base64()
}

#[test]
fn empty_and_comment_only_files_are_valid() {
    assert_eq!(parse_peers(""), Ok(PeersFile::default()));
    assert_eq!(parse_peers("# no peers yet\n"), Ok(PeersFile::default()));
}

#[test]
fn parses_all_fields() {
    let text = format!(
        "# bootstrap\n[[peer]]\nurl = \"https://A.example/\"\n\n[[peer]]\nurl = \"http://b.example:8080\"\nweight = 2\nkey = \"{}\"\n",
        key_b64(1)
    );
    let file = parse_peers(&text).expect("valid");
    assert!(file.pools.is_empty());
    let peers = file.peers;
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[0].url.as_str(), "https://a.example");
    assert_eq!(peers[0].line, 3);
    assert_eq!(peers[0].weight, None);
    assert_eq!(peers[1].weight, Some(2.0));
    assert_eq!(peers[1].key.map(|k| k.to_base64()), Some(key_b64(1)));
    assert_eq!(peers[1].line, 6);
}

#[test]
fn errors_name_the_line_and_reason() {
    let cases: &[(&str, &str)] = &[
        (
            "[[peer]]\nurl = \"ftp://a.example\"\n",
            "line 2: url: scheme `ftp` is not allowed",
        ),
        ("[[peer]]\nweight = 1.0\n", "line 1: missing field `url`"),
        ("\n\n[[peer]]\n", "line 3: missing field `url` (or `pool`"),
        (
            "\n[[peer]]\nurl = \"https://a.example\"\nwieght = 2.0\n",
            "line 4: unknown field `wieght`",
        ),
        (
            "[[peer]]\nurl = \"https://a.example\"\nweight = 0.0\n",
            "line 3: weight: 0 is not a number",
        ),
        (
            "[[peer]]\nurl = \"https://a.example\"\nweight = inf\n",
            "line 3: weight: inf is not a number",
        ),
        (
            "[[peer]]\nurl = \"https://a.example\"\nweight = 1000.0\n",
            "line 3: weight: 1000",
        ),
        (
            "[[peer]]\nurl = \"https://a.example\"\nkey = \"abc\"\n",
            "line 3: key: not standard base64",
        ),
        (
            "[[peer]]\nurl = \"https://a.example\"\nweight = \"heavy\"\n",
            "line 3: invalid type",
        ),
        (
            "[[peer]]\nurl = 'https://a.example'\n[[peer]]\nurl = \"https://A.EXAMPLE/\"\n",
            "line 4: url https://a.example already appears on line 2",
        ),
        ("peers = []\n", "line 1: unknown field `peers`"),
        ("[[peer]\nurl = \"x\"\n", "line 1:"),
        (
            "[[peer]]\nurl = \"https://a.example/?q=1\"\n",
            "line 2: url: must not contain a query",
        ),
        // What a volunteer writes first: one bracket, and a host without its scheme.
        (
            "# my peers\n\n[peer]  # the seed\nurl = \"https://a.example\"\n",
            "line 3: `[peer]` is one table; write `[[peer]]` (two brackets) above each peer",
        ),
        (
            "[[peer]]\nurl = \"https://a.example\"\n\n[ peer ]\nurl = \"https://b.example\"\n",
            "line 4: `[peer]` is one table",
        ),
        (
            "[[peer]]\nurl = \"a.example\"\n",
            "line 2: url: `a.example` has no scheme: write `https://a.example` (or `http://a.example` for plain HTTP)",
        ),
    ];
    for (text, want) in cases {
        let err = parse_peers(text).expect_err(text).to_string();
        assert!(
            err.starts_with(want),
            "for {text:?}: got {err:?}, want prefix {want:?}"
        );
    }
}

#[test]
fn weak_pinned_key_is_refused() {
    let mut weak = [0u8; 32];
    weak[0] = 1;
    let text = format!(
        "[[peer]]\nurl = \"https://a.example\"\nkey = \"{}\"\n",
        PublicKey::from_bytes(weak).to_base64()
    );
    let err = parse_peers(&text).expect_err("weak").to_string();
    assert!(err.contains("weak"), "{err}");
}

#[test]
fn a_pool_entry_takes_its_defaults_and_its_options() {
    let text = "[[peer]]\nurl = \"https://a.example\"\n\n[[peer]]\npool = \"Pool.Badges.Example.ORG.\"\n\n[[peer]]\npool = \"pool.test\"\nport = 8080\nscheme = \"https\"\nnameserver = \"127.0.0.7:5353\"\n\n[[peer]]\npool = \"pool.test\"\nnameserver = \"::1\"\n";
    let file = parse_peers(text).expect("valid");
    assert_eq!(file.peers.len(), 1, "the url entry reads as before");
    assert_eq!(
        file.pools,
        vec![
            PoolSeed {
                name: "pool.badges.example.org".into(),
                scheme: PoolScheme::Http,
                port: 80,
                nameserver: None,
                line: 5,
            },
            PoolSeed {
                name: "pool.test".into(),
                scheme: PoolScheme::Https,
                port: 8080,
                nameserver: Some("127.0.0.7:5353".parse().expect("addr")),
                line: 8,
            },
            PoolSeed {
                name: "pool.test".into(),
                scheme: PoolScheme::Http,
                port: 80,
                nameserver: Some("[::1]:53".parse().expect("addr")),
                line: 14,
            },
        ]
    );
    assert_eq!(file.pools[0].to_string(), "pool.badges.example.org");
    assert_eq!(
        file.pools[1].to_string(),
        "https://pool.test:8080 via 127.0.0.7:5353"
    );
}

#[test]
fn a_pool_seed_is_asked_at_each_address_on_its_port() {
    let text = "[[peer]]\npool = \"pool.test\"\n[[peer]]\npool = \"pool.test\"\nport = 8080\n";
    let pools = parse_peers(text).expect("valid").pools;
    let v4: IpAddr = "192.0.2.7".parse().expect("ip");
    let v6: IpAddr = "2001:db8::7".parse().expect("ip");
    assert_eq!(
        pools[0].url_for(v4).expect("url").as_str(),
        "http://192.0.2.7"
    );
    assert_eq!(
        pools[1].url_for(v6).expect("url").as_str(),
        "http://[2001:db8::7]:8080"
    );
}

#[test]
fn bad_pool_entries_name_the_line_and_reason() {
    let key = key_b64(1);
    let with_key = format!("[[peer]]\npool = \"pool.test\"\nkey = \"{key}\"\n");
    let cases: &[(&str, &str)] = &[
        (
            "[[peer]]\nurl = \"https://a.example\"\npool = \"pool.test\"\n",
            "line 3: pool: an entry names one node by `url` or a pool by `pool`, not both",
        ),
        (
            "[[peer]]\npool = \"pool_test.example\"\n",
            "line 2: pool: \"pool_test.example\" is not a DNS name: only letters",
        ),
        (
            "[[peer]]\npool = \"192.0.2.7\"\n",
            "line 2: pool: \"192.0.2.7\" is an address, not a name",
        ),
        (
            "[[peer]]\npool = \"http://pool.test\"\n",
            "line 2: pool: \"http://pool.test\" is not a DNS name: write the name alone",
        ),
        (
            "[[peer]]\npool = \"pool..test\"\n",
            "line 2: pool: \"pool..test\" is not a DNS name: an empty label",
        ),
        (
            "[[peer]]\npool = \"-pool.test\"\n",
            "line 2: pool: \"-pool.test\" is not a DNS name: a label starts or ends",
        ),
        (
            "[[peer]]\npool = \"localhost\"\n",
            "line 2: pool: \"localhost\" is not a DNS name: a pool's name has at least two labels",
        ),
        (
            "[[peer]]\npool = \"pool.123\"\n",
            "line 2: pool: \"pool.123\" is not a DNS name: its last label is all digits",
        ),
        (
            "[[peer]]\npool = \"\"\n",
            "line 2: pool: a DNS name is needed",
        ),
        (
            "[[peer]]\npool = \"pool.test\"\nport = 0\n",
            "line 3: port: 0 is not a port from 1 to 65535",
        ),
        (
            "[[peer]]\npool = \"pool.test\"\nport = 65536\n",
            "line 3: port: 65536 is not a port",
        ),
        (
            "[[peer]]\npool = \"pool.test\"\nport = \"80\"\n",
            "line 3: invalid type",
        ),
        (
            "[[peer]]\npool = \"pool.test\"\nscheme = \"ftp\"\n",
            "line 3: scheme: `ftp` is not allowed (http or https)",
        ),
        (
            "[[peer]]\npool = \"pool.test\"\nnameserver = \"ns1.pool.test\"\n",
            "line 3: nameserver: \"ns1.pool.test\" is not an address",
        ),
        (
            "[[peer]]\npool = \"pool.test\"\nnameserver = \"127.0.0.1:0\"\n",
            "line 3: nameserver: \"127.0.0.1:0\": port 0",
        ),
        (
            "[[peer]]\npool = \"pool.test\"\nweight = 2.0\n",
            "line 3: weight: describes one node",
        ),
        (with_key.as_str(), "line 3: key: pins one node"),
        (
            "[[peer]]\nurl = \"https://a.example\"\nport = 8080\n",
            "line 3: port: belongs to a `pool` entry",
        ),
        (
            "[[peer]]\nurl = \"https://a.example\"\nnameserver = \"127.0.0.1\"\n",
            "line 3: nameserver: belongs to a `pool` entry",
        ),
        (
            "[[peer]]\nurl = \"https://a.example\"\nscheme = \"http\"\n",
            "line 3: scheme: belongs to a `pool` entry",
        ),
        (
            "[[peer]]\npool = \"pool.test\"\n[[peer]]\npool = \"POOL.test.\"\n",
            "line 4: pool pool.test already appears on line 2",
        ),
        (
            "[[peer]]\npool = \"pool.test\"\nprot = 80\n",
            "line 3: unknown field `prot`",
        ),
    ];
    for (text, want) in cases {
        let err = parse_peers(text).expect_err(text).to_string();
        assert!(
            err.starts_with(want),
            "for {text:?}: got {err:?}, want prefix {want:?}"
        );
    }
}

#[test]
fn the_same_pool_through_two_nameservers_is_two_entries() {
    let text = "[[peer]]\npool = \"pool.test\"\nnameserver = \"192.0.2.53\"\n[[peer]]\npool = \"pool.test\"\nnameserver = \"198.51.100.53\"\n";
    assert_eq!(parse_peers(text).expect("valid").pools.len(), 2);
}

#[test]
fn pools_and_peers_are_bounded() {
    let pools: String = (0..=MAX_POOLS)
        .map(|i| format!("[[peer]]\npool = \"p{i}.pool.test\"\n"))
        .collect();
    let err = parse_peers(&pools).expect_err("too many pools").to_string();
    assert_eq!(
        err,
        format!("line {}: more than {MAX_POOLS} pools", 2 * MAX_POOLS + 2)
    );
    let mut mixed: String = (0..MAX_PEERS - 1)
        .map(|i| format!("[[peer]]\nurl = \"https://n{i}.example\"\n"))
        .collect();
    mixed.push_str("[[peer]]\npool = \"pool.test\"\n[[peer]]\npool = \"other.test\"\n");
    let err = parse_peers(&mixed)
        .expect_err("too many entries")
        .to_string();
    assert!(
        err.ends_with(&format!("more than {MAX_PEERS} peers")),
        "{err}"
    );
}
