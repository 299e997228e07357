// The desk's live chat with a web-chat user (J1): poll the handoff's messages, show
// them as text (never as HTML), send the operator's lines. Loaded from _live_chat.html.
(() => {
  "use strict";
  const box = document.getElementById("live-chat-box");
  if (!box) return;
  const id = box.dataset.handoffId;
  const csrf = box.dataset.csrf;
  const list = document.getElementById("live-messages");
  const status = document.getElementById("live-status");
  const form = document.getElementById("live-form");
  const input = document.getElementById("live-text");
  // The words come from the page, in the operator's language (bot/desk/texts).
  const WHO = { caller: box.dataset.caller || "Caller", operator: box.dataset.you || "You", system: "—" };
  const ENDED = box.dataset.ended || "This conversation has ended.";
  let since = 0;
  let timer = null;

  function show(m) {
    if (m.id <= since) return;
    since = m.id;
    const li = document.createElement("li");
    li.className = m.sender === "caller" ? "caller" : "bot";
    li.dataset.sender = m.sender;
    const who = m.sender === "operator" && m.name ? m.name : (WHO[m.sender] || m.sender);
    li.textContent = `${who}: ${m.text}`;
    list.append(li);
    list.scrollTop = list.scrollHeight;
  }

  function ended() {
    if (timer !== null) clearInterval(timer);
    timer = null;
    status.textContent = ENDED;
    if (form) form.hidden = true;
    const finish = document.getElementById("live-finish");
    if (finish) finish.hidden = true;
  }

  async function poll() {
    try {
      const r = await fetch(`/desk/handoffs/${id}/messages.json?since=${since}`,
        { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!r.ok) return;
      const data = await r.json();
      for (const m of data.messages) show(m);
      if (data.state !== "taken") ended();
    } catch { /* the next poll tries again */ }
  }

  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      const body = new URLSearchParams({ csrf, text });
      const r = await fetch(form.action, {
        method: "POST", body, credentials: "same-origin", headers: { Accept: "application/json" },
      });
      let data = null;
      try { data = await r.json(); } catch { data = null; }
      if (r.ok && data && data.message) {
        input.value = "";
        status.textContent = "";
        await poll();
      } else {
        status.textContent = (data && data.reason) || `Not sent (HTTP ${r.status}).`;
      }
    });
  }

  poll();
  if (box.dataset.state === "taken") timer = setInterval(poll, 1500);
})();
