// hotline web chat: one page talking to POST /api/chat/{conversation_id} (design §4).
// The dialogue decides everything; this page only renders what the bot says and turns
// what the user does (keys, text, silence, leaving) into one chat request.
//
// How the last message's `expect` drives the page:
//   digits     keypad shown; keys compose a number in the display; # sends {"dtmf": "…#"}
//   choice     one big button per expect.choices; a button or keypad key sends {"dtmf": key}
//   text       text box; keypad usable only when expect.keys is non-empty (single keys,
//              or composing when "#" is among them)
//   recording  text box (a typed message stands for the voice message)
//   none       nothing expected; keys disabled (text still allowed unless the chat ended)
// A typed line of only 0-9*# is sent as dtmf (with "#" appended for a digits prompt),
// the same rule as the console (`python -m bot chat`).
// No-input timer: expect.no_input_timeout_ms after the last answer or the user's last
// activity, sends {"event": "no_input"} (or, with digits half typed, sends those digits
// without "#", as the phone's inter-digit timeout would).
//
// Waiting for an operator (J1): an answer with `handoff` puts the page in handoff mode.
// It polls GET /api/chat-handoff/{id}: while queued it shows the place in the queue and,
// once the server says `offer` (after handoff_offer_seconds), a button back to the
// automated service (POST …/return, answered like a chat turn); once an operator took
// the chat, their name and a live text conversation in this window (POST …/messages).
// Every text is put on the page with textContent. Closing the page sends …/leave.

const STORAGE_KEY = "hotline.chat.v1";
const LANG_KEY = "hotline.uiLang";
// U3: this browser's id, kept across visits, so a reporter who comes back gets the
// satisfaction survey of their report; /survey/<token> is a signed link to one survey.
const BROWSER_KEY = "hotline.browser";
const SURVEY_PATH = /^\/survey\/([A-Za-z0-9._-]{1,200})$/;
const MAX_TEXT = 2000;
const DTMF_RE = /^[0-9*#]+$/;
const HANDOFF_POLL_MS = 2000;

const I18N = {
  zh: {
    htmlLang: "zh-CN",
    title: "故障申告 · 1000客服",
    langToggle: "English",
    langToggleLabel: "Switch to English",
    log: "对话记录",
    typing: "正在处理，请稍候…",
    handoff: "正在为您转接人工服务…",
    queuePosition: "排队位置：",
    positionValue: (n) => `第 ${n} 位`,
    choices: "请选择",
    keypad: "拨号键盘",
    showKeypad: "拨号键盘",
    hideKeypad: "收起键盘",
    digitsLabel: "已输入的号码",
    backspace: "⌫ 删除",
    textLabel: "输入文字",
    textPlaceholder: "请输入文字…",
    send: "发送",
    ended: "本次对话已结束。",
    restart: "重新开始",
    you: "您",
    bot: "客服",
    keyPressed: (k, label) => (label ? `按键 ${k}（${label}）` : `按键 ${k}`),
    hintDigits: (min, max) =>
      min && max ? `请用键盘输入 ${min}–${max} 位号码，按 # 确认` : "请用键盘输入号码，按 # 确认",
    hintChoice: "请点按下面的按钮，或用键盘按键",
    hintText: "请输入文字后点“发送”",
    hintTextKeys: "请输入文字，或使用拨号键盘",
    hintRecording: "请输入您的留言，然后点“发送”",
    hintNone: "",
    tooLong: `文字太长，最多 ${MAX_TEXT} 个字。`,
    badRequest: "无法发送：",
    offerText: "人工座席繁忙。您可以继续等待，也可以返回自动服务。",
    returnToBot: "返回自动服务",
    operatorServing: (name) => `人工客服${name ? ` ${name} ` : ""}正在为您服务`,
    operator: "人工客服",
    hintWaiting: "正在排队，请稍候…",
    hintLive: "请输入文字，与人工客服对话",
    liveEnded: "人工服务已结束。",
  },
  en: {
    htmlLang: "en",
    title: "Fault reporting · 1000",
    langToggle: "中文",
    langToggleLabel: "切换到中文",
    log: "Conversation",
    typing: "Working on it, please wait…",
    handoff: "Connecting you to an operator…",
    queuePosition: "Place in queue: ",
    positionValue: (n) => `${n}`,
    choices: "Choose",
    keypad: "Keypad",
    showKeypad: "Keypad",
    hideKeypad: "Hide keypad",
    digitsLabel: "Number entered",
    backspace: "⌫ Delete",
    textLabel: "Type a message",
    textPlaceholder: "Type a message…",
    send: "Send",
    ended: "This conversation has ended.",
    restart: "Start again",
    you: "You",
    bot: "Service",
    keyPressed: (k, label) => (label ? `Key ${k} (${label})` : `Key ${k}`),
    hintDigits: (min, max) =>
      min && max ? `Enter ${min}–${max} digits on the keypad, then press #` : "Enter the number on the keypad, then press #",
    hintChoice: "Tap a button below, or use the keypad",
    hintText: "Type your answer and tap Send",
    hintTextKeys: "Type your answer, or use the keypad",
    hintRecording: "Type your message and tap Send",
    hintNone: "",
    tooLong: `The text is too long (at most ${MAX_TEXT} characters).`,
    badRequest: "Could not send: ",
    offerText: "All operators are busy. You can keep waiting, or go back to the automated service.",
    returnToBot: "Back to the automated service",
    operatorServing: (name) => (name ? `${name} (operator) is with you` : "An operator is with you"),
    operator: "Operator",
    hintWaiting: "Waiting for an operator…",
    hintLive: "Type a message to the operator",
    liveEnded: "The operator has ended the conversation.",
  },
};

const $ = (id) => document.getElementById(id);
const el = {
  title: $("title"),
  langToggle: $("lang-toggle"),
  banner: $("error-banner"),
  bannerReason: $("error-reason"),
  retry: $("retry-button"),
  conversation: $("conversation"),
  messages: $("messages"),
  typing: $("typing"),
  handoff: $("handoff-banner"),
  handoffPosition: $("handoff-position"),
  handoffWaiting: $("handoff-waiting"),
  handoffOperator: $("handoff-operator"),
  handoffOffer: $("handoff-offer"),
  returnButton: $("return-button"),
  hint: $("expect-hint"),
  choices: $("choices"),
  digitEntry: $("digit-entry"),
  digitDisplay: $("digit-display"),
  backspace: $("digit-backspace"),
  keypadToggle: $("keypad-toggle"),
  keypad: $("keypad"),
  form: $("text-form"),
  input: $("text-input"),
  send: $("send-button"),
  inputError: $("input-error"),
  ended: $("ended-panel"),
  restart: $("restart-button"),
};

// ---------------------------------------------------------------- state

function newId() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // randomUUID needs a secure context; plain http on a LAN address is not one.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function initialUiLang() {
  const q = new URLSearchParams(location.search).get("lang");
  if (q === "en" || q === "zh") return q;
  try {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved === "en" || saved === "zh") return saved;
  } catch { /* storage may be blocked */ }
  return "zh";
}

function browserId() {
  try {
    let id = localStorage.getItem(BROWSER_KEY);
    if (!id || !/^[A-Za-z0-9-]{8,64}$/.test(id)) {
      id = newId();
      localStorage.setItem(BROWSER_KEY, id);
    }
    return id;
  } catch { return null; } // storage blocked: no survey on the next visit, nothing else changes
}

function freshConversation() {
  return {
    id: newId(),
    path: location.pathname, // a conversation belongs to the page it began on (a survey link)
    started: false,     // the start event got an answer
    transcript: [],     // [{who: "bot"|"user", text, prompt?, spec?, step?}]
    expect: null,
    ended: false,
    handoff: null,
    live: null,         // J1 while handed off: {state, operator, offer, since}
    dialogueLang: null, // the bot's language, from the last answer
  };
}

function loadConversation() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    if (saved && typeof saved.id === "string" && Array.isArray(saved.transcript)
        && (saved.path || "/") === location.pathname) return saved;
  } catch { /* ignore */ }
  return freshConversation();
}

function saveConversation() {
  try { sessionStorage.setItem(STORAGE_KEY, JSON.stringify(conv)); } catch { /* ignore */ }
}

let uiLang = initialUiLang();
let conv = loadConversation();
let busy = false;
let pending = null;       // the request to resend after an outage
let digits = "";          // the number being composed on the keypad
let keypadOpen = false;   // the user opened the keypad by hand
let noInputTimer = null;
let handoffTimer = null;

const t = (key) => I18N[uiLang][key];
const apiUrl = () => `/api/chat/${encodeURIComponent(conv.id)}`;
const handoffUrl = (tail = "") => `/api/chat-handoff/${encodeURIComponent(conv.id)}${tail}`;

// ---------------------------------------------------------------- labels

function applyLabels() {
  document.documentElement.lang = t("htmlLang");
  document.title = t("title");
  for (const node of document.querySelectorAll("[data-i18n]")) {
    const v = t(node.dataset.i18n);
    if (typeof v === "string") node.textContent = v;
  }
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  for (const node of document.querySelectorAll("[data-i18n-aria-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel));
  }
  el.langToggle.textContent = t("langToggle");
  el.langToggle.lang = uiLang === "zh" ? "en" : "zh-CN";
  el.langToggle.setAttribute("aria-label", t("langToggleLabel"));
  el.backspace.setAttribute("aria-label", t("backspace"));
  renderExpect();
  renderHandoff();
}

function setUiLang(lang) {
  uiLang = lang;
  try { localStorage.setItem(LANG_KEY, lang); } catch { /* ignore */ }
  applyLabels();
}

// ---------------------------------------------------------------- rendering

function addBubble(entry, { save = true } = {}) {
  const li = document.createElement("li");
  li.className = `msg msg-${entry.who}`;
  li.dataset.testid = { bot: "bot-message", operator: "operator-message" }[entry.who] || "user-message";
  if (entry.who === "bot") {
    li.dataset.prompt = entry.prompt || "";
    li.dataset.spec = entry.spec || "";
    li.dataset.step = entry.step || "";
    const tag = [entry.spec, entry.prompt, entry.step].filter(Boolean).join(" · ");
    if (tag) li.title = tag;
  }
  const who = document.createElement("span");
  if (entry.who === "operator") {
    who.className = "msg-name";
    who.textContent = entry.name || t("operator");
  } else {
    who.className = "visually-hidden";
    who.textContent = `${entry.who === "bot" ? t("bot") : t("you")}: `;
  }
  const body = document.createElement("span");
  body.className = "msg-text";
  body.textContent = entry.text;
  li.append(who, body);
  el.messages.append(li);
  if (save) conv.transcript.push(entry);
  scrollToEnd();
}

function scrollToEnd() {
  el.conversation.scrollTop = el.conversation.scrollHeight;
}

function handoffMode() {
  if (!conv.handoff || conv.ended) return "none";
  return conv.live && conv.live.state === "taken" ? "live" : "queued";
}

function keypadMode() {
  const e = conv.expect;
  if (conv.ended || !e || handoffMode() !== "none") return "off";
  if (e.kind === "digits") return "compose";
  if (e.kind === "choice") return "single";
  if (e.kind === "text" && Array.isArray(e.keys) && e.keys.length) {
    return e.keys.includes("#") ? "compose" : "single";
  }
  return "off";
}

function renderExpect() {
  const e = conv.expect;
  const handing = handoffMode();
  const kind = conv.ended || handing !== "none" ? "none" : (e && e.kind) || "none";
  const mode = keypadMode();

  // hint
  let hint = "";
  if (kind === "digits") hint = t("hintDigits")(e.min_digits, e.max_digits);
  else if (kind === "choice") hint = t("hintChoice");
  else if (kind === "text") hint = mode === "off" ? t("hintText") : t("hintTextKeys");
  else if (kind === "recording") hint = t("hintRecording");
  else if (handing === "queued") hint = t("hintWaiting");
  else if (handing === "live") hint = t("hintLive");
  el.hint.textContent = hint;
  el.hint.hidden = !hint;
  el.hint.dataset.kind = kind;

  // choice buttons
  el.choices.replaceChildren();
  if (kind === "choice" && Array.isArray(e.choices)) {
    for (const c of e.choices) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "btn choice";
      b.dataset.key = c.key;
      b.setAttribute("data-testid", `choice-${c.key}`);
      const k = document.createElement("span");
      k.className = "choice-key";
      k.textContent = c.key;
      const l = document.createElement("span");
      l.className = "choice-label";
      l.textContent = c.label;
      b.append(k, l);
      b.addEventListener("click", () => sendKey(c.key));
      el.choices.append(b);
    }
  }
  el.choices.hidden = el.choices.childElementCount === 0;

  // keypad: always open for number entry, on demand otherwise
  const allowed = kind === "text" && mode !== "off" ? new Set(e.keys) : null;
  for (const key of el.keypad.querySelectorAll(".key")) {
    key.disabled = mode === "off" || busy || (allowed !== null && !allowed.has(key.dataset.key));
  }
  const showKeypad = mode === "compose" || (mode !== "off" && keypadOpen);
  el.keypad.hidden = !showKeypad;
  el.keypadToggle.hidden = mode === "off" || mode === "compose";
  el.keypadToggle.textContent = showKeypad ? t("hideKeypad") : t("showKeypad");
  el.keypadToggle.setAttribute("aria-expanded", String(showKeypad));
  el.digitEntry.hidden = mode !== "compose";
  el.digitDisplay.textContent = digits;
  el.backspace.disabled = !digits || busy;

  // text box: the dialogue's, or the operator's once one took the chat; none while queued
  const noText = conv.ended || handing === "queued";
  el.form.hidden = noText;
  el.input.disabled = noText;
  el.send.disabled = noText || busy;
  el.choices.querySelectorAll("button").forEach((b) => { b.disabled = busy; });

  el.ended.hidden = !conv.ended;
  document.body.dataset.expect = kind;
  document.body.dataset.busy = String(busy);
}

function renderHandoff() {
  const h = conv.handoff;
  const live = conv.live || {};
  const handing = handoffMode();
  el.handoff.hidden = handing === "none";
  el.handoff.dataset.state = live.state || (h ? "queued" : "");
  if (h) el.handoffPosition.textContent = h.position == null ? "" : t("positionValue")(h.position);
  el.handoffWaiting.hidden = handing !== "queued";
  el.handoffOperator.hidden = handing !== "live";
  el.handoffOperator.textContent = handing === "live" ? t("operatorServing")(live.operator || "") : "";
  el.handoffOffer.hidden = !(handing === "queued" && live.offer);
  el.returnButton.disabled = busy;
}

// ---------------------------------------------------------------- J1: waiting, live chat

function stopHandoffPolling() {
  if (handoffTimer !== null) clearTimeout(handoffTimer);
  handoffTimer = null;
}

function startHandoffPolling() {
  stopHandoffPolling();
  if (handoffMode() === "none") return;
  pollHandoff();
}

async function pollHandoff() {
  handoffTimer = null;
  if (handoffMode() === "none") return;
  const since = (conv.live && conv.live.since) || 0;
  let data = null;
  let status = 0;
  try {
    const res = await fetch(`${handoffUrl()}?since=${since}`, { headers: { Accept: "application/json" } });
    status = res.status;
    data = await res.json();
  } catch { data = null; }
  if (status === 200 && data) applyHandoffStatus(data);
  else if (status === 404) endHandoff(null);
  if (handoffMode() !== "none" && handoffTimer === null) {
    handoffTimer = setTimeout(pollHandoff, HANDOFF_POLL_MS);
  }
}

function applyHandoffStatus(data) {
  if (!conv.handoff) return;
  const live = conv.live || { since: 0 };
  live.state = data.state;
  live.operator = data.operator || null;
  live.offer = Boolean(data.offer);
  conv.live = live;
  if (data.position != null) conv.handoff.position = data.position;
  for (const m of data.messages || []) {
    if (typeof m.id !== "number" || m.id <= live.since) continue;
    live.since = m.id;
    if (m.sender === "operator") addBubble({ who: "operator", text: m.text, name: m.name || "" });
    else if (m.sender === "caller") addBubble({ who: "user", text: m.text });
  }
  if (data.ended || !["queued", "taken"].includes(data.state)) {
    endHandoff(data.state === "done" ? t("liveEnded") : null);
    return;
  }
  saveConversation();
  renderExpect();
  renderHandoff();
}

function endHandoff(note) {
  stopHandoffPolling();
  if (note) addBubble({ who: "bot", text: note });
  conv.ended = true;
  conv.expect = null;
  saveConversation();
  renderExpect();
  renderHandoff();
}

async function backToBot() {
  if (busy || handoffMode() !== "queued") return;
  stopHandoffPolling();
  setBusy(true);
  let res = null;
  let data = null;
  try {
    res = await fetch(handoffUrl("/return"), { method: "POST", headers: { Accept: "application/json" } });
    try { data = await res.json(); } catch { data = null; }
  } catch { res = null; }
  setBusy(false);
  if (res && res.ok && data && Array.isArray(data.messages)) {
    conv.handoff = null;
    conv.live = null;
    hideBanner();
    onAnswer(data);
    return;
  }
  if (res && res.status === 409 && data && data.handoff) {
    applyHandoffStatus(data.handoff); // an operator took it a moment earlier
  } else {
    showInputError(t("badRequest") + ((data && data.reason) || (res ? `HTTP ${res.status}` : "")));
  }
  if (handoffMode() !== "none") handoffTimer = setTimeout(pollHandoff, HANDOFF_POLL_MS);
}

async function sendLive(text) {
  showInputError("");
  let res = null;
  let data = null;
  try {
    res = await fetch(handoffUrl("/messages"), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ text }),
    });
    try { data = await res.json(); } catch { data = null; }
  } catch { res = null; }
  if (res && res.status === 201) {
    stopHandoffPolling();
    await pollHandoff(); // shows the line in order with the operator's
    return;
  }
  el.input.value = text;
  showInputError(t("badRequest") + ((data && data.reason) || (res ? `HTTP ${res.status}` : "")));
}

function showInputError(text) {
  el.inputError.textContent = text;
  el.inputError.hidden = !text;
}

function showBanner(reason) {
  el.bannerReason.textContent = reason || "";
  el.bannerReason.hidden = !reason;
  el.banner.hidden = false;
}

function hideBanner() {
  el.banner.hidden = true;
}

function setBusy(value) {
  busy = value;
  el.typing.hidden = !value;
  el.messages.setAttribute("aria-busy", String(value));
  renderExpect();
  if (value) scrollToEnd();
}

// ---------------------------------------------------------------- no-input timer

function stopNoInput() {
  if (noInputTimer !== null) clearTimeout(noInputTimer);
  noInputTimer = null;
}

function armNoInput() {
  stopNoInput();
  const e = conv.expect;
  if (conv.ended || busy || pending || !e || e.kind === "none") return;
  const ms = Number(e.no_input_timeout_ms) || 0;
  if (ms <= 0) return;
  noInputTimer = setTimeout(onNoInput, ms);
}

function onNoInput() {
  noInputTimer = null;
  if (busy || conv.ended) return;
  if (el.input.value.trim()) { armNoInput(); return; } // still typing a sentence
  if (digits) {
    const partial = digits;
    digits = "";
    send({ dtmf: partial }, partial);
    return;
  }
  send({ event: "no_input" }, null);
}

function userActivity() {
  if (noInputTimer !== null) armNoInput();
}

// ---------------------------------------------------------------- sending

async function send(payload, bubbleText) {
  if (busy || conv.ended) return;
  stopNoInput();
  showInputError("");
  if (bubbleText) addBubble({ who: "user", text: bubbleText });
  saveConversation();
  await post(payload);
}

async function post(payload) {
  pending = null;
  setBusy(true);
  let res;
  let data = null;
  try {
    res = await fetch(apiUrl(), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(payload),
    });
    try { data = await res.json(); } catch { data = null; }
  } catch {
    res = null; // network error
  }
  setBusy(false);

  if (res && res.ok && data && Array.isArray(data.messages)) {
    hideBanner();
    if (payload.event === "start") conv.started = true;
    onAnswer(data);
    return;
  }
  if (res && res.status === 400 && !(data && data.error === "conversation_ended")) {
    hideBanner();
    showInputError(t("badRequest") + ((data && data.reason) || res.statusText));
    armNoInput();
    return;
  }
  if (res && ((res.status === 409 && data && data.error === "turn_in_progress") || res.status === 429)) {
    // The bot is still answering this conversation's previous input (another tab?), or
    // it is busy with many conversations (429): nothing of this one was taken; keep it
    // for "Try again".
    pending = payload;
    showBanner(data.reason || "");
    return;
  }
  if (res && (res.status === 404 || res.status === 409 || (data && data.error === "conversation_ended"))) {
    // The bot no longer knows this conversation (e.g. it ended while the page was away).
    hideBanner();
    conv.ended = true;
    conv.expect = null;
    saveConversation();
    renderExpect();
    renderHandoff();
    return;
  }
  // 503, other server errors, network failure: keep the request for "Try again".
  pending = payload;
  showBanner((data && data.reason) || (res ? `HTTP ${res.status}` : ""));
}

function onAnswer(data) {
  for (const m of data.messages) {
    addBubble({ who: "bot", text: m.text || "", prompt: m.prompt, spec: m.spec, step: m.step });
  }
  conv.expect = data.expect || (data.messages.length ? data.messages[data.messages.length - 1].expect : null);
  conv.handoff = data.handoff || null;
  conv.live = conv.handoff ? { state: "queued", operator: null, offer: false, since: 0 } : null;
  // Handed to a person, the conversation goes on here (J1) even though the dialogue ended.
  conv.ended = Boolean(data.ended) && !conv.handoff;
  digits = "";
  keypadOpen = false;
  // Follow the dialogue when the user switched its language in the bot's menu (key 9).
  if (data.language && conv.dialogueLang && data.language !== conv.dialogueLang && I18N[data.language]) {
    setUiLang(data.language);
  }
  if (data.language) conv.dialogueLang = data.language;
  saveConversation();
  renderExpect();
  renderHandoff();
  scrollToEnd(); // the composer may have grown (keypad) and hidden the newest message
  armNoInput();
  if (conv.handoff) startHandoffPolling();
}

function choiceLabel(key) {
  const e = conv.expect;
  const c = e && Array.isArray(e.choices) ? e.choices.find((x) => x.key === key) : null;
  return c ? c.label : "";
}

function sendKey(key) {
  send({ dtmf: key }, t("keyPressed")(key, choiceLabel(key)));
}

function pressKey(key) {
  const mode = keypadMode();
  if (busy || mode === "off") return;
  if (mode === "single") { sendKey(key); return; }
  if (key === "#") {
    const number = digits;
    digits = "";
    send({ dtmf: `${number}#` }, `${number}#`);
    return;
  }
  const max = conv.expect && conv.expect.max_digits;
  if (max && digits.length >= max + 4) return; // a runaway entry; the bot validates length
  digits += key;
  renderExpect();
  userActivity();
}

function submitText() {
  const raw = el.input.value.trim();
  if (!raw || busy || conv.ended) return;
  if (raw.length > MAX_TEXT) { showInputError(t("tooLong")); return; }
  el.input.value = "";
  if (handoffMode() === "live") { sendLive(raw); return; }
  if (handoffMode() === "queued") return;
  const compact = raw.replace(/[\s-]/g, "");
  // More digits than any one number (16, with 0086): several numbers, read as text (issue 13).
  if (DTMF_RE.test(compact) && compact.replace(/[#*]/g, "").length <= 16) {
    // Typed keys are keys: the dialogue reads keypad input as dtmf, never as text.
    const kind = conv.expect && conv.expect.kind;
    const dtmf = kind === "digits" && !compact.endsWith("#") ? `${compact}#` : compact;
    const label = compact.length === 1 ? t("keyPressed")(compact, choiceLabel(compact)) : dtmf;
    send({ dtmf }, label);
    return;
  }
  send({ text: raw }, raw);
}

function start() {
  const payload = { event: "start", language: uiLang };
  const link = SURVEY_PATH.exec(location.pathname);
  if (link && !conv.surveyLinkUsed) {
    payload.survey_token = link[1]; // once: a restart on this page is the main menu
    conv.surveyLinkUsed = true;
  } else {
    const browser = browserId();
    if (browser) payload.browser = browser;
  }
  send(payload, null);
}

function restart() {
  stopNoInput();
  pending = null;
  hideBanner();
  showInputError("");
  stopHandoffPolling();
  conv = { ...freshConversation(), surveyLinkUsed: conv.surveyLinkUsed };
  digits = "";
  keypadOpen = false;
  el.messages.replaceChildren();
  saveConversation();
  renderExpect();
  renderHandoff();
  start();
  el.input.focus({ preventScroll: true });
}

// ---------------------------------------------------------------- wiring

el.keypad.addEventListener("click", (ev) => {
  const b = ev.target.closest("button.key");
  if (b && !b.disabled) pressKey(b.dataset.key);
});
el.backspace.addEventListener("click", () => {
  digits = digits.slice(0, -1);
  renderExpect();
  userActivity();
});
el.keypadToggle.addEventListener("click", () => {
  keypadOpen = el.keypad.hidden;
  renderExpect();
});
el.form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  submitText();
});
el.input.addEventListener("input", userActivity);
el.langToggle.addEventListener("click", () => setUiLang(uiLang === "zh" ? "en" : "zh"));
el.retry.addEventListener("click", () => {
  if (!pending || busy) return;
  post(pending);
});
el.restart.addEventListener("click", restart);
el.returnButton.addEventListener("click", backToBot);

// Physical keyboard: digits, * and # go to the keypad when the text box is not focused.
document.addEventListener("keydown", (ev) => {
  if (ev.target === el.input || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (/^[0-9*#]$/.test(ev.key) && keypadMode() !== "off") {
    ev.preventDefault();
    pressKey(ev.key);
  } else if (ev.key === "Backspace" && digits) {
    ev.preventDefault();
    digits = digits.slice(0, -1);
    renderExpect();
  } else if (ev.key === "Enter" && keypadMode() === "compose" && digits) {
    ev.preventDefault();
    pressKey("#");
  }
});

// The user left: tell the bot (a reload keeps the id and carries on from sessionStorage).
window.addEventListener("pagehide", (ev) => {
  if (ev.persisted || !conv.started || conv.ended) return;
  if (handoffMode() !== "none") {
    // Waiting or talking to an operator: a reload polls again at once and keeps the place.
    try { navigator.sendBeacon(handoffUrl("/leave"), new Blob(["{}"], { type: "application/json" })); } catch { /* nothing to do */ }
    return;
  }
  const body = new Blob([JSON.stringify({ event: "end" })], { type: "application/json" });
  try { navigator.sendBeacon(apiUrl(), body); } catch { /* nothing to do */ }
});

// ---------------------------------------------------------------- boot

function boot() {
  for (const entry of conv.transcript) addBubble(entry, { save: false });
  applyLabels();
  scrollToEnd();
  if (!conv.started && !conv.ended) {
    conv.transcript = [];
    el.messages.replaceChildren();
    start();
  } else {
    armNoInput();
    startHandoffPolling();
  }
  document.body.dataset.ready = "true";
}

boot();

// For tests and debugging only.
window.hotlineChat = {
  get conversationId() { return conv.id; },
  get expect() { return conv.expect; },
  get handoffMode() { return handoffMode(); },
};
