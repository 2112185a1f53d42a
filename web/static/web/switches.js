/* The session's switch history: the ledger, with what each switch was quoted and really cost. */

import { describe, request } from "./api.js";
import { ERROR_TEXT } from "./messages.js";
import { usd } from "./money.js";
import { el, label, state } from "./page.js";

export async function loadHistory() {
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
