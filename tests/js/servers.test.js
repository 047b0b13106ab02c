// servers.test.js: which server URLs status.js accepts, and the majority merge of /servers.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { status } = require("./helpers.js");

test("http and https URLs are accepted in canonical form", () => {
  const cases = {
    "https://a.example": "https://a.example",
    "https://a.example/": "https://a.example",
    "HTTPS://A.Example//": "https://a.example",
    "http://a.example:80/": "http://a.example",
    "https://a.example:443": "https://a.example",
    "https://a.example:8443/badges/": "https://a.example:8443/badges",
    "http://127.0.0.1:40001": "http://127.0.0.1:40001",
    "http://[::1]:8080/": "http://[::1]:8080",
    "https://bücher.example": "https://xn--bcher-kva.example",
    "  https://a.example  ": "https://a.example",
    "https://a.example/?": "https://a.example",
  };
  for (const [raw, canonical] of Object.entries(cases)) {
    assert.equal(status.canonicalServerUrl(raw), canonical, raw);
  }
});

test("everything else is refused", () => {
  const refused = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "java\nscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:x",
    "ftp://files.example",
    "file:///etc/passwd",
    "/relative",
    "relative/path",
    "//a.example",
    "https:/a.example",
    "https://",
    "https://user:pw@a.example",
    "https://a.example/?q=1",
    "https://a.example/#x",
    "https://a .example",
    "https://a.exa\nmple",
    "ht\ttps://a.example",
    "https://a.example/" + "x".repeat(600),
    "",
    null,
    undefined,
    42,
    { url: "https://a.example" },
  ];
  for (const raw of refused) {
    assert.equal(status.canonicalServerUrl(raw), null, JSON.stringify(String(raw)));
  }
});

test("filterServerUrls drops junk and duplicates, keeps order", () => {
  assert.deepEqual(
    status.filterServerUrls(["https://b.example", "javascript:x", "https://a.example/", "https://B.example"]),
    ["https://b.example", "https://a.example"]
  );
});

test("a /servers answer is parsed leniently per entry, strictly in shape", () => {
  assert.equal(status.parseServersAnswer(null), null);
  assert.equal(status.parseServersAnswer("servers"), null);
  assert.equal(status.parseServersAnswer({ servers: "https://a.example" }), null);
  assert.equal(status.parseServersAnswer({ request: "error", description: "not found" }), null);
  assert.deepEqual(status.parseServersAnswer({ servers: [] }), []);
  assert.deepEqual(
    status.parseServersAnswer({
      servers: [
        { url: "https://a.example", weight: 2 },
        { url: "javascript:alert(1)", weight: 1 },
        { url: "https://b.example/", weight: "heavy" },
        { url: "https://c.example" },
        { url: "https://A.example", weight: 9 },
        null,
        "https://d.example",
        { weight: 1 },
      ],
    }),
    [
      { url: "https://a.example", weight: 2 },
      { url: "https://b.example", weight: 1 },
      { url: "https://c.example", weight: 1 },
    ]
  );
});

test("a huge /servers answer is cut, not trusted in full", () => {
  const servers = [];
  for (let i = 0; i < 5000; i++) servers.push({ url: `https://n${i}.example`, weight: 1 });
  assert.equal(status.parseServersAnswer({ servers }).length, 1000);
});

const A = { url: "https://a.example", weight: 1 };
const B = { url: "https://b.example", weight: 1 };
const C = { url: "https://c.example", weight: 1 };
const EVIL = { url: "https://evil.example", weight: 1 };
const urls = (list) => list.map((s) => s.url);

test("honest answers are merged into one list", () => {
  assert.deepEqual(urls(status.mergeMajority([[A, B, C], [C, B, A], [A, C, B]])), urls([A, B, C]));
});

test("one lying node out of three can neither add nor hide a server", () => {
  // The liar adds a server of its own and hides B.
  const merged = status.mergeMajority([[A, B, C], [A, C, EVIL], [A, B, C]]);
  assert.deepEqual(urls(merged), urls([A, B, C]));
});

test("a server listed by exactly half of the answers is not kept", () => {
  assert.deepEqual(urls(status.mergeMajority([[A, B], [A]])), urls([A]));
  assert.deepEqual(urls(status.mergeMajority([[A, B], [A, C], [A], [B, C]])), urls([A]));
});

test("a single answer is taken as it is", () => {
  assert.deepEqual(urls(status.mergeMajority([[B, A]])), urls([A, B]));
  assert.deepEqual(status.mergeMajority([]), []);
});

test("the weight is the lower median, so one liar cannot move it outside the honest range", () => {
  const w = (url, weight) => ({ url, weight });
  let merged = status.mergeMajority([[w(A.url, 1)], [w(A.url, 1000)], [w(A.url, 2)]]);
  assert.equal(merged[0].weight, 2);
  merged = status.mergeMajority([[w(A.url, 1)], [w(A.url, 0.0001)], [w(A.url, 1)]]);
  assert.equal(merged[0].weight, 1);
  merged = status.mergeMajority([[w(A.url, 1)], [w(A.url, 1000)]]);
  assert.equal(merged[0].weight, 1, "of two answers the smaller weight counts");
});

test("badges go by the weight /servers publishes, so a node's bounded weight is its share", () => {
  // Three nodes' /servers answers as the nodes publish them: each bounds the weight of a
  // node whose descriptor claims 100 to 1 while it is new to them, and to 2 once it has
  // been listed for a day. status.js takes the published weight, not the claim.
  const answer = (heavy) => ({
    servers: [
      { url: "https://a.example", weight: 1 },
      { url: "https://b.example", weight: 1 },
      { url: "https://heavy.example", weight: heavy },
    ],
  });
  const share = (published) => {
    const answers = [0, 1, 2].map(() => status.parseServersAnswer(answer(published)));
    const servers = status.mergeMajority(answers);
    let first = 0;
    for (let i = 0; i < 6000; i++) {
      if (status.rank(servers, `library/repo-${i}:latest`)[0].url === "https://heavy.example") first++;
    }
    return first / 6000;
  };
  const bounded = share(1);
  assert.ok(bounded > 0.3 && bounded < 0.37, `new: ${bounded}`);
  const capped = share(2);
  assert.ok(capped > 0.46 && capped < 0.54, `after a day: ${capped}`);
  const claimed = share(100);
  assert.ok(claimed > 0.95, `the claim, were it published: ${claimed}`);
});

test("majorityDecided stops waiting only when the pending answers cannot change the outcome", () => {
  // Two identical answers of three: the third cannot change anything.
  assert.equal(status.majorityDecided([[A, B], [B, A]], 1), true);
  // Two differing answers: the third decides about C.
  assert.equal(status.majorityDecided([[A, B], [A, B, C]], 1), false);
  // One answer of three: the others may outvote it.
  assert.equal(status.majorityDecided([[A, B]], 2), false);
  // Everything in.
  assert.equal(status.majorityDecided([[A], [B]], 0), true);
  assert.equal(status.majorityDecided([], 0), true);
  assert.equal(status.majorityDecided([], 3), false);
  // An empty answer of three: the other two could still agree on a server.
  assert.equal(status.majorityDecided([[]], 2), false);
  assert.equal(status.majorityDecided([[], []], 1), true);
  // Three identical answers of five: nothing the other two say can change the result.
  assert.equal(status.majorityDecided([[A], [A], [A]], 2), true);
  assert.equal(status.majorityDecided([[A], [A], [A, B]], 2), false);
});

test("majorityDecided agrees with mergeMajority for every way the pending answers can go", () => {
  // Every combination of up to 3 answers in and up to 2 pending, over three servers: when
  // majorityDecided says "done", no outcome of the pending answers (each may list any subset,
  // or fail) may change the merged list.
  const subsets = [[], [A], [B], [A, B], [A, B, C], [C]];
  const outcomes = [null, ...subsets]; // null: the node failed
  const key = (answers) => JSON.stringify(urls(status.mergeMajority(answers)));
  function* combos(n, pool) {
    if (n === 0) return yield [];
    for (const x of pool) for (const rest of combos(n - 1, pool)) yield [x, ...rest];
  }
  let decided = 0;
  let undecided = 0;
  for (let r = 1; r <= 3; r++) {
    for (let p = 0; p <= 2; p++) {
      for (const received of combos(r, subsets)) {
        const results = new Set();
        for (const pending of combos(p, outcomes)) {
          results.add(key([...received, ...pending.filter((o) => o !== null)]));
        }
        if (status.majorityDecided(received, p)) {
          decided++;
          assert.equal(results.size, 1, `decided too early: ${JSON.stringify(received.map(urls))} with ${p} pending`);
        } else {
          undecided++;
          // Not needed for safety, but waiting when nothing can change costs latency.
          assert.ok(results.size > 1, `waits needlessly: ${JSON.stringify(received.map(urls))} with ${p} pending`);
        }
      }
    }
  }
  assert.ok(decided > 0 && undecided > 0);
});
