// A repo's discussions and pull requests, from the discussions API (the one huggingface_hub's
// get_repo_discussions / get_discussion_details / comment_discussion / merge_pull_request use):
// the list with status and kind filters, one thread with its events, a pull request's diff, and
// the forms to comment, open, close, reopen and merge. The node decides who may do what; the page
// only hides the controls a reader cannot use.

import { api, badge, el, failure, link, navigate, repoPath, session, show, token, when } from "./ui.js";

function author(a) { return typeof a === "string" ? a : (a && a.name) || "deleted"; }

function statusBadge(d) {
  const kind = { open: "allow", draft: "review", merged: "verified", closed: "unknown" }[d.status] || "unknown";
  return badge((d.isPullRequest ? "pull request · " : "discussion · ") + d.status, kind);
}

export function canWrite(id) {
  const me = session();
  if (!me || me.role !== "write") return false;
  return me.namespace === "" || id.split("/")[0] === me.namespace;
}

// /{repo}/discussions
export async function discussionsPage(id, params) {
  const status = params.get("status") || "all";
  const type = params.get("type") || "all";
  const page = Number(params.get("p") || 0);
  const heading = el("h1", {}, link(repoPath(id), id), " · discussions");
  const form = el("form", { class: "filters", "aria-label": "Filter discussions" },
    el("label", { for: "d-status" }, "Status", el("select", { id: "d-status", name: "status" },
      ["all", "open", "draft", "merged", "closed"].map((s) => el("option", { value: s, selected: s === status }, s)))),
    el("label", { for: "d-type" }, "Kind", el("select", { id: "d-type", name: "type" },
      [["all", "all"], ["discussion", "discussions"], ["pull_request", "pull requests"]].map(([v, t]) => el("option", { value: v, selected: v === type }, t)))),
    el("button", { type: "submit" }, "Apply"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams(new FormData(form));
    navigate(repoPath(id) + "/discussions?" + p.toString());
  });
  show(heading, form, el("p", { text: "Loading…" }));
  let body;
  try {
    body = (await api(`/api/models/${id}/discussions?status=${status}&type=${type}&p=${page}`)).body;
  } catch (e) {
    return show(heading, failure(e));
  }
  const list = el("ul", { class: "models", id: "discussions", "aria-label": "Discussions" });
  for (const d of body.discussions) {
    list.append(el("li", {},
      link(`${repoPath(id)}/discussions/${d.num}`, `#${d.num} ${d.title}`, { class: "name" }),
      el("div", { class: "meta" }, statusBadge(d), el("span", { text: "by " + author(d.author) }),
        el("span", { text: when(d.createdAt) }), el("span", { text: d.numComments + (d.numComments === 1 ? " comment" : " comments") }))));
  }
  const pager = el("nav", { class: "pager", "aria-label": "Pages" });
  const at = (p) => { const n = new URLSearchParams(params); n.set("p", String(p)); return `${repoPath(id)}/discussions?${n}`; };
  if (page > 0) pager.append(link(at(page - 1), "Previous"));
  if ((page + 1) * body.numItemsPerPage < body.count) pager.append(link(at(page + 1), "Next"));

  const parts = [heading, form, el("p", { class: "count", id: "d-count", text: `${body.count} shown of this filter` }),
    body.discussions.length ? list : el("p", { text: "No discussion matches." }), pager];
  if (token()) parts.push(newDiscussionForm(id));
  else parts.push(el("p", { text: "Sign in with a token to start a discussion." }));
  show(...parts);
}

function newDiscussionForm(id) {
  const form = el("form", { class: "stack", id: "new-discussion", "aria-label": "Start a discussion" },
    el("h2", { text: "Start a discussion" }),
    el("label", { for: "nd-title" }, "Title"), el("input", { id: "nd-title", name: "title", required: true, maxlength: 200 }),
    el("label", { for: "nd-text" }, "Description"), el("textarea", { id: "nd-text", name: "description", rows: 4, maxlength: 16384 }),
    el("button", { type: "submit" }, "Open discussion"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    try {
      const r = (await api(`/api/models/${id}/discussions`, { method: "POST",
        body: { title: f.get("title"), description: f.get("description") || "", pullRequest: false } })).body;
      navigate(`${repoPath(id)}/discussions/${r.num}`);
    } catch (e) { form.append(failure(e)); }
  });
  return form;
}

function diffView(text) {
  const pre = el("pre", { class: "diff", id: "diff", tabindex: 0, "aria-label": "Changes of this pull request" });
  for (const line of text.split("\n")) {
    const cls = line.startsWith("+++") || line.startsWith("---") || line.startsWith("diff ") ? "d-file"
      : line.startsWith("+") ? "d-add" : line.startsWith("-") ? "d-del" : line.startsWith("@@") ? "d-hunk" : null;
    pre.append(el("span", { class: cls }, line + "\n"));
  }
  return pre;
}

function eventView(e) {
  const who = el("strong", { text: author(e.author) });
  const at = el("span", { class: "meta", text: " " + when(e.createdAt) });
  const d = e.data || {};
  switch (e.type) {
    case "comment":
      if (d.hidden) return el("li", { class: "event" }, who, at, el("p", { class: "meta", text: "(comment hidden)" }));
      return el("li", { class: "event comment" }, who, at, el("div", { class: "comment-text", text: d.latest ? d.latest.raw : "" }));
    case "status-change":
      return el("li", { class: "event" }, who, " changed the status to ", el("strong", { text: d.status }), at);
    case "commit":
      return el("li", { class: "event" }, who, " pushed ", el("code", { text: (d.oid || "").slice(0, 12) }), " ", d.subject || "", at);
    case "title-change":
      return el("li", { class: "event" }, who, ` renamed it from “${d.from}” to “${d.to}”`, at);
    default:
      return el("li", { class: "event" }, who, " " + e.type, at);
  }
}

// /{repo}/discussions/{num}
export async function discussionPage(id, num) {
  const heading = el("h1", { text: `${id} · #${num}` });
  show(heading, el("p", { text: "Loading…" }));
  let d;
  try {
    d = (await api(`/api/models/${id}/discussions/${num}?diff=1`)).body;
  } catch (e) {
    return show(heading, failure(e));
  }
  heading.textContent = "";
  heading.append(link(repoPath(id), id), ` · #${num} ${d.title}`);
  const writer = canWrite(id);
  const parts = [heading, el("div", { class: "meta" }, statusBadge(d), el("span", { text: "opened by " + author(d.author) + " " + when(d.createdAt) }),
    link(`${repoPath(id)}/discussions`, "all discussions"))];

  if (d.isPullRequest) {
    const ch = d.changes || {};
    const facts = el("dl", { class: "facts", id: "pr-facts" });
    facts.append(el("dt", { text: "Into" }), el("dd", { text: (ch.base || "").replace("refs/heads/", "") }),
      el("dt", { text: "From" }), el("dd", {}, link(`${repoPath(id)}?rev=${encodeURIComponent("refs/pr/" + num)}`, "refs/pr/" + num)));
    if (ch.mergeCommitId) facts.append(el("dt", { text: "Merged as" }), el("dd", {}, el("code", { text: ch.mergeCommitId })));
    if (d.filesWithConflicts && d.filesWithConflicts.length) {
      facts.append(el("dt", { text: "Conflicts" }), el("dd", { class: "error", text: d.filesWithConflicts.join(", ") }));
    }
    parts.push(el("h2", { text: "Pull request" }), facts);
    parts.push(el("h2", { text: "Files changed" }), d.diff ? diffView(d.diff) : el("p", { text: d.status === "merged" ? "Merged." : "No changes to show." }));
  }

  parts.push(el("h2", { text: "Conversation" }), el("ol", { class: "events", id: "events" }, (d.events || []).map(eventView)));

  if (token() && d.status !== "merged") {
    const form = el("form", { class: "stack", id: "comment-form", "aria-label": "Comment" },
      el("label", { for: "c-text" }, "Comment"), el("textarea", { id: "c-text", name: "comment", rows: 4, required: true, maxlength: 16384 }),
      el("div", { class: "actions" }, el("button", { type: "submit" }, "Comment")));
    const act = (label, path, body) => {
      const b = el("button", { type: "button", class: "secondary", id: "act-" + label.toLowerCase().replace(/\W+/g, "-") }, label);
      b.addEventListener("click", async () => {
        b.disabled = true;
        const comment = form.querySelector("textarea").value.trim();
        try {
          await api(`/api/models/${id}/discussions/${num}/${path}`, { method: "POST", body: { ...body, ...(comment ? { comment } : {}) } });
          discussionPage(id, num);
        } catch (e) { b.disabled = false; form.append(failure(e)); }
      });
      return b;
    };
    if (writer) {
      const actions = form.querySelector(".actions");
      if (d.isPullRequest && d.status !== "closed") actions.append(act("Merge", "merge", {}));
      if (d.status === "closed") actions.append(act("Reopen", "status", { status: "open" }));
      else actions.append(act("Close", "status", { status: "closed" }));
    }
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const text = form.querySelector("textarea").value.trim();
      if (!text) return;
      try {
        await api(`/api/models/${id}/discussions/${num}/comment`, { method: "POST", body: { comment: text } });
        discussionPage(id, num);
      } catch (e) { form.append(failure(e)); }
    });
    parts.push(form);
  } else if (!token()) {
    parts.push(el("p", { text: "Sign in with a token to comment." }));
  }
  show(...parts);
}
