/* The session's conversation: its stored turns (GET /api/chat/sessions/{key}/turns), shown
   oldest to newest when the session opens, earlier pages on request, each with how it ended and
   what it cost; and the session's running cost, read again when a turn ends. */

import { describe, request } from "./api.js";
import { ERROR_TEXT } from "./messages.js";
import { usd } from "./money.js";
import { el, showAlert, state } from "./page.js";
import { loadSessionHealth, renderSpend } from "./spend.js";

const PAGE_SIZE = 20;
// A turn's billed usage comes from the sandbox's relay a moment after the turn ends: while a
// shown turn is priced provisionally, the costs are read again every BILLED_POLL_MS, at most
// BILLED_POLLS times.
const BILLED_POLL_MS = 1500;
const BILLED_POLLS = 5;

const ENDINGS = {
  end_turn: "Done",
  cancelled: "Stopped",
  disconnected: "Left before the end",
  error: "Failed",
  max_tokens: "Cut off at the length limit",
  refusal: "Refused",
};

let shown = 0; // which opening of a conversation is current: a slow answer for an earlier one is dropped
let earlier = null; // the page of earlier turns, while there is one
let polling = null;

const turnsPath = (key) => `/api/chat/sessions/${encodeURIComponent(key)}/turns?pageSize=${PAGE_SIZE}`;

function message(role, text) {
  const item = document.createElement("div");
  item.className = `msg ${role}`;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role === "user" ? "You" : role === "agent" ? "Agent" : "Note";
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  item.append(who, body);
  return item;
}

// A message said now, at the end of the conversation; its text element.
export function addMessage(role, text) {
  const item = message(role, text);
  el.log.append(item);
  el.log.scrollTop = el.log.scrollHeight;
  return item.querySelector(".text");
}

function turnNote(turn) {
  let how = ENDINGS[turn.stopReason] || turn.stopReason.replace(/_/g, " ");
  if (turn.errorCode) how += ` (${ERROR_TEXT[turn.errorCode] || turn.errorCode})`;
  if (turn.costUsd === null) return `${how} · cost not known yet`;
  return `${how} · ${usd(turn.costUsd)}${turn.costSource === "provisional" ? " (provisional)" : ""}`;
}

function setNote(item, turn) {
  let note = item.querySelector(".turn-note");
  if (!note) {
    note = document.createElement("p");
    note.className = "turn-note";
    item.append(note);
  }
  item.dataset.turnId = turn.id;
  note.textContent = turnNote(turn);
}

function turnItems(turn) {
  const answer = message("agent", turn.textTruncated ? `${turn.text}…` : turn.text);
  if (turn.stopReason === "error") answer.classList.add("failed");
  setNote(answer, turn);
  return [message("user", turn.prompt), answer];
}

// A page of turns (newest first) above what is shown.
function prependPage(page) {
  el.log.prepend(...page.turns.slice().reverse().flatMap(turnItems));
  earlier = page.next ? new URL(page.next, window.location.href) : null;
  el.earlierTurns.hidden = !earlier;
}

export function clearConversation() {
  shown += 1;
  clearTimeout(polling);
  earlier = null;
  el.earlierTurns.hidden = true;
  el.log.replaceChildren();
  renderSpend(null);
}

// The conversation of the session just opened (or resumed), and its running cost.
export async function loadConversation() {
  clearConversation();
  const s = state.session;
  if (!s) return;
  const opening = shown;
  let page, health;
  try {
    [page, health] = await Promise.all([
      request("GET", turnsPath(s.sessionKey)),
      loadSessionHealth(s.sessionKey).catch(() => null),
    ]);
  } catch (e) {
    return; // the conversation is not shown; chatting works as before
  }
  if (opening !== shown) return;
  // Before anything said meanwhile.
  prependPage(page);
  el.log.scrollTop = el.log.scrollHeight;
  applyCosts(s.sessionKey, page, health, BILLED_POLLS);
}

el.earlierTurns.addEventListener("click", async () => {
  if (!earlier) return;
  const opening = shown;
  const below = el.log.scrollHeight - el.log.scrollTop; // keeps the reader's place
  el.earlierTurns.disabled = true;
  try {
    const page = await request("GET", earlier.pathname + earlier.search);
    if (opening !== shown) return;
    prependPage(page);
    el.log.scrollTop = el.log.scrollHeight - below;
  } catch (e) {
    showAlert(describe(e));
  } finally {
    el.earlierTurns.disabled = false;
  }
});

// The turn shown live (its agent's text element) has ended: it gets its note, and the costs
// are read again.
export function turnEnded(answer) {
  if (!state.session) return;
  answer.parentElement.dataset.awaiting = "true";
  refreshCosts(state.session.sessionKey, BILLED_POLLS);
}

async function refreshCosts(key, polls) {
  let page, health;
  try {
    [page, health] = await Promise.all([request("GET", turnsPath(key)), loadSessionHealth(key)]);
  } catch (e) {
    return; // the figures stay as they were
  }
  applyCosts(key, page, health, polls);
}

function applyCosts(key, page, health, polls) {
  if (!state.session || state.session.sessionKey !== key) return;
  const [newest] = page.turns;
  const awaiting = el.log.querySelector(".msg.agent[data-awaiting]");
  if (awaiting && newest && !el.log.querySelector(`[data-turn-id="${newest.id}"]`)) {
    delete awaiting.dataset.awaiting;
    setNote(awaiting, newest);
  }
  for (const turn of page.turns) {
    const item = el.log.querySelector(`.msg.agent[data-turn-id="${turn.id}"]`);
    if (item) setNote(item, turn);
  }
  const unbilled = page.turns.some((turn) => turn.costSource === "provisional");
  renderSpend(health, unbilled);
  clearTimeout(polling);
  if (unbilled && polls > 0) polling = setTimeout(() => refreshCosts(key, polls - 1), BILLED_POLL_MS);
}
