/* The public API as the page calls it: JSON in and out, the token from sessionStorage, and
   each error as an ApiError whose code the page can explain (describe). */

import { ERROR_TEXT } from "./messages.js";
import { KEYS, LABELS, store } from "./page.js";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || (status === 0 ? "network" : "error");
    this.extra = (body && body.extra) || {};
    this.body = body || {};
  }
}

// What to do when the server no longer accepts the stored token (auth.js signs out).
let unauthorized = () => {};

export function onUnauthorized(handler) { unauthorized = handler; }

export function headers() {
  const h = { "Content-Type": "application/json", Accept: "application/json" };
  const token = store.getItem(KEYS.token);
  if (token) h.Authorization = `Token ${token}`;
  return h;
}

export async function request(method, path, body) {
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

export async function readJson(response) {
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && store.getItem(KEYS.token)) unauthorized();
    throw error;
  }
  return data;
}

export function describe(error) {
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
