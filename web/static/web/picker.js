/* The picker page: sign in, sessions, streamed chat, quoted model switches, switch history.
   Plain JavaScript modules against the public API, one per concern; this one starts the page. */

import { showSignedIn } from "./auth.js";
import "./chat.js";
import { KEYS, store } from "./page.js";
import "./quote.js";
import { loadSessions } from "./sessions.js";

showSignedIn();
if (store.getItem(KEYS.token)) loadSessions();
