#!/usr/bin/env python3
"""generate.py: writes tests/vectors/rendezvous.json, the test vectors that keep the
rendezvous hashing of status.js and src/rendezvous.rs equal.

A third, independent implementation (Python standard library only), written from the
specification in docs/STATUS_JS.md rather than from either of the other two, so that
all three agreeing means something.

    python3 tests/vectors/generate.py          # rewrite the file
    python3 tests/vectors/generate.py --check  # exit 1 if the file is out of date
"""

import json
import math
import random
import sys
from pathlib import Path

OUT = Path(__file__).with_name("rendezvous.json")
MASK = 0xFFFFFFFF
MAX_WEIGHT = 1000.0


def fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & MASK
    return h


def fmix32(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK
    h ^= h >> 16
    return h


def item_key(organization: str, repository: str, tag: str) -> str:
    return f"{organization}/{repository}:{tag}"


def server_hash(url: str, key: str) -> int:
    return fmix32(fnv1a32((url + "\n" + key).encode("utf-8")))


def unit_interval(h: int) -> float:
    return (h + 0.5) / 2**32


def effective_weight(w: float) -> float:
    if math.isnan(w) or w <= 0:
        return 0.0
    return min(w, MAX_WEIGHT)


def score(url: str, key: str, weight: float) -> float:
    return -effective_weight(weight) / math.log(unit_interval(server_hash(url, key)))


def rank(servers, key):
    # Highest score first, ties by URL (all URLs here are ASCII, so str order is byte order).
    return sorted(servers, key=lambda s: (-score(s["url"], key, s["weight"]), s["url"]))


def hx(n: int) -> str:
    return f"0x{n:08x}"


def well_separated(servers, key) -> bool:
    """True when no two distinct non-zero scores are so close that a last-bit difference
    between two platforms' ln() could swap them (none are, in practice; this proves it)."""
    scores = sorted(score(s["url"], key, s["weight"]) for s in servers)
    return all(b == a or (b - a) > 1e-9 * b for a, b in zip(scores, scores[1:]))


def build():
    rng = random.Random(20261127)

    fnv = [
        # Published FNV-1a 32-bit vectors (from the FNV authors' test suite).
        {"input": "", "hash": "0x811c9dc5", "source": "published"},
        {"input": "a", "hash": "0xe40c292c", "source": "published"},
        {"input": "foobar", "hash": "0xbf9cf968", "source": "published"},
    ]
    for text in ["b", "Docker", "library/nginx:latest", "https://a.example\nlibrary/nginx:latest",
                 "ü", "日本語", "🐳 whale", "tab\there"]:
        fnv.append({"input": text, "hash": hx(fnv1a32(text.encode("utf-8"))), "source": "computed"})
    for entry in fnv:
        assert entry["hash"] == hx(fnv1a32(entry["input"].encode("utf-8"))), entry

    fmix = [
        # MurmurHash3_x86_32 of empty input with seed s is fmix32(s): published vectors.
        {"input": "0x00000000", "output": "0x00000000", "source": "published"},
        {"input": "0x00000001", "output": "0x514e28b7", "source": "published"},
        {"input": "0xffffffff", "output": "0x81f16f39", "source": "published"},
    ]
    for n in [0x811C9DC5, 0xE40C292C, 0x12345678, 0x80000000]:
        fmix.append({"input": hx(n), "output": hx(fmix32(n)), "source": "computed"})
    for entry in fmix:
        assert entry["output"] == hx(fmix32(int(entry["input"], 16))), entry

    keys = [
        {"organization": "library", "repository": "nginx", "tag": "latest"},
        {"organization": "niccokunzmann", "repository": "dockerhub-build-status-image", "tag": "latest"},
        {"organization": "acme", "repository": "web.app", "tag": "1.2.3-rc_1"},
    ]
    for k in keys:
        k["item_key"] = item_key(k["organization"], k["repository"], k["tag"])

    hashes = []
    for url, key in [
        ("https://a.example", "library/nginx:latest"),
        ("https://dockerbuildbadges.quelltext.eu", "niccokunzmann/dockerhub-build-status-image:latest"),
        ("http://127.0.0.1:40001", "library/repo-1:latest"),
        ("http://[::1]:8080", "library/repo-2:latest"),
        ("https://badges.example.org/sub/path", "acme/web.app:1.2.3-rc_1"),
        ("https://xn--bcher-kva.example", "ünïcödé/🐳:tag"),
    ]:
        h = server_hash(url, key)
        hashes.append({
            "url": url,
            "item_key": key,
            "fnv1a32": hx(fnv1a32((url + "\n" + key).encode("utf-8"))),
            "hash": hx(h),
            "h": unit_interval(h),
            "score_weight_1": score(url, key, 1.0),
        })

    def case(name, servers, key):
        assert well_separated(servers, key), (name, key)
        return {
            "name": name,
            "item_key": key,
            "servers": servers,
            "expected": [s["url"] for s in rank(servers, key)],
        }

    five = [{"url": f"https://node{i}.example.org", "weight": 1.0} for i in range(1, 6)]
    loopback = [{"url": f"http://127.0.0.1:{40000 + i}", "weight": 1.0} for i in range(1, 4)]
    mixed = [
        {"url": "https://dockerbuildbadges.quelltext.eu", "weight": 1.0},
        {"url": "https://badges.example.org", "weight": 2.0},
        {"url": "https://dbs.example.com", "weight": 0.5},
        {"url": "http://192.0.2.7:8080", "weight": 1.0},
        {"url": "https://b.example.net/badges", "weight": 3.0},
    ]
    edge = [
        {"url": "https://zero.example", "weight": 0.0},
        {"url": "https://negative.example", "weight": -1.0},
        {"url": "https://huge.example", "weight": 1e9},
        {"url": "https://capped.example", "weight": 1000.0},
        {"url": "https://small.example", "weight": 0.001},
        {"url": "https://normal.example", "weight": 1.0},
    ]
    ties = [
        {"url": "https://c.example", "weight": 0.0},
        {"url": "https://a.example", "weight": 0.0},
        {"url": "https://b.example", "weight": 0.0},
    ]

    ranking = []
    for i in range(6):
        repo = f"repo-{rng.randrange(100000)}"
        ranking.append(case(f"five equal nodes #{i}", five, item_key("library", repo, "latest")))
    for i in range(4):
        ranking.append(case(f"loopback cluster #{i}", loopback, item_key("test", f"image{i}", "latest")))
    for i in range(6):
        org = rng.choice(["library", "acme", "niccokunzmann", "a-b_c.d"])
        tag = rng.choice(["latest", "1.0", "v2.3.4", "edge"])
        ranking.append(case(f"mixed weights #{i}", mixed, item_key(org, f"svc{rng.randrange(1000)}", tag)))
    for i in range(3):
        ranking.append(case(f"edge weights #{i}", edge, item_key("library", f"edge{i}", "latest")))
    ranking.append(case("ties between zero weights go by url", ties, "library/nginx:latest"))
    ranking.append(case("single server", five[:1], "library/nginx:latest"))
    ranking.append(case("non-ascii item key", five, "ünïcödé/🐳:tag"))

    # The edge case must show what clamping does: the capped and the huge node score alike.
    edge_key = ranking[-5]["item_key"]
    assert score("https://huge.example", edge_key, 1e9) == -1000.0 / math.log(
        unit_interval(server_hash("https://huge.example", edge_key)))

    return {
        "description": "Test vectors for the weighted rendezvous hashing shared by status.js and "
                       "src/rendezvous.rs. Written by tests/vectors/generate.py; do not edit by hand.",
        "spec": "hash = fmix32(fnv1a32(utf8(url + '\\n' + item_key))); h = (hash + 0.5) / 2^32; "
                "score = -w / ln(h) with w = 0 if weight is NaN or <= 0, else min(weight, 1000); "
                "order by score descending, then url ascending; "
                "item_key = organization + '/' + repository + ':' + tag",
        "fnv1a32": fnv,
        "fmix32": fmix,
        "item_keys": keys,
        "server_hashes": hashes,
        "ranking": ranking,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run python3 {Path(__file__).name}", file=sys.stderr)
            return 1
        print(f"{OUT.name} is up to date")
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
