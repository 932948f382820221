// The web UI in Debian's chromium (headless), driven by puppeteer-core: what a new user sees and
// does, and what a hostile card cannot do. Started by tests/web/run.sh, which prepares the node.
// Prints "N passed, M failed"; writes a screenshot of each page to $SHOTS.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
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
// Signs in as a user does, once the page has settled (a route that finishes re-focuses <main>,
// which would swallow the rest of typed keys).
async function signIn(page, token) {
  await page.waitForSelector("#signin:not([hidden])");
  await page.waitForNetworkIdle({ idleTime: 100 }).catch(() => {});
  await page.$eval("#token", (i, v) => { i.value = v; }, token);
  await page.click("#signin button");
}
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
    ["pull request", "/demo/ft/discussions/1", "#events li", "/api/models/demo/ft/discussions/1?diff=1"],
    ["playground", "/-/playground", "#pg-form", "/v1/models"],
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
  const assets = ["/", "/static/app.js", "/static/ui.js", "/static/discussions.js", "/static/playground.js",
    "/static/app.css", "/static/favicon.svg"];
  let shell = 0;
  for (const a of assets) shell += (await (await fetch(U + a)).arrayBuffer()).byteLength;
  console.log(`\nthe page itself (index.html, four modules, app.css, favicon): ${shell} bytes, uncompressed; ${runs} runs, medians`);
}

try {
  const page = await newPage();

  // ---- the list ---------------------------------------------------------------------------------
  const t0 = Date.now();
  await page.goto(U + "/", { waitUntil: "networkidle0" });
  await page.waitForSelector("ul.models li");
  const firstRenderMs = Date.now() - t0;
  const names = await page.$$eval("ul.models li a.name", (as) => as.map((a) => a.textContent).sort());
  check("the list shows the public models", ["demo/base", "demo/ft", "demo/held", "demo/held2", "evil/card", "org/moe", "org/moe2"], names);
  const baseRow = await page.$$eval("ul.models li", (lis) => {
    const li = lis.find((l) => l.querySelector("a.name").textContent === "demo/base");
    return li ? [...li.querySelectorAll(".badge")].map((b) => b.textContent) : [];
  });
  check("demo/base has its license badge", true, baseRow.some((b) => /apache-2\.0 · permissive/i.test(b)));
  check("...and its signature badge", true, baseRow.includes("signature: unsigned"));
  check("the count", "7 models", await text(page, "#count"));
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
  check("the lineage edge to the base", ["demo/base"], await page.$$eval("#lineage-bases > li > a", (as) => as.map((a) => a.textContent)));
  check("...with its license compatibility", true, /compatible — Apache-2\.0 over Apache-2\.0/.test(await text(page, '#lineage-bases .edge[data-edge="demo/base"]')));
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
  await signIn(page, process.env.TOKEN_ALICE);
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
  await signIn(page, process.env.TOKEN_DEMO);
  await page.waitForFunction(() => /2 models$/.test((document.querySelector("#count") || {}).textContent || ""));
  check("the namespace's writer sees demo/held and demo/held2 held for review", ["demo/held", "demo/held2"],
    await page.$$eval("ul.models li a.name", (as) => as.map((a) => a.textContent).sort()));
  await page.click("#signout");

  // ---- the node page: a namespace's writer sees the queue, an admin approves ---------------------
  await page.goto(U + "/-/node", { waitUntil: "networkidle0" });
  check("anonymous: the node page asks to sign in", true, /Sign in with a token/.test(await text(page, "main")));
  await signIn(page, process.env.TOKEN_DEMO);
  await page.waitForSelector("#held tbody tr");
  check("the namespace's writer sees demo/held and demo/held2 in the review queue", ["demo/held", "demo/held2"],
    await page.$$eval("#held tbody tr td:first-child", (tds) => tds.map((t) => t.textContent).sort()));
  check("...but not the store's figures", true, /for node-wide tokens/.test(await text(page, "main")));
  check("...and only the tokens of its namespace", [["demo", "write", "demo"]],
    await page.$$eval("#tokens tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].slice(0, 3).map((t) => t.firstChild.textContent))));
  await page.click("#signout");
  await page.goto(U + "/demo/held", { waitUntil: "networkidle0" });
  await page.waitForSelector("#files");
  const before = await text(page, "#card");
  check("anonymous, before: the staged card is not shown", "This model has no card.", before);
  await page.goto(U + "/-/node", { waitUntil: "networkidle0" });
  await signIn(page, process.env.TOKEN_ADMIN);
  await page.waitForSelector("#store");
  check("the admin sees the store's figures", true, /Repos/.test(await text(page, "#store")));
  await shot(page, "05-node");
  const tokens = await page.$$eval("#tokens tbody tr", (trs) => trs.map((tr) => tr.querySelector("td").firstChild.textContent).sort());
  check("the admin sees every token, by name only", ["admin", "alice", "demo", "me"], tokens);
  check("...and no secret", false, /hf_[A-Za-z0-9]{20}/.test(await text(page, "#tokens")));
  await page.click('#held button[aria-label="Approve demo/held@main"]');
  await page.waitForFunction(() => document.querySelectorAll("#held tbody tr").length === 1);
  check("approved: demo/held left the queue", ["demo/held2"], await page.$$eval("#held tbody tr td:first-child", (tds) => tds.map((t) => t.textContent)));
  await page.click('#held button[aria-label="Refuse demo/held2@main"]');
  await page.waitForSelector("#held-empty");
  check("refused: the queue is empty", "Nothing is held for review.", await text(page, "#held-empty"));
  await page.click("#signout");
  await page.goto(U + "/demo/held", { waitUntil: "networkidle0" });
  await page.waitForSelector("#files");
  check("anonymous, after: the approved card appears", true, (await text(page, "#card h1")) === "held");
  await page.goto(U + "/demo/held2", { waitUntil: "networkidle0" });
  await page.waitForSelector("#files");
  check("anonymous, after: the refused card never appears", "This model has no card.", await text(page, "#card"));
  await signIn(page, process.env.TOKEN_DEMO);
  await page.waitForSelector("#who:not([hidden])");
  await page.goto(U + "/demo/held2", { waitUntil: "networkidle0" });
  await page.waitForSelector("#files");
  check("...nor for its writers: nothing is staged any more", "This model has no card.", await text(page, "#card"));
  await page.click("#signout");

  // ---- a partly held model: the expert map, the tensor index -----------------------------------
  await page.goto(U + "/org/moe", { waitUntil: "networkidle0" });
  await page.waitForSelector('.experts .cell[data-state="peer"]');
  const states = await page.$$eval(".experts .cell", (cs) => cs.map((c) => [c.dataset.expert, c.dataset.state]));
  check("the expert map: the pulled expert is local", "local", (states.find(([e]) => e === "0:1") || [])[1]);
  check("...the others are on the peer", true, states.filter(([, st]) => st === "peer").length === states.length - 1 && states.length > 2);
  check("...and the summary says so", true, /^1 of (\d+) experts held on this node; \d+ on a peer, 0 missing\.$/.test(await text(page, "#expert-summary")));
  check("...and names the peer that serves them", true, /serves this node/.test(await text(page, "#peer-holdings tbody tr")));
  await shot(page, "06-partial-model");
  const shard = await page.$$eval("#files tbody tr td:first-child", (tds) => tds.map((t) => t.textContent).find((f) => f.endsWith(".safetensors")));
  await page.click(`#files button[aria-label="Tensors of ${shard}"]`);
  await page.waitForSelector("#tensor-table tbody tr");
  const header = (() => {
    const buf = readFileSync(path.join(FIX, "moe", shard));
    const n = Number(buf.readBigUInt64LE(0));
    return JSON.parse(buf.subarray(8, 8 + n).toString("utf8"));
  })();
  const wantTensors = Object.keys(header).filter((k) => k !== "__metadata__").slice(0, 1000);
  check("the tensor index lists the shard's tensors", wantTensors, await page.$$eval("#tensor-table tbody tr td:first-child", (tds) => tds.map((t) => t.textContent)));
  const t0name = wantTensors[0];
  check("...with dtype and shape", [header[t0name].dtype, "[" + header[t0name].shape.join(", ") + "]"],
    await page.$$eval("#tensor-table tbody tr", (trs) => [...trs[0].querySelectorAll("td")].slice(1, 3).map((t) => t.textContent)));

  // ---- history: what each commit added to the store ---------------------------------------------
  await page.goto(U + "/demo/ft", { waitUntil: "networkidle0" });
  await page.waitForSelector("#history li");
  const ftHistory = await text(page, "#history li:last-child .newbytes");
  check("the fine-tune's first commit is measured against its base", true, /vs the base model/.test(ftHistory || ""));

  // ---- a pull request: list, diff, comment, merge -----------------------------------------------
  await page.goto(U + "/demo/ft/discussions", { waitUntil: "networkidle0" });
  await page.waitForSelector("#discussions li");
  check("the discussions list shows alice's pull request", ["#1 Say where the fine-tune comes from"],
    await page.$$eval("#discussions li a.name", (as) => as.map((a) => a.textContent)));
  await shot(page, "07-discussions");
  await page.click("#discussions li a.name");
  await page.waitForSelector("#diff");
  check("the pull request's diff shows the change", true, (await text(page, "#diff")).includes("+Tuned from demo/base."));
  check("anonymous: no comment form", null, await page.$("#comment-form"));
  await signIn(page, process.env.TOKEN_ALICE);
  await page.waitForSelector("#comment-form");
  check("alice (not a writer) may comment but not merge", [true, null], [!!(await page.$("#comment-form")), await page.$("#act-merge")]);
  await page.type("#c-text", "Ready for review.");
  await page.click('#comment-form button[type="submit"]');
  await page.waitForFunction(() => [...document.querySelectorAll("#events .comment-text")].some((c) => c.textContent === "Ready for review."));
  check("the comment appears in the conversation", true, true);
  await page.click("#signout");
  await signIn(page, process.env.TOKEN_DEMO);
  await page.waitForSelector("#act-merge");
  await shot(page, "08-pull-request");
  await page.click("#act-merge");
  await page.waitForFunction(() => /pull request · merged/.test((document.querySelector("main .meta .badge") || {}).textContent || ""));
  check("the writer merged it", true, true);
  await page.click("#signout");
  await page.goto(U + "/demo/ft", { waitUntil: "networkidle0" });
  await page.waitForSelector("#card h1");
  check("the merged card is the model's card", "A fine-tune", await text(page, "#card h1"));

  // ---- the playground: a streamed reply, then a reply stopped halfway ---------------------------
  await page.goto(U + "/-/playground?model=org/moe", { waitUntil: "networkidle0" });
  await page.waitForSelector("#pg-input");
  check("the playground offers the models the node runs", true,
    (await page.$$eval("#pg-model option", (os) => os.map((o) => o.value))).includes("org/moe"));
  check("...with org/moe chosen", "org/moe", await page.$eval("#pg-model", (s) => s.value));
  await page.type("#pg-input", "Hello, who are you?");
  await page.click("#pg-send");
  await page.waitForFunction(() => /^Done/.test((document.querySelector("#pg-status") || {}).textContent || ""), { timeout: 120000 });
  const reply = await page.$eval("#pg-log li.assistant .text", (t) => t.textContent);
  check("a reply streamed in", true, reply.length > 0);
  const figures = await page.$$eval("#pg-figures dt, #pg-figures dd", (xs) => xs.map((x) => x.textContent));
  const fig = (k) => figures[figures.indexOf(k) + 1];
  check("token counts from the stream's usage", true, Number(fig("Completion tokens")) > 0 && Number(fig("Prompt tokens")) > 0);
  check("experts were loaded (from the store and the peer) while answering", true, /^[1-9]\d* \(/.test(fig("Experts loaded while answering") || ""));
  await shot(page, "09-playground");
  // The second reply would run long (the test asks the node to ignore end-of-text); Stop cuts it.
  await page.setRequestInterception(true);
  const longer = (r) => {
    if (r.isInterceptResolutionHandled()) return;
    const p = r.url().endsWith("/v1/chat/completions")
      ? r.continue({ postData: JSON.stringify({ ...JSON.parse(r.postData()), ignore_eos: true }) }) : r.continue();
    p.catch(() => {});
  };
  page.on("request", longer);
  const metric = async (name) => {
    const m = await (await fetch(U + "/metrics")).text();
    const line = m.split("\n").find((l) => l.startsWith(name + "{") && l.includes("org/moe"));
    return line ? Number(line.trim().split(/\s+/).pop()) : -1;
  };
  const generatedBefore = await metric("hubnode_runtime_generated_tokens_total");
  await page.$eval("#pg-max-tokens", (i) => { i.value = "4000"; });
  await page.type("#pg-input", "Tell me a long story.");
  // The tiny model writes thousands of tokens a second: Stop goes as soon as it can be pressed
  // (clicked from inside the page on the mutation that enables it).
  const pressed = page.waitForFunction(() => {
    const b = document.querySelector("#pg-stop");
    if (!b || b.disabled) return false;
    b.click();
    return true;
  }, { polling: "mutation" });
  await page.click("#pg-send");
  await pressed;
  await page.waitForFunction(() => /^Stopped/.test((document.querySelector("#pg-status") || {}).textContent || ""));
  check("Stop cancels the request", true, true);
  let active = -1;
  for (let i = 0; i < 50 && active !== 0; i++) {
    active = await metric("hubnode_runtime_active_requests");
    if (active !== 0) await new Promise((r) => setTimeout(r, 100));
  }
  check("...and the node stops generating it", 0, active);
  const generated = (await metric("hubnode_runtime_generated_tokens_total")) - generatedBefore;
  check("...well before the 4,000 tokens it was asked for", true, generated >= 0 && generated < 3000);
  page.off("request", longer);
  await page.setRequestInterception(false);

  // ---- publishing a fine-tune by following the model page's snippet ----------------------------
  const clients = path.join(process.env.CLIENTS || "", "huggingface_hub-1.3.7");
  if (existsSync(clients)) {
    await page.goto(U + "/demo/base", { waitUntil: "networkidle0" });
    await page.waitForSelector('pre[aria-label="Publish a fine-tune of it snippet"]');
    const snippet = await text(page, 'pre[aria-label="Publish a fine-tune of it snippet"] code');
    check("the snippet names the model as the base", true, snippet.includes("base_model: demo/base"));
    const script = snippet.replace("HF_TOKEN=hf_...", "HF_TOKEN=" + process.env.TOKEN_ME).replaceAll("./my-finetune", path.join(FIX, "my-finetune"));
    let out = "";
    try {
      out = execFileSync("bash", ["-c", script], { env: { ...process.env, PATH: "/usr/bin:" + process.env.PATH, PYTHONPATH: clients, HF_HUB_DISABLE_XET: "1",
        HF_HUB_DISABLE_TELEMETRY: "1", HF_HUB_DISABLE_PROGRESS_BARS: "1", HF_HOME: path.join(FIX, "hf-home") }, encoding: "utf8", timeout: 120000 });
    } catch (e) { out = String(e.stderr || e); console.log(out); }
    check("the snippet, run as printed, publishes the fine-tune", true, /me\/my-finetune/.test(out));
    await page.goto(U + "/me/my-finetune", { waitUntil: "networkidle0" });
    await page.waitForSelector("#history li .newbytes");
    check("its page links it to the base", ["demo/base"], await page.$$eval("#lineage-bases a", (as) => as.map((a) => a.textContent)));
    const nb = await (await fetch(U + "/api/models/me/my-finetune/commits/main?stats=1")).json();
    const st = nb[0].hubnode || {};
    check("...and it stored only what it changed (new bytes < a tenth of its files, vs its parent and the base)", [true, "parent+base"],
      [st.newBytes > 0 && st.newBytes * 10 < st.changedBytes, st.comparedWith]);
    await shot(page, "10-published-finetune");
  } else {
    console.log("SKIP publishing by the snippet: the python clients are not at " + clients);
  }

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

  // ---- the peer goes away: its experts are missing ---------------------------------------------
  // (org/moe2: pulled with one expert like org/moe, which the chat above has since filled in)
  await page.goto(U + "/org/moe2", { waitUntil: "networkidle0" });
  await page.waitForSelector('.experts .cell[data-state="peer"]');
  process.kill(Number(process.env.ORIGIN_PID), "SIGKILL");
  await new Promise((r) => setTimeout(r, 10500));  // the node keeps a peer's answer 10 s
  await page.goto(U + "/org/moe2", { waitUntil: "networkidle0" });
  await page.waitForSelector('.experts .cell[data-state="missing"]', { timeout: 15000 });
  const states2 = await page.$$eval(".experts .cell", (cs) => cs.map((c) => c.dataset.state));
  check("with the peer gone, the rest are missing", [1, states2.length - 1],
    [states2.filter((s) => s === "local").length, states2.filter((s) => s === "missing").length]);
  check("...and the peer is unreachable", true, /unreachable/.test(await text(page, "#peer-holdings tbody tr")));

  // ---- accessibility: axe-core on each page -----------------------------------------------------
  const axeSource = readFileSync(process.env.AXE, "utf8");
  for (const [name, url, ready] of [["models", "/", "ul.models"], ["model", "/demo/ft", "#files"], ["hostile card", "/evil/card", "#card"],
    ["partial model", "/org/moe", ".experts"], ["discussions", "/demo/ft/discussions", "#discussions"],
    ["pull request", "/demo/ft/discussions/1", "#events"], ["playground", "/-/playground", "#pg-form"], ["node", "/-/node", "main h1"]]) {
    const a = await browser.newPage();
    await a.setBypassCSP(true);  // axe is injected as an inline script
    await a.goto(U + url, { waitUntil: "networkidle0" });
    await a.waitForSelector(ready);
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
