/* What the API's codes and the quote's warnings mean for the person in front of the page. */

// What each API error code means for the person in front of the page.
export const ERROR_TEXT = {
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

export const WARNING_TEXT = {
  already_cold: "The current model's cache has already expired, so staying would not be cheap either.",
  below_minimum: "The conversation is too short to be cached by the new model; nothing is rebuilt.",
  flapping: "You switched back and forth recently: each switch rebuilds the cache again.",
  switch_back_warm: "The new model still has a warm cache from earlier, so only the newer part is rebuilt.",
  first_turn_free: "Nothing has been said yet, so switching now costs nothing extra.",
  tokenizer_estimate: "The new model counts tokens differently; the figures are an estimate.",
  tokenizer_measured: "The new model counts tokens differently; the conversation was counted on both models, so the figures are close.",
};

// Why the session's models the user's plan refuses are locked (availableModels[].lockedReason).
export const LOCK_TEXT = {
  subscription_required: "Needs a paid plan",
  model_not_in_plan: "Not in your plan",
  unknown_model: "Not offered here",
};
