// hubnode's web UI: hand-written ES modules, no framework. Every figure comes from the node's
// public HTTP API (docs/http-api.md), called with the signed-in token (kept in this tab's session
// storage) as Bearer — the same rules as any client. DOM is built with textContent; the only HTML
// taken from the server is the model card, which the node renders safely (hub/read/card_html.h)
// and the page's Content-Security-Policy fences again. This module: sign-in, routing, the models
// list, a model's page and the node page; discussions.js and playground.js the rest.

import {
  TOKEN_KEY, alertBox, api, badge, bytes, el, failure, licenseBadge, link, main, navigate, repoPath,
  setRouter, setSession, show, signatureBadge, token, verdictBadge, when,
} from "./ui.js";
import { discussionPage, discussionsPage } from "./discussions.js";
import { playgroundPage } from "./playground.js";

// ---- sign-in -------------------------------------------------------------------------------------

async function refreshWho() {
  const who = document.getElementById("who");
  const form = document.getElementById("signin");
  setSession(null);
  if (!token()) {
    who.hidden = true;
    form.hidden = false;
    document.getElementById("nav-node").hidden = true;
    return;
  }
  try {
    const { body } = await api("/api/whoami-v2");
    const t = (body.auth && body.auth.accessToken) || {};
    let ns = null;
    try {
      const mine = (await api("/api/tokens")).body.find((x) => x.current);
      if (mine) ns = mine.namespace;
    } catch { /* an older node: the controls are shown and the node decides */ }
    setSession({ name: body.name, role: t.role, namespace: ns === null ? body.name : ns });
    document.getElementById("who-name").textContent = "Signed in as " + (body.name || "token");
    who.hidden = false;
    form.hidden = true;
    document.getElementById("nav-node").hidden = false;
  } catch {
    sessionStorage.removeItem(TOKEN_KEY);
    who.hidden = true;
    form.hidden = false;
    alertBox("That token was not accepted.");
  }
}

document.getElementById("signin").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = document.getElementById("token");
  const value = input.value.trim();
  input.value = "";
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  await refreshWho();
  route();
});

document.getElementById("signout").addEventListener("click", async () => {
  sessionStorage.removeItem(TOKEN_KEY);
  await refreshWho();
  route();
});

// ---- models --------------------------------------------------------------------------------------

const LICENSE_CLASSES = ["", "permissive", "weak-copyleft", "strong-copyleft", "use-restricted", "unknown"];
const SIGNATURES = ["", "verified", "unsigned", "untrusted", "invalid"];
const SORTS = [["lastModified", "Recently updated"], ["id", "Name"], ["usedStorage", "Size"], ["createdAt", "Recently created"]];

function selectField(label, name, options, value) {
  const id = "f-" + name;
  const sel = el("select", { id, name });
  for (const o of options) {
    const [v, text] = Array.isArray(o) ? o : [o, o || "any"];
    sel.append(el("option", { value: v, selected: v === value }, text));
  }
  return el("label", { for: id }, label, sel);
}

async function modelsPage(params) {
  const q = params.get("search") || "";
  const sort = params.get("sort") || "lastModified";
  const cls = params.get("license_class") || "";
  const sig = params.get("signature") || "";
  const family = params.get("family") || "";
  const held = params.get("held") === "1";
  const cursor = Number(params.get("cursor") || 0);
  const limit = 20;

  const form = el("form", { class: "filters", role: "search", "aria-label": "Filter models" },
    el("label", { for: "f-search" }, "Search", el("input", { id: "f-search", name: "search", type: "search", value: q, placeholder: "name" })),
    selectField("Sort", "sort", SORTS, sort),
    selectField("License class", "license_class", LICENSE_CLASSES, cls),
    selectField("Signature", "signature", SIGNATURES, sig),
    el("label", { for: "f-family" }, "Family", el("input", { id: "f-family", name: "family", value: family, placeholder: "e.g. olmoe" })),
    el("label", { class: "check", for: "f-held" }, el("input", { id: "f-held", name: "held", type: "checkbox", value: "1", checked: held }), "Held for review"),
    el("button", { type: "submit" }, "Apply"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) p.set(k, v);
    navigate("/?" + p.toString());
  });

  const heading = el("h1", { text: "Models" });
  show(heading, form, el("p", { text: "Loading…" }));
  const p = new URLSearchParams({ full: "true", sort, limit: String(limit), cursor: String(cursor) });
  if (q) p.set("search", q);
  if (cls) p.set("license_class", cls);
  if (sig) p.set("signature", sig);
  if (family) p.set("family", family);
  if (held) p.set("held", "1");
  let result;
  try {
    result = await api("/api/models?" + p.toString());
  } catch (e) {
    return show(heading, form, failure(e));
  }
  const total = Number(result.headers.get("X-Total-Count") || result.body.length);
  const list = el("ul", { class: "models", "aria-label": "Models" });
  for (const m of result.body) {
    list.append(el("li", {},
      link(repoPath(m.id), m.id, { class: "name" }),
      el("div", { class: "meta" },
        licenseBadge(m.license, m.licenseClass),
        signatureBadge(m.signatureStatus),
        verdictBadge(m.trustVerdict),
        m.private ? badge("private", "private") : null,
        m.gated ? badge("gated", "gated") : null,
        m.held ? badge("held for review", "held") : null,
        m.modelType ? el("span", { text: m.modelType }) : null,
        el("span", { text: bytes(m.usedStorage) }),
        el("span", { text: "updated " + (m.lastModified || "").slice(0, 10) }))));
  }
  const pager = el("nav", { class: "pager", "aria-label": "Pages" });
  const page = (c) => { const n = new URLSearchParams(params); n.set("cursor", String(c)); return "/?" + n.toString(); };
  if (cursor > 0) pager.append(link(page(Math.max(0, cursor - limit)), "Previous"));
  if (cursor + limit < total) pager.append(link(page(cursor + limit), "Next"));
  const count = el("p", { class: "count", id: "count", text: total + (total === 1 ? " model" : " models") });
  show(heading, form, count, total ? list : el("p", { text: "No model matches." }), pager);
}

// ---- a model -------------------------------------------------------------------------------------

function snippets(id, base) {
  const url = location.origin;
  return [
    ["huggingface_hub (Python)", `HF_ENDPOINT=${url} python3 -c 'from huggingface_hub import snapshot_download; print(snapshot_download("${id}"))'`],
    ["@huggingface/hub (JavaScript)", `import { downloadFile } from "@huggingface/hub";\nconst blob = await downloadFile({ repo: "${id}", path: "config.json", hubUrl: "${url}" });`],
    ["git + git-lfs", `git clone ${url}/${id}`],
    ["OpenAI client", `curl ${url}/v1/chat/completions -H 'Content-Type: application/json' \\\n  -d '{"model": "${id}", "messages": [{"role": "user", "content": "Hello"}]}'`],
    ["Publish a fine-tune of it", `# a folder with your weights and a README.md whose front matter says base_model: ${id}
# (the lineage links it to this model; only the tensors you changed are stored again)
export HF_ENDPOINT=${url} HF_TOKEN=hf_...   # a write token of your namespace
python3 -c 'from huggingface_hub import HfApi; api = HfApi()
api.create_repo("me/my-finetune", exist_ok=True)
print(api.upload_folder(repo_id="me/my-finetune", folder_path="./my-finetune"))'`],
  ].map(([title, code]) => el("div", {}, el("h3", { text: title }),
    el("pre", { tabindex: 0, "aria-label": title + " snippet" }, el("code", { text: code }))));
}

// The expert map: layers x experts, each local, on a peer (every chunk this node lacks is held by
// the peers that serve it: GET /api/models/{repo}/peers) or missing.
function expertMap(locality, peers) {
  const ex = locality && locality.experts;
  const onPeer = new Set();
  if (peers && peers.experts) for (const [l, e, st] of peers.experts) if (st === "peer") onPeer.add(`${l}:${e}`);
  if (!ex || !ex.map || !ex.map.length) return el("p", { text: "Not a mixture-of-experts checkpoint (no expert index)." });
  const layers = new Map();
  let maxExpert = -1;
  for (const [layer, expert, size, held] of ex.map) {
    if (!layers.has(layer)) layers.set(layer, new Map());
    layers.get(layer).set(expert, { size, held });
    maxExpert = Math.max(maxExpert, expert);
  }
  const hasShared = ex.map.some(([, e]) => e === -1);
  const cols = maxExpert + 1 + (hasShared ? 1 : 0);
  const grid = el("div", { class: "experts", role: "img",
    "aria-label": `Expert map: ${ex.local} of ${ex.total} experts held on this node` });
  grid.style.gridTemplateColumns = `3em repeat(${cols}, 14px)`;
  for (const layer of [...layers.keys()].sort((a, b) => a - b)) {
    grid.append(el("span", { class: "lbl", text: "L" + layer }));
    const row = layers.get(layer);
    const order = [...(hasShared ? [-1] : []), ...Array.from({ length: maxExpert + 1 }, (_, i) => i)];
    for (const e of order) {
      const c = row.get(e);
      const name = e === -1 ? "shared" : String(e);
      const state = !c ? "absent" : c.held ? "local" : onPeer.has(`${layer}:${e}`) ? "peer" : "missing";
      const says = { local: "held here", peer: "on a peer (fetched when read)", missing: "missing (no peer reached holds it)" }[state];
      grid.append(el("span", {
        class: "cell " + (state === "absent" ? "missing" : state),
        title: c ? `layer ${layer}, expert ${name}: ${bytes(c.size)}, ${says}` : "",
        "data-expert": `${layer}:${name}`, "data-state": state,
      }));
    }
  }
  const counts = peers && peers.expertCounts;
  let summary = `${ex.local} of ${ex.total} experts held on this node`;
  if (ex.total > ex.local) {
    summary += counts ? `; ${counts.peer} on a peer, ${counts.missing} missing.` : "; the rest are fetched from peers when read.";
  } else summary += ".";
  const holders = [];
  for (const p of (peers && peers.peers) || []) {
    holders.push(el("tr", {}, el("td", { text: p.url }),
      el("td", { text: !p.reachable ? "unreachable" : p.error ? "error: " + p.error : !p.commit ? "does not hold this revision" : p.trusted === false ? "does not trust this node" : "serves this node" }),
      el("td", { class: "num", text: p.reachable && p.commit ? bytes(p.heldBytes) : "" }),
      el("td", { class: "num", text: p.reachable && p.commit ? bytes(p.fillBytes) : "" })));
  }
  return el("div", {},
    el("p", { id: "expert-summary", text: summary }),
    el("div", { class: "legend" }, el("span", { class: "l-local", text: "held here" }), el("span", { class: "l-peer", text: "on a peer" }),
      el("span", { class: "l-missing", text: "missing" })),
    el("div", { class: "grid-wrap", tabindex: 0, "aria-label": "Expert map, scrollable" }, grid),
    holders.length ? el("table", { id: "peer-holdings" }, el("caption", { class: "count", text: "What this node's peers hold of this revision" }),
      el("thead", {}, el("tr", {}, ["Peer", "State", "Holds", "Of what this node lacks"].map((h, i) => el("th", { scope: "col", class: i > 1 ? "num" : null, text: h })))),
      el("tbody", {}, holders)) : null);
}

// Lineage as a tree both ways; each edge from this model to a base says what the license policy's
// derivative rules found (the trust report's `derivative`), or that none applies.
function lineageView(lin, trust) {
  if (!lin) return el("p", { text: "No lineage." });
  const rules = (trust && trust.derivative) || [];
  const edge = (m) => {
    const mine = rules.filter((r) => r.startsWith(`base ${m.id}:`) || r.startsWith(`base model ${m.id} `));
    if (mine.length) return el("div", { class: "edge meta", "data-edge": m.id, text: "license edge: " + mine.join("; ") });
    if (!trust || m.onNode === false) return null;
    return el("div", { class: "edge meta", "data-edge": m.id,
      text: `license edge: compatible — ${lin.license || "this license"} over ${m.license || "its license"}, no derivative rule applies` });
  };
  const node = (m, depth = 0) => el("li", {},
    m.onNode === false ? el("span", { text: m.id + " (not on this node)" }) : link(repoPath(m.id), m.id),
    " ", m.onNode === false ? null : licenseBadge(m.license, m.licenseClass),
    m.relation ? el("span", { class: "meta", text: " " + m.relation }) : null,
    depth === 0 ? edge(m) : null,
    (m.bases && m.bases.length) ? el("ul", {}, m.bases.map((b) => node(b, depth + 1))) : null);
  const derived = (m) => el("li", {}, link(repoPath(m.id), m.id), " ", licenseBadge(m.license, m.licenseClass),
    (m.derived && m.derived.length) ? el("ul", {}, m.derived.map(derived)) : null);
  return el("div", { class: "lineage" },
    el("h3", { text: "Based on" }), (lin.bases && lin.bases.length) ? el("ul", { id: "lineage-bases" }, lin.bases.map((b) => node(b))) : el("p", { text: "No base model named in the card." }),
    el("h3", { text: "Derived on this node" }), (lin.derived && lin.derived.length) ? el("ul", { id: "lineage-derived" }, lin.derived.map(derived)) : el("p", { text: "None." }));
}

// The tensor index of a safetensors file, read as huggingface_hub's get_safetensors_metadata does:
// two range requests on the file's resolve URL (8-byte header length, then the JSON header).
async function tensorIndex(href) {
  const headers = token() ? { Authorization: "Bearer " + token() } : {};
  const head = await fetch(href, { headers: { ...headers, Range: "bytes=0-7" } });
  if (head.status !== 206) throw new Error(`range request answered ${head.status}`);
  const n = Number(new DataView(await head.arrayBuffer()).getBigUint64(0, true));
  if (n < 2 || n > 100_000_000) throw new Error("not a safetensors header (" + n + " bytes)");
  const res = await fetch(href, { headers: { ...headers, Range: `bytes=8-${8 + n - 1}` } });
  if (res.status !== 206) throw new Error(`range request answered ${res.status}`);
  return JSON.parse(new TextDecoder().decode(await res.arrayBuffer()));
}

function tensorButton(href, path) {
  const b = el("button", { type: "button", class: "secondary small", "aria-label": "Tensors of " + path }, "tensors");
  b.addEventListener("click", async () => {
    const box = document.getElementById("tensors");
    box.replaceChildren(el("p", { text: "Reading the header of " + path + "…" }));
    let header;
    try { header = await tensorIndex(href); } catch (e) { return box.replaceChildren(failure(e)); }
    const names = Object.keys(header).filter((k) => k !== "__metadata__");
    const table = el("table", { id: "tensor-table" },
      el("caption", { class: "count", text: `${names.length} tensors in ${path}` + (names.length > 1000 ? " (first 1,000 shown)" : "") }),
      el("thead", {}, el("tr", {}, ["Tensor", "Type", "Shape", "Bytes"].map((h, i) => el("th", { scope: "col", class: i === 3 ? "num" : null, text: h })))));
    const body = el("tbody");
    for (const name of names.slice(0, 1000)) {
      const t = header[name] || {};
      const [a, z] = t.data_offsets || [0, 0];
      body.append(el("tr", {}, el("td", {}, el("code", { text: name })), el("td", { text: t.dtype || "" }),
        el("td", { text: "[" + (t.shape || []).join(", ") + "]" }), el("td", { class: "num", text: bytes(z - a) })));
    }
    table.append(body);
    box.replaceChildren(el("h3", { text: "Tensor index: " + path }), table);
    box.scrollIntoView({ block: "nearest" });
  });
  return b;
}

async function modelPage(id, params) {
  const rev = params.get("rev") || "main";
  const encRev = encodeURIComponent(rev);
  const heading = el("h1", { text: id });
  show(heading, el("p", { text: "Loading…" }));
  let info;
  try {
    info = (await api(`/api/models/${id}/revision/${encRev}`)).body;
  } catch (e) {
    return show(heading, failure(e));
  }
  const sha = info.sha;
  const safe = async (p) => { try { return (await api(p)).body; } catch { return null; } };
  const [card, refs, commits, tree, trust, lineage] = await Promise.all([
    safe(`/api/models/${id}/card/${sha}`),
    safe(`/api/models/${id}/refs?include_prs=1`),
    safe(`/api/models/${id}/commits/${encRev}?limit=20&stats=1`),
    safe(`/api/models/${id}/tree/${sha}?recursive=true`),
    safe(`/api/models/${id}/trust/${sha}`),
    safe(`/api/models/${id}/lineage`),
  ]);

  // Refs switcher.
  const refSel = el("select", { id: "ref", name: "rev" });
  const addRefs = (label, list) => {
    if (!list || !list.length) return;
    const g = el("optgroup", { label });
    for (const r of list) g.append(el("option", { value: r.name || r.ref, selected: (r.name || r.ref) === rev }, r.name || r.ref));
    refSel.append(g);
  };
  if (refs) { addRefs("Branches", refs.branches); addRefs("Tags", refs.tags); addRefs("Pull requests", refs.pullRequests); }
  refSel.addEventListener("change", () => navigate(repoPath(id) + "?rev=" + encodeURIComponent(refSel.value)));

  const badges = el("div", { class: "meta" },
    licenseBadge(trust && trust.license ? trust.license.spdx : (info.cardData && info.cardData.license), info.licenseClass),
    signatureBadge(info.signatureStatus), verdictBadge(info.trustVerdict),
    info.private ? badge("private", "private") : null, info.gated ? badge("gated", "gated") : null,
    info.held ? badge("held for review: visible to writers only", "held") : null);

  const facts = el("dl", { class: "facts" });
  const fact = (k, v) => { if (v !== undefined && v !== null && v !== "") facts.append(el("dt", { text: k }), el("dd", {}, v)); };
  fact("Revision", el("code", { text: sha }));
  const cd = info.cardData || {};
  fact("License (card)", cd.license ? String(cd.license) : "none");
  if (trust && trust.license) {
    fact("License class", trust.license.class);
    fact("Evidence", (trust.license.reasons || []).join("; "));
    if (trust.license.file) fact("License file", `${trust.license.file}${trust.license.textId ? " — matches " + trust.license.textId : ""}`);
  }
  if (cd.base_model) fact("Base model", Array.isArray(cd.base_model) ? cd.base_model.join(", ") : String(cd.base_model));
  if (info.config) fact("Architecture", [info.config.model_type, ...(info.config.architectures || [])].filter(Boolean).join(" · "));
  if (info.tags && info.tags.length) fact("Tags", info.tags.join(", "));
  fact("Size", bytes(info.usedStorage));

  const trustBox = el("dl", { class: "facts", id: "trust" });
  if (trust) {
    trustBox.append(el("dt", { text: "Verdict" }), el("dd", {}, verdictBadge(trust.verdict)));
    trustBox.append(el("dt", { text: "Signature" }), el("dd", {}, signatureBadge(trust.signature && trust.signature.status),
      trust.signature && trust.signature.detail ? " " + trust.signature.detail : ""));
    if (trust.findings && trust.findings.length) trustBox.append(el("dt", { text: "Findings" }), el("dd", {}, el("ul", {}, trust.findings.map((f) => el("li", { text: f })))));
    if (trust.refusals && trust.refusals.length) trustBox.append(el("dt", { text: "Refused because" }), el("dd", {}, el("ul", {}, trust.refusals.map((f) => el("li", { text: f })))));
  }

  const files = el("table", { id: "files" },
    el("caption", { class: "count", text: `Files at ${sha.slice(0, 12)}` }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Path" }), el("th", { scope: "col", class: "num", text: "Size" }),
      el("th", { scope: "col", text: "Storage" }), el("th", { scope: "col", text: "Download" }))));
  const tbody = el("tbody");
  for (const f of (tree || []).filter((t) => t.type === "file")) {
    const href = `${repoPath(id)}/resolve/${sha}/${f.path.split("/").map(encodeURIComponent).join("/")}`;
    tbody.append(el("tr", {},
      el("td", {}, el("code", { text: f.path })),
      el("td", { class: "num", text: bytes(f.lfs ? f.lfs.size : f.size) }),
      el("td", {}, f.lfs ? badge("LFS", "lfs", "Stored as Git LFS; sha256 " + f.lfs.oid) : "git", f.lfs ? el("code", { class: "oid", text: " " + f.lfs.oid.slice(0, 12) }) : null),
      el("td", {}, el("a", { href, download: f.path.split("/").pop(), "aria-label": "Download " + f.path }, "download"),
        f.path.endsWith(".safetensors") ? tensorButton(href, f.path) : null)));
  }
  files.append(tbody);
  const tensorBox = el("div", { id: "tensors" });

  const history = el("ol", { id: "history" });
  for (const c of commits || []) {
    const st = c.hubnode;
    const vs = st ? { parent: "vs its parent", base: "vs the base model", nothing: "nothing held before" }[st.comparedWith] || "" : "";
    history.append(el("li", {}, el("code", { text: c.id.slice(0, 12) }), " ", c.title, " ",
      el("span", { class: "meta", text: when(c.date) + (c.authors && c.authors[0] ? " · " + c.authors[0].user : "") }),
      st ? el("span", { class: "meta newbytes", title: "Bytes this commit added to the store, against the bytes of the files it added or changed",
        text: ` · ${st.changedFiles} file${st.changedFiles === 1 ? "" : "s"} changed, ${bytes(st.changedBytes)}; new: ${bytes(st.newBytes)} (${vs})` }) : null));
  }

  // Where the missing experts are: asked of the peers only for a partly held revision.
  const expertBox = el("div", { id: "experts" }, expertMap(info.locality, null));
  const ex = info.locality && info.locality.experts;
  if (ex && ex.total > ex.local) {
    safe(`/api/models/${id}/peers/${sha}`).then((peers) => { if (peers) expertBox.replaceChildren(expertMap(info.locality, peers)); });
  }

  const cardBox = el("div", { class: "card", id: "card" });
  if (card && card.html) cardBox.innerHTML = card.html;  // rendered safely by the node
  else cardBox.textContent = "This model has no card.";

  show(heading, badges,
    el("div", { class: "refs" }, el("label", { for: "ref", text: "Revision" }), refSel,
      link(repoPath(id) + "/discussions", "Discussions and pull requests"),
      info.config ? link("/-/playground?model=" + encodeURIComponent(id), "Chat with this model") : null),
    el("h2", { text: "Model card" }), cardBox,
    el("h2", { text: "Facts" }), facts,
    el("h2", { text: "Trust" }), trustBox,
    el("h2", { text: "Lineage" }), lineageView(lineage, trust),
    el("h2", { text: "Experts" }), expertBox,
    el("h2", { text: "Files" }), files, tensorBox,
    el("h2", { text: "History" }), history,
    el("h2", { text: "Use this model" }), ...snippets(id));
}

// ---- the node ------------------------------------------------------------------------------------

async function nodePage() {
  const heading = el("h1", { text: "This node" });
  if (!token()) return show(heading, el("p", { text: "Sign in with a token to see the node's figures and the review queue." }));
  show(heading, el("p", { text: "Loading…" }));
  const parts = [heading];

  // Who is signed in.
  try {
    const who = (await api("/api/whoami-v2")).body;
    const t = who.auth && who.auth.accessToken ? who.auth.accessToken : {};
    const facts = el("dl", { class: "facts", id: "whoami" });
    facts.append(el("dt", { text: "Token" }), el("dd", { text: t.displayName || "" }),
      el("dt", { text: "Scope" }), el("dd", { text: t.role || "" }),
      el("dt", { text: "Namespace" }), el("dd", { text: who.name || "" }));
    parts.push(el("h2", { text: "Your token" }), facts);
  } catch (e) { parts.push(failure(e)); }
  try {
    const list = (await api("/api/tokens")).body;
    const table = el("table", { id: "tokens" },
      el("caption", { class: "count", text: "Tokens you can see (secrets are shown once, at creation, and never kept)" }),
      el("thead", {}, el("tr", {}, ["Name", "Scope", "Namespace", "Created"].map((h) => el("th", { scope: "col", text: h })))));
    const tb = el("tbody");
    for (const t of list) {
      tb.append(el("tr", { class: t.current ? "current" : null }, el("td", {}, t.name, t.current ? badge("this one", "unknown") : null),
        el("td", { text: t.role }), el("td", { text: t.namespace || "every namespace" }), el("td", { text: when(t.createdAt) })));
    }
    table.append(tb);
    parts.push(el("h2", { text: "Tokens" }), table,
      el("p", { class: "meta", text: "Create or revoke tokens on the node's host: hubnode token create --name NAME --scope read|write [--namespace NS]; hubnode token revoke NAME." }));
  } catch (e) { parts.push(el("h2", { text: "Tokens" }), failure(e)); }

  // The review queue: repos with a commit staged for review (their writers see them).
  const queue = el("table", { id: "held" },
    el("caption", { class: "count", text: "Commits held for review by this node's policy" }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Repo" }), el("th", { scope: "col", text: "Branch" }),
      el("th", { scope: "col", text: "Staged commit" }), el("th", { scope: "col", text: "Decision" }))));
  const qbody = el("tbody");
  queue.append(qbody);
  try {
    const held = (await api("/api/models?held=1&full=true&limit=100")).body;
    for (const m of held) {
      const refs = (await api(`/api/models/${m.id}/refs`)).body;
      for (const b of (refs.branches || []).filter((x) => x.held)) {
        const act = (verb, label) => {
          const btn = el("button", { type: "button", class: verb === "refuse" ? "secondary" : null,
            "aria-label": `${label} ${m.id}@${b.name}` }, label);
          btn.addEventListener("click", async () => {
            btn.disabled = true;
            try {
              await api(`/api/models/${m.id}/${verb}/${encodeURIComponent(b.name)}`, { method: "POST", body: {} });
              nodePage();
            } catch (e) {
              btn.disabled = false;
              btn.after(el("span", { class: "error", role: "alert", text: " " + e.message }));
            }
          });
          return btn;
        };
        qbody.append(el("tr", {}, el("td", {}, link(repoPath(m.id), m.id)), el("td", { text: b.name }),
          el("td", {}, el("code", { text: b.targetCommit.slice(0, 12) })), el("td", { class: "actions" }, act("approve", "Approve"), act("refuse", "Refuse"))));
      }
    }
  } catch (e) { parts.push(failure(e)); }
  parts.push(el("h2", { text: "Review queue" }), qbody.children.length ? queue : el("p", { id: "held-empty", text: "Nothing is held for review." }));

  // Store figures and peers: for node-wide tokens.
  try {
    const node = (await api("/api/node")).body;
    const s = node.store;
    const facts = el("dl", { class: "facts", id: "store" });
    const f = (k, v) => facts.append(el("dt", { text: k }), el("dd", { text: v }));
    f("Repos", s.repos); f("Commits", s.commits); f("Files", s.files);
    f("Logical bytes (all heads)", bytes(s.logicalBytes)); f("Distinct file bytes", bytes(s.fileBytes));
    f("Distinct chunk bytes", bytes(s.chunkRawBytes)); f("Stored (compressed)", bytes(s.chunkStoredBytes));
    f("Dedup + compression", s.chunkStoredBytes ? (s.logicalBytes / s.chunkStoredBytes).toFixed(2) + "×" : "-");
    f("Chunks by codec", Object.entries(s.chunksByCodec || {}).map(([k, v]) => `${k}: ${v}`).join(", "));
    f("On disk", bytes(s.diskBytes));
    parts.push(el("h2", { text: "Store" }), facts);
    const peers = el("table", { id: "peers" }, el("caption", { class: "count", text: "Peers this node fetches chunks from" }),
      el("thead", {}, el("tr", {}, ["Peer", "Chunks", "Bytes", "Throughput", "Failures", "Bad chunks", "State"].map((h) => el("th", { scope: "col", text: h })))));
    const pb = el("tbody");
    for (const p of node.peers) {
      pb.append(el("tr", {}, el("td", { text: p.url }), el("td", { class: "num", text: p.chunks }), el("td", { class: "num", text: bytes(p.bytes) }),
        el("td", { class: "num", text: bytes(p.bytesPerSecond) + "/s" }), el("td", { class: "num", text: p.failures }),
        el("td", { class: "num", text: p.badChunks }), el("td", { text: p.demoted ? "demoted" : "in use" })));
    }
    peers.append(pb);
    parts.push(el("h2", { text: "Peers" }), node.peers.length ? peers : el("p", { text: "No peers configured (serve --peer URL)." }));
  } catch (e) {
    parts.push(el("h2", { text: "Store" }), el("p", { text: e.status === 403 ? "The store's figures are for node-wide tokens." : e.message }));
  }
  show(...parts);
}

// ---- routing -------------------------------------------------------------------------------------

async function route() {
  const url = new URL(location.href);
  const path = decodeURIComponent(url.pathname);
  let m;
  try {
    if (path === "/" || path === "/-/models") {
      document.title = "Models · hubnode";
      await modelsPage(url.searchParams);
    } else if (path === "/-/node") {
      document.title = "Node · hubnode";
      await nodePage();
    } else if (path === "/-/playground") {
      document.title = "Playground · hubnode";
      await playgroundPage(url.searchParams);
    } else if ((m = path.match(/^\/([^/]+(?:\/[^/]+)?)\/discussions\/(\d+)\/?$/))) {
      document.title = `${m[1]} #${m[2]} · hubnode`;
      await discussionPage(m[1], Number(m[2]));
    } else if ((m = path.match(/^\/([^/]+(?:\/[^/]+)?)\/discussions\/?$/))) {
      document.title = m[1] + " discussions · hubnode";
      await discussionsPage(m[1], url.searchParams);
    } else if (!path.startsWith("/-/")) {
      const id = path.replace(/^\/+|\/+$/g, "");
      document.title = id + " · hubnode";
      await modelPage(id, url.searchParams);
    } else {
      show(el("h1", { text: "Not found" }), el("p", {}, link("/", "All models")));
    }
  } catch (e) {
    show(failure(e));
  }
  main.focus({ preventScroll: true });
}
setRouter(route);

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-link]");
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || a.origin !== location.origin) return;
  ev.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", route);

await refreshWho();
await route();
