// The web UI in Debian's chromium (headless), driven by puppeteer-core: what a new user sees and
// does, and what a hostile card cannot do. Started by tests/web/run.sh, which prepares the node.
// Prints "N passed, M failed"; writes a screenshot of each page to $SHOTS.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NPM_DIR, "package.json"));
const puppeteer = require("puppeteer-core");
const U = process.env.HUBNODE_URL;
const SHOTS = process.env.SHOTS;
const FIX = process.env.FIXTURES;
let pass = 0, fail = 0;
function check(name, expected, actual) {
  const ok = JSON.stringify(expected) === JSON.stringify(actual);
  if (ok) pass++;
  else { fail++; console.log(`FAIL ${name}: expected [${JSON.stringify(expected)}], got [${JSON.stringify(actual)}]`); }
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
const origin = new URL(U).origin;
const foreign = [];   // requests to any other origin
const dialogs = [];   // alert()/confirm() that ran
const consoleErrors = [];

async function newPage() {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  page.on("request", (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith("data:")) foreign.push(r.url()); });
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  return page;
}
const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true });
const text = (page, sel) => page.$eval(sel, (e) => e.textContent).catch(() => null);

// Page weight and time to first render (bench/web_bench.sh): each page loaded RUNS times in a
// fresh browser context (empty cache), against the named baseline of the same run: fetching the
// JSON the page is built from (repo info, or the full listing) from inside a page.
async function bench() {
  const runs = Number(process.env.RUNS || 7);
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  const rows = [];
  for (const [name, url, ready, api] of [
    ["models list", "/", "ul.models li", "/api/models?full=true&sort=lastModified&limit=20"],
    ["model page", "/demo/ft", "#files tbody tr", "/api/models/demo/ft/revision/main"],
  ]) {
    const fcp = [], done = [], base = [];
    let weight = 0, requests = 0;
    for (let i = 0; i < runs; i++) {
      const ctx = await browser.createBrowserContext();
      const p = await ctx.newPage();
      let bytesIn = 0, n = 0;
      p.on("response", async (r) => { n++; try { bytesIn += (await r.buffer()).length; } catch {} });
      const t0 = Date.now();
      await p.goto(U + url, { waitUntil: "domcontentloaded" });
      await p.waitForSelector(ready);
      done.push(Date.now() - t0);
      fcp.push(await p.evaluate(() => (performance.getEntriesByName("first-contentful-paint")[0] || { startTime: NaN }).startTime));
      base.push(await p.evaluate(async (a) => { const t = performance.now(); await (await fetch(a)).json(); return performance.now() - t; }, api));
      await new Promise((r) => setTimeout(r, 200));
      weight = bytesIn;
      requests = n;
      await ctx.close();
    }
    rows.push({ name, fcp: median(fcp), done: median(done), base: median(base), weight, requests });
  }
  console.log(`\n| page | first contentful paint ms | content shown ms | × baseline | baseline: its JSON fetched ms | bytes over the wire (requests) |`);
  console.log(`|---|---:|---:|---:|---:|---:|`);
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.fcp.toFixed(0)} | ${r.done} | ${(r.done / r.base).toFixed(1)} | ${r.base.toFixed(1)} | ${r.weight} (${r.requests}) |`);
  }
  const assets = ["/", "/static/app.js", "/static/app.css", "/static/favicon.svg"];
  let shell = 0;
  for (const a of assets) shell += (await (await fetch(U + a)).arrayBuffer()).byteLength;
  console.log(`\nthe page itself (index.html + app.js + app.css + favicon): ${shell} bytes, uncompressed; ${runs} runs, medians`);
}

try {
  const page = await newPage();

  // ---- the list ---------------------------------------------------------------------------------
  const t0 = Date.now();
  await page.goto(U + "/", { waitUntil: "networkidle0" });
  await page.waitForSelector("ul.models li");
  const firstRenderMs = Date.now() - t0;
  const names = await page.$$eval("ul.models li a.name", (as) => as.map((a) => a.textContent).sort());
  check("the list shows the public models", ["demo/base", "demo/ft", "demo/held", "evil/card"], names);
  const baseRow = await page.$$eval("ul.models li", (lis) => {
    const li = lis.find((l) => l.querySelector("a.name").textContent === "demo/base");
    return li ? [...li.querySelectorAll(".badge")].map((b) => b.textContent) : [];
  });
  check("demo/base has its license badge", true, baseRow.some((b) => /apache-2\.0 · permissive/i.test(b)));
  check("...and its signature badge", true, baseRow.includes("signature: unsigned"));
  check("the count", "4 models", await text(page, "#count"));
  await shot(page, "01-models");

  // Filters: a license class and the search box, keyboard only.
  await page.select("#f-license_class", "permissive");
  await page.focus("#f-search");
  await page.keyboard.type("ft");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelector("#count") && /1 model$/.test(document.querySelector("#count").textContent));
  check("search + license filter", ["demo/ft"], await page.$$eval("ul.models li a.name", (as) => as.map((a) => a.textContent)));

  // ---- a model page -----------------------------------------------------------------------------
  await page.click("ul.models li a.name");
  await page.waitForSelector("#card h1");
  check("the model page's title", "demo/ft", await text(page, "main h1"));
  check("the card is rendered (its heading)", true, (await text(page, "#card h1")).length > 0);
  const files = await page.$$eval("#files tbody tr td:first-child", (tds) => tds.map((t) => t.textContent));
  check("the files table lists the shards", true, files.some((f) => f.endsWith(".safetensors")) && files.includes("config.json"));
  check("LFS files carry the LFS badge", true, (await page.$$eval("#files .b-lfs", (b) => b.length)) > 0);
  check("the lineage edge to the base", ["demo/base"], await page.$$eval("#lineage-bases a", (as) => as.map((a) => a.textContent)));
  const cells = await page.$$eval(".experts .cell", (cs) => cs.map((c) => c.dataset.state));
  check("the expert map: every expert held", true, cells.length > 0 && cells.every((s) => s === "local"));
  check("...and its summary", true, /(\d+) of \1 experts held/.test(await text(page, "#expert-summary")));
  await shot(page, "02-model");

  // A file downloads byte-exact through the page's link.
  const href = await page.$$eval("#files tbody tr", (rows) => {
    const r = rows.find((row) => row.querySelector("td").textContent === "config.json");
    return r.querySelector("a").href;
  });
  const got = Buffer.from(await (await fetch(href)).arrayBuffer());
  const want = readFileSync(path.join(FIX, "ft", "config.json"));
  check("config.json downloads byte-exact", createHash("sha256").update(want).digest("hex"), createHash("sha256").update(got).digest("hex"));

  // The lineage link leads to the base.
  await page.click("#lineage-bases a");
  await page.waitForFunction(() => document.querySelector("main h1") && document.querySelector("main h1").textContent === "demo/base" &&
    document.querySelector("#files"));
  check("following the lineage edge", "demo/base", await text(page, "main h1"));
  check("...whose derived list names the fine-tune", ["demo/ft"], await page.$$eval("#lineage-derived a", (as) => as.map((a) => a.textContent)));

  // ---- signing in -------------------------------------------------------------------------------
  await page.goto(U + "/", { waitUntil: "networkidle0" });
  check("anonymous: no private repo", false, (await page.$$eval("ul.models li a.name", (as) => as.map((a) => a.textContent))).includes("alice/secret"));
  await page.type("#token", process.env.TOKEN_ALICE);
  await page.click("#signin button");
  await page.waitForFunction(() => [...document.querySelectorAll("ul.models li a.name")].some((a) => a.textContent === "alice/secret"));
  check("signed in: the private repo is listed", true, true);
  check("...with its private badge", true, await page.$$eval("ul.models li", (lis) =>
    lis.some((l) => l.querySelector("a.name").textContent === "alice/secret" && l.textContent.includes("private"))));
  check("the token is in session storage, not local storage", [true, null],
    await page.evaluate(() => [!!sessionStorage.getItem("hubnode.token"), localStorage.getItem("hubnode.token")]));
  await shot(page, "03-signed-in");
  await page.click("#signout");
  await page.waitForFunction(() => !document.querySelector("#who") || document.querySelector("#who").hidden);
  await page.waitForFunction(() => !document.querySelector("ul.models") ||
    ![...document.querySelectorAll("ul.models li a.name")].some((a) => a.textContent === "alice/secret"));
  check("signed out: the private repo is gone", false,
    (await page.$$eval("ul.models li a.name", (as) => as.map((a) => a.textContent))).includes("alice/secret"));
  await page.goto(U + "/alice/secret", { waitUntil: "networkidle0" });
  check("signed out: its page says not found", true, /Not found/.test(await text(page, "main")));

  // ---- held for review: writers see the staged commit's flag ------------------------------------
  await page.goto(U + "/?held=1", { waitUntil: "networkidle0" });
  check("anonymous: nothing held is shown", "0 models", await text(page, "#count"));
  await page.type("#token", process.env.TOKEN_DEMO);
  await page.click("#signin button");
  await page.waitForFunction(() => /1 model$/.test((document.querySelector("#count") || {}).textContent || ""));
  check("the namespace's writer sees demo/held held for review", ["demo/held"],
    await page.$$eval("ul.models li a.name", (as) => as.map((a) => a.textContent)));
  await page.click("#signout");

  // ---- the node page: a namespace's writer sees the queue, an admin approves ---------------------
  await page.goto(U + "/-/node", { waitUntil: "networkidle0" });
  check("anonymous: the node page asks to sign in", true, /Sign in with a token/.test(await text(page, "main")));
  await page.type("#token", process.env.TOKEN_DEMO);
  await page.click("#signin button");
  await page.waitForSelector("#held tbody tr");
  check("the namespace's writer sees demo/held in the review queue", ["demo/held"],
    await page.$$eval("#held tbody tr td:first-child", (tds) => tds.map((t) => t.textContent)));
  check("...but not the store's figures", true, /for node-wide tokens/.test(await text(page, "main")));
  await page.click("#signout");
  await page.goto(U + "/demo/held", { waitUntil: "networkidle0" });
  await page.waitForSelector("#files");
  const before = await text(page, "#card");
  check("anonymous, before: the staged card is not shown", "This model has no card.", before);
  await page.goto(U + "/-/node", { waitUntil: "networkidle0" });
  await page.type("#token", process.env.TOKEN_ADMIN);
  await page.click("#signin button");
  await page.waitForSelector("#store");
  check("the admin sees the store's figures", true, /Repos/.test(await text(page, "#store")));
  await shot(page, "05-node");
  await page.click('#held button[aria-label="Approve demo/held@main"]');
  await page.waitForSelector("#held-empty");
  check("approved: the queue is empty", "Nothing is held for review.", await text(page, "#held-empty"));
  await page.click("#signout");
  await page.goto(U + "/demo/held", { waitUntil: "networkidle0" });
  await page.waitForSelector("#files");
  check("anonymous, after: the approved card appears", true, (await text(page, "#card h1")) === "held");

  // ---- a hostile card renders inert -------------------------------------------------------------
  const evil = await newPage();
  foreign.length = 0;
  dialogs.length = 0;
  await evil.goto(U + "/evil/card", { waitUntil: "networkidle0" });
  await evil.waitForSelector("#card");
  await new Promise((r) => setTimeout(r, 500));
  check("no dialog ran", [], dialogs);
  check("no request left the node's origin", [], foreign);
  const card = await evil.$eval("#card", (c) => ({
    scripts: c.querySelectorAll("script").length,
    handlers: [...c.querySelectorAll("*")].filter((e) => [...e.attributes].some((a) => a.name.startsWith("on"))).length,
    jsLinks: [...c.querySelectorAll("a")].filter((a) => /^\s*javascript:/i.test(a.getAttribute("href") || "")).length,
    frames: c.querySelectorAll("iframe, object, embed, svg").length,
    foreignImages: [...c.querySelectorAll("img")].filter((i) => i.getAttribute("src") && !i.src.startsWith(location.origin)).length,
    table: c.querySelectorAll("table td").length,
  }));
  check("the card holds no script, handler, javascript: link, frame or svg", { scripts: 0, handlers: 0, jsLinks: 0, frames: 0, foreignImages: 0 },
    { scripts: card.scripts, handlers: card.handlers, jsLinks: card.jsLinks, frames: card.frames, foreignImages: card.foreignImages });
  check("...and still renders its markdown table", 2, card.table);
  const csp = (await (await fetch(U + "/evil/card", { headers: { Accept: "text/html" } })).headers.get("content-security-policy")) || "";
  check("the page carries a strict Content-Security-Policy", true, csp.includes("script-src 'self'") && csp.includes("img-src 'self'"));
  await shot(evil, "04-hostile-card");

  // ---- accessibility: axe-core on each page -----------------------------------------------------
  const axeSource = readFileSync(process.env.AXE, "utf8");
  for (const [name, url] of [["models", "/"], ["model", "/demo/ft"], ["hostile card", "/evil/card"]]) {
    const a = await browser.newPage();
    await a.setBypassCSP(true);  // axe is injected as an inline script
    await a.goto(U + url, { waitUntil: "networkidle0" });
    await a.addScriptTag({ content: axeSource });
    const result = await a.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
    const serious = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.nodes.length})`);
    check(`axe: no serious violations on the ${name} page`, [], serious);
    await a.close();
  }
  // Every control has a label.
  const unlabeled = await page.evaluate(() => [...document.querySelectorAll("input, select, button")].filter((c) =>
    !(c.labels && c.labels.length) && !c.getAttribute("aria-label") && !(c.tagName === "BUTTON" && c.textContent.trim())).length);
  check("every control has a label", 0, unlabeled);
  check("no console errors", [], consoleErrors.filter((e) => !/Failed to load resource/.test(e)));
  console.log(`first render of the models page: ${firstRenderMs} ms`);
  if (process.env.BENCH) await bench();
} catch (e) {
  fail++;
  console.log("FAIL (exception): " + (e && e.stack || e));
} finally {
  await browser.close();
}
console.log(`${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);
