/* Sign in and out. The token lives in sessionStorage only. */

import { onUnauthorized, request } from "./api.js";
import { clearConversation } from "./conversation.js";
import { KEYS, clearError, el, say, state, store } from "./page.js";
import { loadSessions, showError } from "./sessions.js";

export function showSignedIn() {
  const signedIn = Boolean(store.getItem(KEYS.token));
  el.signin.hidden = signedIn;
  el.app.hidden = !signedIn;
  el.whoami.hidden = !signedIn;
  el.whoamiName.textContent = store.getItem(KEYS.user) || "";
}

el.signinForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError();
  if (!el.username.value || !el.password.value) {
    showError("Enter your username and password.");
    (el.username.value ? el.password : el.username).focus();
    return;
  }
  say("Signing in…");
  try {
    const data = await request("POST", "/api/auth/token", {
      username: el.username.value, password: el.password.value,
    });
    store.setItem(KEYS.token, data.token);
    store.setItem(KEYS.user, data.username);
    el.password.value = "";
    showSignedIn();
    say(`Signed in as ${data.username}.`);
    await loadSessions();
    el.newSession.focus();
  } catch (e) {
    say("");
    showError(e);
    el.password.focus();
  }
});

function signOut(announce = true) {
  store.removeItem(KEYS.token);
  store.removeItem(KEYS.session);
  state.session = null;
  clearConversation(); // the next one to sign in sees none of it
  showSignedIn();
  if (announce) say("Signed out.");
  el.username.focus();
}

el.signOut.addEventListener("click", () => signOut(true));

// A token the server no longer accepts: back to the sign-in form, quietly.
onUnauthorized(() => signOut(false));
