// Helpers shared by the pages: DOM building (textContent only), the API call with the signed-in
// token, figures and badges, and client-side navigation.

export const TOKEN_KEY = "hubnode.token";
export const main = document.getElementById("main");

// ---- helpers -------------------------------------------------------------------------------------

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

export async function api(path, { raw = false, method = "GET", body } = {}) {
  const headers = {};
  if (token()) headers["Authorization"] = "Bearer " + token();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { headers, method, body: body === undefined ? undefined : JSON.stringify(body) });
  if (raw) return res;
  let json = null;
  try { json = await res.json(); } catch { json = null; }
  if (!res.ok) {
    const msg = res.headers.get("X-Error-Message") || (json && json.error) || res.statusText;
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return { body: json, headers: res.headers };
}

export function bytes(n) {
  if (n === undefined || n === null) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return (i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
}

export function badge(text, kind, title) {
  return el("span", { class: "badge b-" + (kind || "unknown"), title: title || undefined, text });
}

export function licenseBadge(license, cls) {
  return badge((license || "no license") + (cls ? " · " + cls : ""), cls || "unknown", "License and its class under this node's policy");
}

export function signatureBadge(status) {
  return badge("signature: " + (status || "unknown"), status || "unknown", "Model signature (OpenSSF model signing)");
}

export function verdictBadge(v) {
  return badge("policy: " + (v || "unknown"), v || "unknown", "This node's policy verdict");
}

export function link(href, text, attrs = {}) {
  return el("a", { href, "data-link": true, ...attrs }, text);
}

export function repoPath(id) { return "/" + id.split("/").map(encodeURIComponent).join("/"); }

export function show(...nodes) {
  main.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));
}

export function failure(e) {
  const msg = e.status === 401 || e.status === 404
    ? "Not found (or not visible to you: sign in with a token that may read it)."
    : e.message;
  return el("p", { class: "error", role: "alert", text: msg });
}

export function alertBox(text) {
  main.prepend(el("p", { class: "error", role: "alert", text }));
}

let router = async () => {};
export function setRouter(fn) { router = fn; }

export function navigate(href) {
  history.pushState(null, "", href);
  return router();
}

// Seconds as "1.2 s" / "340 ms".
export function duration(s) { return s >= 1 ? s.toFixed(1) + " s" : Math.round(s * 1000) + " ms"; }

export function when(iso) { return (iso || "").slice(0, 19).replace("T", " "); }

// Who is signed in: {name, role: "read"|"write", namespace: "" for a node-wide token}; null when
// nobody is. Only used to hide controls the node would refuse; the node decides.
let me = null;
export function session() { return me; }
export function setSession(s) { me = s; }
