// params.test.js: how status.js reads its parameters from the page URL.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { status } = require("./helpers.js");

test("defaults: organization library, tag latest, label Docker, built-in servers", () => {
  const p = status.parseParams("?repository=nginx");
  assert.equal(p.organization, "library");
  assert.equal(p.repository, "nginx");
  assert.equal(p.tag, "latest");
  assert.equal(p.text, "Docker");
  assert.equal(p.servers, null);
  assert.equal(p.hedgeMs, status.DEFAULTS.hedgeMs);
  assert.equal(p.budgetMs, status.DEFAULTS.budgetMs);
});

test("all parameters are read, %xx decoded and + taken as a space", () => {
  const p = status.parseParams(
    "?organization=acme&repository=web.app&tag=v1.2&text=My+build%20status%21"
  );
  assert.deepEqual(
    [p.organization, p.repository, p.tag, p.text],
    ["acme", "web.app", "v1.2", "My build status!"]
  );
});

test("a missing or empty repository is reported as null, empty values take defaults", () => {
  assert.equal(status.parseParams("").repository, null);
  assert.equal(status.parseParams("?organization=acme").repository, null);
  const p = status.parseParams("?repository=&organization=&tag=&text=");
  assert.equal(p.repository, null);
  assert.equal(p.organization, "library");
  assert.equal(p.tag, "latest");
  assert.equal(p.text, "Docker");
});

test("markup in the label stays text", () => {
  const p = status.parseParams("?repository=x&text=%3Cscript%3Ealert(1)%3C%2Fscript%3E%26amp;");
  assert.equal(p.text, "<script>alert(1)</script>&amp;");
});

test("long labels are capped without splitting characters, control characters blanked", () => {
  const long = "🐳".repeat(100);
  const p = status.parseParams("?repository=x&text=" + encodeURIComponent(long));
  const chars = Array.from(p.text);
  assert.equal(chars.length, status.MAX_LABEL_CHARS);
  assert.equal(chars[chars.length - 1], "…");
  assert.ok(chars.slice(0, -1).every((c) => c === "🐳"));
  assert.equal(status.parseParams("?repository=x&text=a%0Ab%00c").text, "a b c");
});

test("servers= replaces the bootstrap list with its http(s) URLs only", () => {
  const p = status.parseParams(
    "?repository=x&servers=" +
      encodeURIComponent(
        "https://A.example/, javascript:alert(1),data:text/html,x,/relative,ftp://f.example,http://b.example:80/sub/,https://a.example"
      )
  );
  assert.deepEqual(p.servers, ["https://a.example", "http://b.example/sub"]);
});

test("servers= with nothing usable falls back to the built-in list", () => {
  assert.equal(status.parseParams("?repository=x&servers=javascript:alert(1)").servers, null);
  assert.equal(status.parseParams("?repository=x&servers=").servers, null);
});

test("hedge_ms and budget_ms are honoured within bounds only", () => {
  let p = status.parseParams("?repository=x&hedge_ms=250&budget_ms=2500");
  assert.equal(p.hedgeMs, 250);
  assert.equal(p.budgetMs, 2500);
  p = status.parseParams("?repository=x&hedge_ms=1&budget_ms=99999999");
  assert.equal(p.hedgeMs, 50);
  assert.equal(p.budgetMs, status.DEFAULTS.budgetMs, "more than six digits is not a number we take");
  p = status.parseParams("?repository=x&hedge_ms=999999&budget_ms=999999");
  assert.equal(p.hedgeMs, 5000);
  assert.equal(p.budgetMs, 30000);
  for (const junk of ["-5", "1e3", "abc", "12.5", " 12"]) {
    p = status.parseParams("?repository=x&hedge_ms=" + encodeURIComponent(junk));
    assert.equal(p.hedgeMs, status.DEFAULTS.hedgeMs, junk);
  }
});
