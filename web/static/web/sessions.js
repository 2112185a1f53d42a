/* The user's sessions: the drop-down, start, open, close and resume, and the session panel
   (its model, status and plan locks). */

import { ApiError, describe, request } from "./api.js";
import { clearConversation, loadConversation } from "./conversation.js";
import { renderPlanLocks } from "./locks.js";
import { KEYS, LABELS, clearError, el, label, say, showAlert, state, store } from "./page.js";
import { loadHistory } from "./switches.js";

export function showError(error) {
  // A stopped sandbox has its own notice, with the way out next to it.
  if (error instanceof ApiError && error.code === "sandbox_gone") { markGone(); return; }
  showAlert(typeof error === "string" ? error : describe(error));
}

// Short enough for a phone's drop-down: the model's name and when the session started; the
// option's title has the full date.
const SHORT_DATE = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };

export function sessionOption(s) {
  const started = new Date(s.createdAt);
  // A session whose sandbox stopped is listed too, so that it can be closed.
  const stopped = s.status === "sandbox_gone" ? " · stopped" : "";
  const option = new Option(
    `${LABELS[s.modelId] || s.modelId} · ${started.toLocaleString(undefined, SHORT_DATE)}${stopped}`, s.sessionKey);
  option.title = `${label(s.modelId)}, started ${started.toLocaleString()}`;
  return option;
}

export async function loadSessions() {
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
  renderSession();
  if (changed) loadConversation();
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

export function renderSession() {
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

export function renderSessionInfo() {
  const s = state.session;
  el.sessionInfo.textContent = s
    ? `Session ${s.sessionKey.slice(0, 8)}… · ${s.status === "sandbox_gone" ? "sandbox stopped" : s.status} · cache lifetime ${s.cacheTtl}`
    : "Start a new session or open one.";
}

export function markGone() {
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
    clearConversation();
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
    loadConversation();
    say(result.resumed
      ? `Resumed: the agent has a new session on ${label(result.modelId)}; `
        + "it does not remember the conversation above."
      : "The agent still has this session: nothing to resume.");
  } catch (e) {
    say("");
    showError(e);
    renderSession();
  }
});
