/* The session panel's running cost: what the session's requests have cost so far, as billed, and
   its prompt-cache hit rate, both from GET /api/chat/sessions/{key}/cache-health. */

import { request } from "./api.js";
import { usd } from "./money.js";
import { el } from "./page.js";

export function loadSessionHealth(key) {
  return request("GET", `/api/chat/sessions/${encodeURIComponent(key)}/cache-health`);
}

// `unbilled`: whether a turn's usage is still on its way (its cost is not in the figure yet).
export function renderSpend(health, unbilled) {
  if (!health) {
    el.sessionSpend.hidden = true;
    el.sessionSpend.textContent = "";
    return;
  }
  const rate = health.hitRate === null || health.hitRate === undefined ? "–" : `${(health.hitRate * 100).toFixed(1)}%`;
  const pending = unbilled ? " (the last turn is not billed yet)" : "";
  el.sessionSpend.textContent = `Cost so far ${usd(health.costUsd)}${pending} · cache hit rate ${rate}`;
  el.sessionSpend.hidden = false;
}
