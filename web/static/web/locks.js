/* The model picker's plan locks: models the user's plan refuses are shown locked, with why. */

import { ERROR_TEXT, LOCK_TEXT } from "./messages.js";
import { el, state } from "./page.js";

export function lockOf(modelId) {
  const models = (state.session && state.session.availableModels) || [];
  const found = models.find((m) => m.modelId === modelId);
  return found && found.allowed === false ? found.lockedReason || "model_not_in_plan" : null;
}

export function renderPlanLocks(session) {
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

