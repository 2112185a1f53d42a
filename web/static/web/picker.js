/* The picker page: sign in, sessions, streamed chat, quoted model switches, switch history.
   Plain JavaScript against the public API; the token lives in sessionStorage only. */
"use strict";

(function () {
  const store = window.sessionStorage;
  const KEYS = { token: "mk0r.token", user: "mk0r.username", session: "mk0r.sessionKey" };
  const PICKER = JSON.parse(document.getElementById("picker-data").textContent);
  const LABELS = Object.fromEntries(PICKER.map((m) => [m.modelId, m.label]));

  // What each API error code means for the person in front of the page.
  const ERROR_TEXT = {
    invalid_credentials: "Wrong username or password.",
    not_authenticated: "Please sign in.",
    authentication_failed: "Your sign-in has expired. Please sign in again.",
    invalid_request: "The request was not understood",
    unknown_model: "That model does not exist.",
    model_rejected: "The agent does not offer that model.",
    subscription_required: "This model needs a paid subscription. Upgrade your plan to use it.",
    model_not_in_plan: "Your plan does not include this model.",
    session_not_found: "This session no longer exists.",
    quote_not_found: "The quote was not found. Ask for a new one.",
    agent_session_lost: "The agent lost this session. Resume it to go on.",
    sandbox_gone: "This session's sandbox has stopped: start a new session.",
    session_closed: "This session is closed. Start a new session.",
    confirmation_required: "This switch has a cost: please confirm the quote.",
    quote_stale: "The price changed since the quote was made. Check the new quote and confirm again.",
    quote_used: "That quote was already used. Ask for a new one.",
    quote_mismatch: "The quote was made for a different switch.",
    quote_expired: "The quote expired. Ask for a new one.",
    payload_too_large: "The message is too long.",
    agent_unreachable: "The agent could not be reached. Try again in a moment.",
    agent_error: "The agent failed to carry out the request.",
    agent_timeout: "The agent did not answer in time. Try again.",
    agent_starting: "The agent is starting. Try again in a moment.",
    sandbox_unavailable: "No sandbox could be started right now. Try again in a moment.",
    throttled: "Too many requests. Wait a moment and try again.",
    network: "The server could not be reached. Check your connection.",
  };

  const WARNING_TEXT = {
    already_cold: "The current model's cache has already expired, so staying would not be cheap either.",
    below_minimum: "The conversation is too short to be cached by the new model; nothing is rebuilt.",
    flapping: "You switched back and forth recently: each switch rebuilds the cache again.",
    switch_back_warm: "The new model still has a warm cache from earlier, so only the newer part is rebuilt.",
    first_turn_free: "Nothing has been said yet, so switching now costs nothing extra.",
    tokenizer_estimate: "The new model counts tokens differently; the figures are an estimate.",
    tokenizer_measured: "The new model counts tokens differently; the conversation was counted on both models, so the figures are close.",
  };

  const $ = (id) => document.getElementById(id);
  const el = {
    status: $("status"), alert: $("alert"), signin: $("signin"), signinForm: $("signin-form"),
    username: $("username"), password: $("password"), app: $("app"), whoami: $("whoami"),
    whoamiName: $("whoami-name"), signOut: $("sign-out"), sessionSelect: $("session-select"),
    newSession: $("new-session"), sessionInfo: $("session-info"), picker: $("picker"),
    currentModel: $("current-model"), log: $("log"), chatForm: $("chat-form"), prompt: $("prompt"),
    send: $("send"), stop: $("stop"), history: $("history"), historyEmpty: $("history-empty"),
    resumeSession: $("resume-session"), closeSession: $("close-session"), gone: $("gone"),
    goneNewSession: $("gone-new-session"),
    dialog: $("quote-dialog"), quoteTitle: $("quote-title"), quoteNotice: $("quote-notice"),
    quoteSummary: $("quote-summary"), quoteDetails: $("quote-details"), quoteWarnings: $("quote-warnings"),
    quoteError: $("quote-error"), quoteCancel: $("quote-cancel"), quoteConfirm: $("quote-confirm"),
  };

  const state = { session: null, pendingQuote: null, busy: false };

  // --- API ------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.code = (body && body.code) || (status === 0 ? "network" : "error");
      this.extra = (body && body.extra) || {};
      this.body = body || {};
    }
  }

  function headers() {
    const h = { "Content-Type": "application/json", Accept: "application/json" };
    const token = store.getItem(KEYS.token);
    if (token) h.Authorization = `Token ${token}`;
    return h;
  }

  async function request(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
      });
    } catch (e) {
      throw new ApiError(0, null);
    }
    return readJson(response);
  }

  async function readJson(response) {
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const error = new ApiError(response.status, data);
      if (response.status === 401 && store.getItem(KEYS.token)) signOut(false);
      throw error;
    }
    return data;
  }

  function describe(error) {
    if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
    const text = ERROR_TEXT[error.code];
    if (error.code === "invalid_request") return `${text}: ${error.message}`;
    if (error.code === "model_not_in_plan" && error.extra.allowedModels) {
      const allowed = error.extra.allowedModels.map((m) => LABELS[m]).filter(Boolean).join(", ");
      return `${text} It includes: ${allowed}.`;
    }
    if (error.code === "subscription_required" && error.extra.status && error.extra.status !== "active") {
      return `${text} (Your subscription is ${error.extra.status}.)`;
    }
    return text || error.message;
  }

  // --- Messages to the user ------------------------------------------------

  function say(text) { el.status.textContent = text || ""; }

  function showError(error) {
    // A stopped sandbox has its own notice, with the way out next to it.
    if (error instanceof ApiError && error.code === "sandbox_gone") { markGone(); return; }
    el.alert.textContent = typeof error === "string" ? error : describe(error);
    el.alert.hidden = false;
  }

  function clearError() { el.alert.hidden = true; el.alert.textContent = ""; }

  // --- Sign in --------------------------------------------------------------

  function showSignedIn() {
    const signedIn = Boolean(store.getItem(KEYS.token));
    el.signin.hidden = signedIn;
    el.app.hidden = !signedIn;
    el.whoami.hidden = !signedIn;
    el.whoamiName.textContent = store.getItem(KEYS.user) || "";
  }

  el.signinForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    if (!el.username.value || !el.password.value) {
      showError("Enter your username and password.");
      (el.username.value ? el.password : el.username).focus();
      return;
    }
    say("Signing in…");
    try {
      const data = await request("POST", "/api/auth/token", {
        username: el.username.value, password: el.password.value,
      });
      store.setItem(KEYS.token, data.token);
      store.setItem(KEYS.user, data.username);
      el.password.value = "";
      showSignedIn();
      say(`Signed in as ${data.username}.`);
      await loadSessions();
      el.newSession.focus();
    } catch (e) {
      say("");
      showError(e);
      el.password.focus();
    }
  });

  function signOut(announce = true) {
    store.removeItem(KEYS.token);
    store.removeItem(KEYS.session);
    state.session = null;
    showSignedIn();
    if (announce) say("Signed out.");
    el.username.focus();
  }

  el.signOut.addEventListener("click", () => signOut(true));

  // --- Sessions -------------------------------------------------------------

  function label(modelId) { return LABELS[modelId] ? `${LABELS[modelId]} (${modelId})` : modelId; }

  // Short enough for a phone's drop-down: the model's name and when the session started; the
  // option's title has the full date.
  const SHORT_DATE = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };

  function sessionOption(s) {
    const started = new Date(s.createdAt);
    // A session whose sandbox stopped is listed too, so that it can be closed.
    const stopped = s.status === "sandbox_gone" ? " · stopped" : "";
    const option = new Option(
      `${LABELS[s.modelId] || s.modelId} · ${started.toLocaleString(undefined, SHORT_DATE)}${stopped}`, s.sessionKey);
    option.title = `${label(s.modelId)}, started ${started.toLocaleString()}`;
    return option;
  }

  async function loadSessions() {
    try {
      const data = await request("GET", "/api/chat/sessions");
      const open = data.sessions.filter((s) => s.status === "ready" || s.status === "sandbox_gone");
      el.sessionSelect.replaceChildren();
      const none = new Option(open.length ? "Choose a session…" : "No open sessions", "");
      el.sessionSelect.append(none);
      for (const s of open) {
        el.sessionSelect.append(sessionOption(s));
      }
      const wanted = store.getItem(KEYS.session);
      const current = open.find((s) => s.sessionKey === wanted);
      if (current) selectSession(current);
      else renderSession();
    } catch (e) {
      showError(e);
    }
  }

  el.sessionSelect.addEventListener("change", async () => {
    clearError();
    const key = el.sessionSelect.value;
    if (!key) { state.session = null; renderSession(); return; }
    try {
      selectSession(await request("GET", `/api/chat/sessions/${encodeURIComponent(key)}`));
    } catch (e) { showError(e); }
  });

  el.newSession.addEventListener("click", async () => {
    clearError();
    el.newSession.disabled = true;
    say("Starting a session: a sandbox and the agent…");
    try {
      const s = await request("POST", "/api/chat/sessions");
      el.sessionSelect.append(sessionOption(s));
      el.log.replaceChildren();
      selectSession(s);
      say(`Session started on ${label(s.modelId)}.`);
      el.prompt.focus();
    } catch (e) {
      say("");
      showError(e);
    } finally {
      el.newSession.disabled = false;
    }
  });

  function selectSession(session) {
    const changed = !state.session || state.session.sessionKey !== session.sessionKey;
    state.session = session;
    store.setItem(KEYS.session, session.sessionKey);
    el.sessionSelect.value = session.sessionKey;
    if (changed) el.log.replaceChildren();
    renderSession();
    loadHistory();
  }

  // What a picker id runs in this session, as its agent said (model options or billed usage);
  // the page's own hint until the agent has said anything.
  function modelHint(session, modelId, fallback) {
    const entry = session && session.modelMap && session.modelMap[modelId];
    if (!entry) return fallback;
    const [family, ...version] = entry.apiModel.replace(/^claude-/, "").split("-");
    return `${family.charAt(0).toUpperCase()}${family.slice(1)} ${version.join(".")}`.trim();
  }

  function renderSession() {
    const s = state.session;
    const ready = Boolean(s && s.status === "ready");
    el.picker.disabled = !ready || state.busy;
    el.send.disabled = !ready || state.busy;
    el.resumeSession.disabled = !ready || state.busy;
    el.closeSession.disabled = !s || state.busy;
    el.gone.hidden = !(s && s.status === "sandbox_gone");
    el.currentModel.textContent = s ? (LABELS[s.modelId] || s.modelId) : "–";
    renderSessionInfo();
    for (const input of el.picker.querySelectorAll("input[name=model]")) {
      input.checked = Boolean(s) && input.value === s.modelId;
      const hint = input.parentElement.querySelector(".choice-hint");
      if (hint) hint.textContent = modelHint(s, input.value, hint.dataset.hint);
    }
    renderPlanLocks(s);
    if (!s) { el.history.hidden = true; el.historyEmpty.hidden = false; el.historyEmpty.textContent = "No switches yet."; }
  }

  function renderSessionInfo() {
    const s = state.session;
    el.sessionInfo.textContent = s
      ? `Session ${s.sessionKey.slice(0, 8)}… · ${s.status === "sandbox_gone" ? "sandbox stopped" : s.status} · cache lifetime ${s.cacheTtl}`
      : "Start a new session or open one.";
  }

  function markGone() {
    if (!state.session) return;
    state.session = { ...state.session, status: "sandbox_gone" };
    const option = [...el.sessionSelect.options].find((o) => o.value === state.session.sessionKey);
    if (option) option.text = sessionOption(state.session).text;
    clearError();
    renderSession();
  }

  el.goneNewSession.addEventListener("click", () => el.newSession.click());

  el.closeSession.addEventListener("click", async () => {
    const s = state.session;
    if (!s) return;
    clearError();
    el.closeSession.disabled = true;
    say("Closing the session…");
    try {
      await request("DELETE", `/api/chat/sessions/${encodeURIComponent(s.sessionKey)}`);
      const option = [...el.sessionSelect.options].find((o) => o.value === s.sessionKey);
      if (option) option.remove();
      store.removeItem(KEYS.session);
      state.session = null;
      el.sessionSelect.value = "";
      el.log.replaceChildren();
      renderSession();
      say("Session closed: its sandbox is stopped.");
      el.newSession.focus();
    } catch (e) {
      say("");
      showError(e);
      renderSession();
    }
  });

  el.resumeSession.addEventListener("click", async () => {
    const s = state.session;
    if (!s) return;
    clearError();
    el.resumeSession.disabled = true;
    say("Checking the agent's session…");
    try {
      const result = await request("POST", `/api/chat/sessions/${encodeURIComponent(s.sessionKey)}/resume`, {});
      state.session = { ...state.session, ...result };
      renderSession();
      say(result.resumed
        ? `Resumed: the agent has a new session on ${label(result.modelId)}; the conversation starts afresh.`
        : "The agent still has this session: nothing to resume.");
    } catch (e) {
      say("");
      showError(e);
      renderSession();
    }
  });

  // --- Chat (server-sent events over fetch) ---------------------------------

  function addMessage(role, text) {
    const item = document.createElement("div");
    item.className = `msg ${role}`;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role === "user" ? "You" : role === "agent" ? "Agent" : "Note";
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    item.append(who, body);
    el.log.append(item);
    el.log.scrollTop = el.log.scrollHeight;
    return body;
  }

  function setBusy(busy) {
    state.busy = busy;
    el.chatForm.setAttribute("aria-busy", String(busy));
    renderSession();
  }

  function parseFrame(frame) {
    let event = "message";
    const data = [];
    for (const line of frame.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (!data.length) return null;
    try { return { event, data: JSON.parse(data.join("\n")) }; } catch (e) { return null; }
  }

  function updateText(update) {
    const u = update && update.update;
    if (!u) return "";
    if (u.sessionUpdate === "agent_message_chunk" && u.content && u.content.type === "text") return u.content.text;
    return "";
  }

  async function sendPrompt() {
    const prompt = el.prompt.value;
    if (!state.session || state.busy) return;
    if (!prompt.trim()) { showError("Type a message first."); el.prompt.focus(); return; }
    clearError();
    setBusy(true);
    // Stop is offered from the moment the prompt is sent: the agent may be a while to its first word.
    el.stop.hidden = false;
    el.stop.disabled = false;
    say("Sending…");
    let response;
    try {
      response = await fetch("/api/chat", {
        // JSON first: errors before the turn starts are JSON answers (and DRF negotiates on it).
        method: "POST", headers: { ...headers(), Accept: "application/json, text/event-stream" }, credentials: "omit",
        body: JSON.stringify({ sessionKey: state.session.sessionKey, prompt }),
      });
    } catch (e) {
      // The prompt is still in the box: nothing was lost.
      showError(new ApiError(0, null));
      endTurn();
      say("");
      return;
    }
    if (!response.ok) {
      try { await readJson(response); } catch (e) { showError(e); }
      endTurn();
      say("");
      return;
    }
    // The turn has started: the prompt moves from the box into the conversation.
    el.prompt.value = "";
    addMessage("user", prompt);
    const answer = addMessage("agent", "");
    answer.parentElement.setAttribute("aria-busy", "true");
    say("The agent is answering…");
    let ending = null;
    try {
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = parseFrame(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (!frame) continue;
          if (frame.event === "update") answer.textContent += updateText(frame.data);
          else if (frame.event === "done" || frame.event === "error") ending = frame;
          el.log.scrollTop = el.log.scrollHeight;
        }
      }
    } catch (e) {
      ending = { event: "error", data: { code: "network", message: "The stream broke off." } };
    }
    answer.parentElement.removeAttribute("aria-busy");
    if (ending && ending.event === "done") {
      if (!answer.textContent) answer.textContent = "(no text)";
      const usage = ending.data.usage;
      const how = ending.data.stopReason === "cancelled" ? "Turn stopped" : "Turn done";
      say(usage ? `${how}: ${usage.inputTokens + usage.cachedReadTokens + usage.cachedWriteTokens} input tokens, `
        + `${usage.cachedReadTokens} read from cache.` : `${how}.`);
    } else {
      const error = new ApiError(502, (ending && ending.data) || { code: "agent_error", message: "The turn ended without an answer." });
      showError(error);
      answer.parentElement.classList.add("failed");
      // Give the prompt back so it can be sent again.
      if (!el.prompt.value) el.prompt.value = prompt;
      say("");
    }
    endTurn();
    el.prompt.focus();
    loadHistory();
  }

  function endTurn() {
    el.stop.hidden = true;
    setBusy(false);
  }

  // The turn ends on its own stream, with stopReason "cancelled", and what it used is billed.
  async function stopTurn() {
    if (!state.session || !state.busy) return;
    el.stop.disabled = true;
    say("Stopping…");
    try {
      await request("POST", "/api/chat/cancel", { sessionKey: state.session.sessionKey });
    } catch (e) {
      showError(e);
      el.stop.disabled = false;
    }
  }

  el.chatForm.addEventListener("submit", (event) => { event.preventDefault(); sendPrompt(); });
  el.stop.addEventListener("click", stopTurn);
  el.prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); sendPrompt(); }
  });

  // --- Model picker: plan locks ----------------------------------------------

  // Why the session's models the user's plan refuses are locked (availableModels[].lockedReason).
  const LOCK_TEXT = {
    subscription_required: "Needs a paid plan",
    model_not_in_plan: "Not in your plan",
    unknown_model: "Not offered here",
  };

  function lockOf(modelId) {
    const models = (state.session && state.session.availableModels) || [];
    const found = models.find((m) => m.modelId === modelId);
    return found && found.allowed === false ? found.lockedReason || "model_not_in_plan" : null;
  }

  function renderPlanLocks(session) {
    for (const input of el.picker.querySelectorAll("input[name=model]")) {
      const choice = input.closest(".choice");
      const reason = session ? lockOf(input.value) : null;
      let note = choice.querySelector(".choice-lock");
      if (!reason) {
        choice.classList.remove("locked");
        input.removeAttribute("aria-disabled");
        if (note) note.remove();
        continue;
      }
      // Still focusable and clickable (aria-disabled, not disabled): choosing it says why.
      choice.classList.add("locked");
      input.setAttribute("aria-disabled", "true");
      if (!note) {
        note = document.createElement("span");
        note.className = "choice-lock";
        choice.append(note);
      }
      note.textContent = `Locked: ${LOCK_TEXT[reason] || reason}`;
      note.title = ERROR_TEXT[reason] || "";
    }
  }

  // --- Model picker: quote, confirm, switch ---------------------------------

  // The one rule for every amount on the page (the admin uses the same, billing/money.py):
  // $1 or more in cents ($12.35); below a dollar to four places ($0.0608, $0.0034), so that
  // amounts side by side have the same precision and a small tax never reads as $0.00;
  // nonzero amounts below $0.0001 show as <$0.0001; zero is $0.00.
  function usd(value) {
    if (value === null || value === undefined) return "–";
    const n = Number(value);
    const abs = Math.abs(n);
    const sign = n < 0 ? "−" : "";
    if (abs === 0) return "$0.00";
    if (abs < 0.00005) return `${sign}<$0.0001`;
    const small = abs.toFixed(4);
    if (Number(small) < 1) return `${sign}$${small}`;
    return `${sign}$${abs.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  }

  function seconds(ms) { return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`; }

  function detail(term, value) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    el.quoteDetails.append(dt, dd);
  }

  function renderQuote(quote) {
    state.pendingQuote = quote;
    el.quoteTitle.textContent = `Switch from ${LABELS[quote.fromModelId] || quote.fromModelId} to ${LABELS[quote.toModelId] || quote.toModelId}?`;
    const tax = Number(quote.taxUsd);
    const rebuild = quote.breakdown ? Number(quote.breakdown.cacheRebuildUsd) : 0;
    el.quoteSummary.textContent = tax > 0
      ? `The next turn costs ${usd(quote.taxUsd)} more than staying` + (rebuild > 0
        ? ", once, to rebuild the prompt cache for the new model."
        : ": the new model's rates are higher.")
      : tax < 0 ? `The next turn costs ${usd(-tax)} less than staying.` : "The switch costs nothing extra on the next turn.";
    el.quoteDetails.replaceChildren();
    detail("Switch tax", usd(quote.taxUsd));
    if (quote.breakdown) {
      detail("of which cache rebuild", usd(quote.breakdown.cacheRebuildUsd));
      detail("of which price difference", usd(quote.breakdown.rateDeltaUsd));
    }
    if (quote.nextTurn) detail("Next turn", `${usd(quote.nextTurn.switchUsd)} after switching, ${usd(quote.nextTurn.stayUsd)} staying`);
    if (quote.capPercent !== null && quote.capPercent !== undefined) {
      detail("Weekly plan cap", `${Number(quote.capPercent).toFixed(2)}% of your weekly cap (estimate)`);
    }
    detail("First-token delay", quote.ttftPenaltyMs ? `about ${seconds(quote.ttftPenaltyMs)} longer on the next turn` : "no extra delay");
    const perTurn = Number(quote.steadyStateDeltaUsdPerTurn);
    if (quote.breakEvenTurns === 0) {
      detail("Break-even", "nothing to pay back");
    } else if (quote.breakEvenTurns !== null && quote.breakEvenTurns !== undefined) {
      detail("Break-even", `the switch pays for itself after ${quote.breakEvenTurns} turn${quote.breakEvenTurns === 1 ? "" : "s"}`);
    } else if (perTurn > 0) {
      detail("Break-even", `never: each later turn also costs ${usd(perTurn)} more`);
    } else {
      detail("Break-even", "not applicable");
    }
    if (quote.prefixTokens) {
      const { to, toLow, toHigh } = quote.prefixTokens;
      const range = toLow !== toHigh ? ` (${toLow.toLocaleString()} to ${toHigh.toLocaleString()})` : "";
      detail("Conversation so far", `${to.toLocaleString()} tokens on the new model${range}`);
    }
    if (quote.ttl) {
      detail("Cache lifetime", quote.ttl);
      // The quote is the freshest word on the session's TTL (it follows the agent's cache writes).
      if (state.session && state.session.cacheTtl !== quote.ttl) {
        state.session.cacheTtl = quote.ttl;
        renderSessionInfo();
      }
    }
    if (quote.expiresAt) detail("Quote valid until", new Date(quote.expiresAt).toLocaleTimeString());
    el.quoteWarnings.replaceChildren();
    for (const w of quote.warnings || []) {
      const li = document.createElement("li");
      li.textContent = WARNING_TEXT[w] || w.replace(/_/g, " ");
      el.quoteWarnings.append(li);
    }
    el.quoteWarnings.hidden = !(quote.warnings || []).length;
  }

  function openDialog(quote, notice) {
    el.quoteError.hidden = true;
    el.quoteNotice.textContent = notice || "";
    el.quoteNotice.hidden = !notice;
    renderQuote(quote);
    el.quoteConfirm.disabled = false;
    if (!el.dialog.open) el.dialog.showModal();
    el.quoteConfirm.focus();
  }

  function closeDialog() {
    if (el.dialog.open) el.dialog.close();
    state.pendingQuote = null;
    renderSession(); // puts the radio back on the current model
  }

  el.picker.addEventListener("change", async (event) => {
    const input = event.target;
    if (input.name !== "model" || !state.session) return;
    const modelId = input.value;
    if (modelId === state.session.modelId) return;
    clearError();
    const locked = lockOf(modelId);
    if (locked) {
      // The plan refuses it: say why, ask the server nothing.
      showError(new ApiError(0, { code: locked, message: ERROR_TEXT[locked] }));
      renderSession();
      input.focus();
      return;
    }
    say(`Getting a quote for ${label(modelId)}…`);
    el.picker.disabled = true;
    try {
      const data = await request("POST", "/api/chat/model/quote", { sessionKey: state.session.sessionKey, modelId });
      say("");
      openDialog(data.quote);
    } catch (e) {
      say("");
      showError(e);
      renderSession();
      input.focus();
    } finally {
      el.picker.disabled = !state.session || state.busy;
    }
  });

  el.quoteCancel.addEventListener("click", () => { closeDialog(); say("Switch cancelled."); });
  el.dialog.addEventListener("cancel", () => { state.pendingQuote = null; setTimeout(renderSession); say("Switch cancelled."); });

  el.quoteConfirm.addEventListener("click", async () => {
    const quote = state.pendingQuote;
    if (!quote || !state.session) return;
    el.quoteConfirm.disabled = true;
    el.quoteError.hidden = true;
    try {
      const body = { sessionKey: state.session.sessionKey, modelId: quote.toModelId };
      if (quote.id) body.quoteId = quote.id;
      const result = await request("POST", "/api/chat/model", body);
      state.session = { ...state.session, modelId: result.modelId };
      for (const option of el.sessionSelect.options) {
        if (option.value !== result.sessionKey) continue;
        const fresh = sessionOption(state.session); // its text and title; the option stays selected
        option.text = fresh.text;
        option.title = fresh.title;
      }
      closeDialog();
      say(`Switched to ${label(result.modelId)}.`);
      loadHistory();
      el.prompt.focus();
    } catch (e) {
      if (e instanceof ApiError && e.code === "sandbox_gone") {
        closeDialog();
        markGone();
        return;
      }
      if (e instanceof ApiError && (e.code === "quote_stale" || e.code === "confirmation_required") && e.body.quote) {
        openDialog(e.body.quote, describe(e));
      } else {
        el.quoteError.textContent = describe(e);
        el.quoteError.hidden = false;
        el.quoteConfirm.disabled = ["quote_used", "quote_expired", "quote_not_found", "quote_mismatch"].includes(e.code);
        loadHistory();
      }
    }
  });

  // --- Switch history -------------------------------------------------------

  async function loadHistory() {
    const s = state.session;
    if (!s) return;
    let data;
    try {
      data = await request("GET", `/api/chat/sessions/${encodeURIComponent(s.sessionKey)}/switches`);
    } catch (e) {
      el.history.hidden = true;
      el.historyEmpty.hidden = false;
      el.historyEmpty.textContent = e.status === 404 && e.code !== "session_not_found"
        ? "The switch history is not available on this server yet." : `History unavailable: ${describe(e)}`;
      return;
    }
    if (!state.session || state.session.sessionKey !== s.sessionKey) return;
    const rows = (data && data.switches) || [];
    const tbody = el.history.tBodies[0];
    tbody.replaceChildren();
    for (const r of rows) {
      const tr = document.createElement("tr");
      const when = r.createdAt ? new Date(r.createdAt).toLocaleTimeString() : "";
      const outcome = r.errorCode ? `${r.outcome} (${ERROR_TEXT[r.errorCode] || r.errorCode})` : r.outcome;
      const actual = r.actualTaxUsd === null || r.actualTaxUsd === undefined ? "pending" : usd(r.actualTaxUsd);
      for (const text of [when, label(r.fromModelId), label(r.toModelId), outcome, usd(r.quotedTaxUsd), actual]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      tr.classList.add(`outcome-${r.outcome}`);
      tbody.append(tr);
    }
    el.history.hidden = rows.length === 0;
    el.historyEmpty.hidden = rows.length > 0;
    el.historyEmpty.textContent = "No switches yet.";
  }

  // --- Start ----------------------------------------------------------------

  showSignedIn();
  if (store.getItem(KEYS.token)) loadSessions();
})();
