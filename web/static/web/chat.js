/* The chat: a prompt sent, the turn's server-sent events read over fetch as they come, and
   the Stop button while it runs. */

import { ApiError, headers, readJson, request } from "./api.js";
import { addMessage, turnEnded } from "./conversation.js";
import { clearError, el, say, state } from "./page.js";
import { renderSession, showError } from "./sessions.js";
import { loadHistory } from "./switches.js";

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
  turnEnded(answer);
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

