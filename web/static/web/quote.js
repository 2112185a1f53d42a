/* The model picker's switch: choosing a model asks for a quote, the dialog shows it, and
   nothing changes until the user confirms. */

import { ApiError, describe, request } from "./api.js";
import { lockOf } from "./locks.js";
import { ERROR_TEXT, WARNING_TEXT } from "./messages.js";
import { usd } from "./money.js";
import { LABELS, clearError, el, label, say, state } from "./page.js";
import { markGone, renderSession, renderSessionInfo, sessionOption, showError } from "./sessions.js";
import { loadHistory } from "./switches.js";

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
