// The chat playground: talks to the node's OpenAI-compatible /v1/chat/completions with
// stream: true, as any OpenAI client does, and shows the reply as it streams, the token counts
// (from the stream's usage chunk), time to first token and decode speed, and the experts the
// runtime loaded while answering (the node's `hubnode` field on each chunk: experts read from
// the store, or fetched from a peer for a partly held model). Stop aborts the request; the node
// notices the closed connection and cancels the generation.

import { el, failure, show, token, duration } from "./ui.js";

const conversation = [];  // {role, content} of this tab's chat, kept while the page is open
let running = null;       // the AbortController of the request in flight

export async function playgroundPage(params) {
  const heading = el("h1", { text: "Playground" });
  show(heading, el("p", { text: "Loading…" }));
  let models = [];
  try {
    const headers = token() ? { Authorization: "Bearer " + token() } : {};
    const res = await fetch("/v1/models", { headers });
    if (res.status === 404 || res.status === 503) {
      return show(heading, el("p", { id: "no-inference", text: "This node does not run models (it was started with --no-inference)." }));
    }
    if (!res.ok) throw Object.assign(new Error(res.headers.get("X-Error-Message") || res.statusText), { status: res.status });
    models = (await res.json()).data.map((m) => m.id);
  } catch (e) {
    return show(heading, failure(e));
  }
  if (!models.length) {
    return show(heading, el("p", { id: "no-models", text: "No model on this node that the runtime can run is visible to you." }));
  }
  const want = params.get("model");
  const notRunnable = want && !models.includes(want)
    ? el("p", { class: "error", role: "alert", text: `${want} is not a model this node runs (an unsupported architecture, or not visible to you).` }) : null;
  const modelSel = el("select", { id: "pg-model", name: "model" },
    models.map((m) => el("option", { value: m, selected: m === want }, m)));
  const system = el("textarea", { id: "pg-system", name: "system", rows: 2, placeholder: "You are a helpful assistant." });
  const temperature = el("input", { id: "pg-temperature", name: "temperature", type: "number", min: 0, max: 2, step: 0.1, value: 0.7 });
  const maxTokens = el("input", { id: "pg-max-tokens", name: "max_tokens", type: "number", min: 1, max: 4096, step: 1, value: 128 });
  const log = el("ol", { class: "chat", id: "pg-log", "aria-label": "Conversation", "aria-live": "polite" });
  const input = el("textarea", { id: "pg-input", name: "message", rows: 3, required: true, placeholder: "Say something" });
  const send = el("button", { type: "submit", id: "pg-send" }, "Send");
  const stop = el("button", { type: "button", id: "pg-stop", class: "secondary", disabled: true }, "Stop");
  const clear = el("button", { type: "button", id: "pg-clear", class: "secondary" }, "New chat");
  const status = el("p", { id: "pg-status", class: "meta", role: "status" });
  const figures = el("dl", { class: "facts", id: "pg-figures" });

  const bubble = (m) => el("li", { class: "msg " + m.role }, el("span", { class: "who", text: m.role }), el("div", { class: "text", text: m.content }));
  for (const m of conversation) log.append(bubble(m));

  const form = el("form", { class: "stack", id: "pg-form", "aria-label": "Chat" },
    el("div", { class: "filters" },
      el("label", { for: "pg-model" }, "Model", modelSel),
      el("label", { for: "pg-temperature" }, "Temperature", temperature),
      el("label", { for: "pg-max-tokens" }, "Max tokens", maxTokens)),
    el("label", { for: "pg-system" }, "System prompt"), system,
    log,
    el("label", { for: "pg-input" }, "Message"), input,
    el("div", { class: "actions" }, send, stop, clear), status, figures);

  const setFigures = (rows) => {
    figures.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  };

  stop.addEventListener("click", () => { if (running) running.abort(); });
  clear.addEventListener("click", () => { conversation.length = 0; log.replaceChildren(); status.textContent = ""; setFigures([]); });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit(); }
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text || running) return;
    input.value = "";
    const user = { role: "user", content: text };
    conversation.push(user);
    log.append(bubble(user));
    const reply = { role: "assistant", content: "" };
    const replyEl = bubble(reply);
    replyEl.classList.add("streaming");
    log.append(replyEl);
    const replyText = replyEl.querySelector(".text");

    const messages = [];
    if (system.value.trim()) messages.push({ role: "system", content: system.value.trim() });
    messages.push(...conversation);
    const body = {
      model: modelSel.value, messages, stream: true, stream_options: { include_usage: true },
      temperature: Number(temperature.value), max_tokens: Number(maxTokens.value),
    };
    running = new AbortController();
    send.disabled = true;
    stop.disabled = false;
    status.textContent = "Waiting for the model (it is loaded on first use)…";
    const t0 = performance.now();
    let tFirst = 0, pieces = 0, usage = null, finish = null, loads = 0, loadSeconds = 0;
    const refresh = () => {
      const now = performance.now();
      const rows = [["Time to first token", tFirst ? duration((tFirst - t0) / 1000) : "…"]];
      const completion = usage ? usage.completion_tokens : pieces;
      if (tFirst && completion > 1) rows.push(["Speed", ((completion - 1) / ((now - tFirst) / 1000)).toFixed(1) + " tok/s"]);
      if (usage) rows.push(["Prompt tokens", String(usage.prompt_tokens)], ["Completion tokens", String(usage.completion_tokens)]);
      else rows.push(["Chunks so far", String(pieces)]);
      rows.push(["Experts loaded while answering", loads ? `${loads} (${duration(loadSeconds)})` : "0"]);
      setFigures(rows);
    };
    try {
      const headers = { "Content-Type": "application/json" };
      if (token()) headers.Authorization = "Bearer " + token();
      const res = await fetch("/v1/chat/completions", { method: "POST", headers, body: JSON.stringify(body), signal: running.signal });
      if (!res.ok) {
        let msg = res.headers.get("X-Error-Message");
        try { const j = await res.json(); msg = (j.error && j.error.message) || msg; } catch { /* not JSON */ }
        throw Object.assign(new Error(msg || res.statusText), { status: res.status });
      }
      status.textContent = "Generating…";
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const event = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          for (const line of event.split("\n")) {
            if (!line.startsWith("data: ")) continue;  // ": keep-alive" comments
            const data = line.slice(6);
            if (data === "[DONE]") continue;
            const chunk = JSON.parse(data);
            if (chunk.error) throw new Error(chunk.error.message);
            if (chunk.hubnode) {
              const before = loads;
              loads = chunk.hubnode.expertLoads || 0;
              loadSeconds = chunk.hubnode.expertLoadSeconds || 0;
              if (loads > before) status.textContent = `Generating… loading experts (${loads} so far: read from the store or fetched from a peer)`;
              else if (!finish) status.textContent = "Generating…";
            }
            if (chunk.usage) usage = chunk.usage;
            const c = chunk.choices && chunk.choices[0];
            if (!c) continue;
            if (c.delta && c.delta.content) {
              if (!tFirst) tFirst = performance.now();
              pieces++;
              reply.content += c.delta.content;
              replyText.textContent = reply.content;
            }
            if (c.finish_reason) finish = c.finish_reason;
          }
          refresh();
        }
      }
      status.textContent = finish === "length" ? "Done (stopped at max tokens)." : "Done.";
    } catch (e) {
      if (e.name === "AbortError") status.textContent = "Stopped: the request was cancelled.";
      else { status.textContent = ""; form.append(failure(e)); }
    } finally {
      refresh();
      replyEl.classList.remove("streaming");
      if (reply.content) conversation.push(reply);
      running = null;
      send.disabled = false;
      stop.disabled = true;
      input.focus();
    }
  });
  show(heading, notRunnable, form);
}
