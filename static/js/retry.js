// Trying again what a passing fault refused: no answer at all (the phone went offline, a proxy
// dropped the connection, the server is restarting) or a server that asks to be asked later
// (503 + Retry-After: its database is busy). Every other answer is final for the caller.
//
// The pause grows (1 s, 2 s, 4 s… at most MAX_PAUSE_MS, with some jitter so that many pages do
// not come back at the same instant), follows Retry-After when the server sends it, and ends
// early when the browser says it is online again.

const FIRST_PAUSE_MS = 1000;
const MAX_PAUSE_MS = 10_000;

// An answer that is not 2xx: `status`, and `retryAfter` in seconds when the server sent one.
export class HttpError extends Error {
  constructor(message, status, retryAfter = null) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

export function retryAfterOf(response) {
  const seconds = Number(response.headers.get("Retry-After"));
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

/** True when trying again later may succeed: no answer, or a server that is restarting
 * (502/504 from the proxy in front of it) or busy (503). */
export function isPassing(err) {
  if (err && typeof err.status === "number") return [502, 503, 504].includes(err.status);
  return err instanceof TypeError; // fetch's "Failed to fetch": no answer reached the page
}

/** Resolves after `ms`, or as soon as the browser comes back online. */
export function pause(ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      window.removeEventListener("online", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    window.addEventListener("online", done);
  });
}

/**
 * Runs `task()` until it resolves or fails for good. A passing fault (isPassing) is tried again
 * after a pause; `onWait(err)` is told each time (to say so on the page). Gives up with the last
 * error once `until` (a Date.now() value) would be passed, or when `stopped()` turns true.
 */
export async function retrying(task, { onWait = () => {}, until = Infinity, stopped = () => false,
  isTransient = isPassing } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await task(attempt);
    } catch (err) {
      if (!isTransient(err) || stopped()) throw err;
      const grown = Math.min(MAX_PAUSE_MS, FIRST_PAUSE_MS * 2 ** attempt) * (0.75 + Math.random() / 2);
      const wait = err && err.retryAfter != null ? Math.max(err.retryAfter * 1000, 250) : grown;
      if (Date.now() + wait > until) throw err;
      onWait(err);
      await pause(wait);
      if (stopped()) throw err;
    }
  }
}
