/* What every part of the picker page shares: its elements, its state, where the token is kept
   (sessionStorage only), the models' labels, and the status and alert lines. */

export const store = window.sessionStorage;
export const KEYS = { token: "mk0r.token", user: "mk0r.username", session: "mk0r.sessionKey" };
const PICKER = JSON.parse(document.getElementById("picker-data").textContent);
export const LABELS = Object.fromEntries(PICKER.map((m) => [m.modelId, m.label]));

const $ = (id) => document.getElementById(id);
export const el = {
  status: $("status"), alert: $("alert"), signin: $("signin"), signinForm: $("signin-form"),
  username: $("username"), password: $("password"), app: $("app"), whoami: $("whoami"),
  whoamiName: $("whoami-name"), signOut: $("sign-out"), sessionSelect: $("session-select"),
  newSession: $("new-session"), sessionInfo: $("session-info"), sessionSpend: $("session-spend"), picker: $("picker"),
  currentModel: $("current-model"), log: $("log"), earlierTurns: $("earlier-turns"), chatForm: $("chat-form"),
  prompt: $("prompt"),
  send: $("send"), stop: $("stop"), history: $("history"), historyEmpty: $("history-empty"),
  resumeSession: $("resume-session"), closeSession: $("close-session"), gone: $("gone"),
  goneNewSession: $("gone-new-session"),
  dialog: $("quote-dialog"), quoteTitle: $("quote-title"), quoteNotice: $("quote-notice"),
  quoteSummary: $("quote-summary"), quoteDetails: $("quote-details"), quoteWarnings: $("quote-warnings"),
  quoteError: $("quote-error"), quoteCancel: $("quote-cancel"), quoteConfirm: $("quote-confirm"),
};

export const state = { session: null, pendingQuote: null, busy: false };

export function label(modelId) { return LABELS[modelId] ? `${LABELS[modelId]} (${modelId})` : modelId; }

// --- Messages to the user ------------------------------------------------

export function say(text) { el.status.textContent = text || ""; }

export function showAlert(text) {
  el.alert.textContent = text;
  el.alert.hidden = false;
}

export function clearError() { el.alert.hidden = true; el.alert.textContent = ""; }
