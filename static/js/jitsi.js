// Embeds the Jitsi call with the IFrame API served by the configured Jitsi domain, and rejoins
// with a fresh token from our call-access endpoint when Jitsi refuses a reconnect.
//
// Jitsi checks a token when the client logs in; after a network blip its web client logs in
// again with the token it was given. Ours are valid until the consultation's maximum duration,
// so that normally works; if Jitsi refuses anyway (the host's clock, a changed app_secret, a
// token minted before an upgrade), the IFrame API emits `errorOccurred` with one of REFUSALS as
// `name`. The page then throws the old call away and asks the server again: a fresh token while
// the consultation is open (no new knock: the admission is remembered server-side), nothing
// once it has ended (403/404/409), and the old token is never handed to Jitsi again.
//
// Asking for access is tried again, as long as it takes, while no answer comes back (the phone
// is offline, the server restarts) or the server is busy (503): a patient admitted while
// offline enters the call when the network returns (static/js/retry.js).
import { HttpError, retrying, retryAfterOf } from "./retry.js";

// errorOccurred names (Jitsi's handbook, IFrame API events; lib-jitsi-meet's error names):
export const REFUSALS = new Set([
  "connection.passwordRequired", // Prosody refused the login with the token (e.g. "Not acceptable by exp")
  "conference.authenticationRequired", // the room requires an authenticated (token) user
  "conference.connectionError.notAllowed", // Prosody refused the room join (token_verification)
]);
const ENDED_STATUSES = [403, 404, 409]; // not admitted (any more), no such call, consultation ended
const MAX_REFUSALS = 3; // refused again and again within REFUSAL_WINDOW_MS: the host is misconfigured, stop
const REFUSAL_WINDOW_MS = 60_000;

class CallEnded extends Error {}

function loadExternalApi(url) {
  if (window.JitsiMeetExternalAPI) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = url;
    script.onload = () => resolve();
    script.onerror = () => { // unreachable for now (offline): a later attempt adds the script again
      script.remove();
      reject(new TypeError("external_api.js could not be loaded"));
    };
    document.head.appendChild(script);
  });
}

async function fetchAccess(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (ENDED_STATUSES.includes(response.status)) throw new CallEnded(`HTTP ${response.status}`);
  if (!response.ok) throw new HttpError(`HTTP ${response.status}`, response.status, retryAfterOf(response));
  return response.json();
}

function embed(access, parentNode, displayName) {
  return new window.JitsiMeetExternalAPI(access.domain, {
    roomName: access.room,
    jwt: access.jwt,
    parentNode,
    width: "100%",
    height: "100%",
    userInfo: { displayName },
    configOverwrite: {
      prejoinConfig: { enabled: false },
      disableDeepLinking: true,
      disableThirdPartyRequests: true,
    },
  });
}

/**
 * Joins the call whose access (domain, room, token) `accessUrl` hands out, and keeps it joined.
 * Callbacks: onOpen() when the call is embedded (again), onEnded() when the server hands out no
 * more access (the call is over for this page), onFailed(error) when it cannot be opened,
 * onWaiting(error) each time a passing fault (offline, server restarting or busy) delays it.
 * Returns { stop() }: leaves the call and never rejoins.
 */
export function joinCall({ accessUrl, parentNode, displayName = "", onOpen, onEnded, onFailed, onWaiting }) {
  let api = null;
  let stopped = false;
  let refusals = [];

  function leave() {
    if (api) api.dispose();
    api = null;
  }

  async function open() {
    let access;
    try {
      access = await retrying(async () => {
        const answer = await fetchAccess(accessUrl);
        if (!stopped) await loadExternalApi(answer.external_api_url);
        return answer;
      }, { stopped: () => stopped, onWait: (err) => onWaiting?.(err) });
    } catch (err) {
      if (err instanceof CallEnded) {
        stopped = true;
        if (onEnded) onEnded();
      } else if (onFailed && !stopped) {
        onFailed(err);
      }
      return;
    }
    if (stopped) return;
    const current = embed(access, parentNode, displayName); // `access` is not kept: a rejoin asks again
    api = current;
    current.addListener("errorOccurred", (error) => {
      if (api === current && error && REFUSALS.has(error.name)) rejoin();
    });
    if (onOpen) onOpen();
  }

  function rejoin() {
    if (stopped) return;
    leave();
    const now = Date.now();
    refusals = refusals.filter((at) => now - at < REFUSAL_WINDOW_MS).concat(now);
    if (refusals.length > MAX_REFUSALS) {
      if (onFailed) onFailed(new Error("Jitsi refused every fresh token"));
      return;
    }
    open();
  }

  open();
  return {
    stop() {
      stopped = true;
      leave();
    },
  };
}
