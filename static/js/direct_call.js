// The direct call, used when the server has no Jitsi: a one-to-one WebRTC call between the
// clinician's and the patient's browsers. Media go peer to peer (DTLS-SRTP); our server only
// relays the signalling (teleconsult/direct_call.py): this page POSTs its messages to
// `signal_url` and reads the other page's on the event stream `events_url`.
//
// The clinician's page makes every offer, one RTCPeerConnection per "session" (a random id);
// the patient's page answers, and starts a fresh connection when an offer names a new session.
// - the other page (re)opens its stream (a reload, a network change, its stream fell silent: the
//   signal stream is page.js's listen(), with its watchdog): the server says
//   {type: "peer", present: true} and the clinician's page starts a new session: no new knock;
// - ICE disconnected for a few seconds, or failed: the clinician's page restarts ICE (the
//   patient's page asks it to, {kind: "restart"});
// - still not connected after ICE_FAILED_MS: the page says that the host must configure TURN.
// Like jitsi.js's joinCall: the ICE servers come from `access_url` once admitted (403/404/409 =
// over for this page: onEnded), and it returns { stop() }.
import { mountView } from "./direct_call_view.js";
import { listen as openStream } from "./page.js";

const ENDED_STATUSES = [403, 404, 409]; // not admitted (any more), no such call, consultation ended
const DISCONNECTED_RESTART_MS = 4000; // ICE "disconnected" this long: restart ICE (Wi-Fi to 4G)
const ICE_FAILED_MS = 20000; // negotiating and still not connected: say what the host must configure

class CallEnded extends Error {}

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function fetchAccess(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (ENDED_STATUSES.includes(response.status)) throw new CallEnded(`HTTP ${response.status}`);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

export function joinDirectCall(config, { parentNode, displayName = "", onOpen, onEnded, onFailed }) {
  const { i18n } = config;
  let stopped = false; // left (hung up, or stopped): no stream, no connection
  let ended = false; // over for this page: nothing more happens
  let access = null;
  let stream = null;
  let pc = null;
  let session = null;
  let source = null;
  let inbox = Promise.resolve(); // received messages, handled one after the other
  let outbox = Promise.resolve(); // sent messages, in order (an offer before its candidates)
  let disconnectedTimer = null;
  let failedTimer = null;

  const view = mountView(parentNode, i18n, {
    displayName,
    onTrackChange: async (kind, track) => {
      if (!pc) return;
      const sender = pc.getSenders().find((s) => s.track && s.track.kind === kind)
        || pc.getSenders().find((s) => !s.track);
      if (sender) await sender.replaceTrack(track);
    },
    onHangUp: () => { leave(); view.left(true); },
    onRejoin: () => { view.left(false); start(); },
  });
  const offerer = () => access && access.role === "clinician";

  function send(message) {
    outbox = outbox.then(async () => {
      if (stopped || !source) return;
      const response = await fetch(config.signal_url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": config.csrf },
        body: JSON.stringify(message),
        credentials: "same-origin",
      });
      if (response.status === 409) finish(); // the consultation has ended
    }).catch(() => { /* the stream's reconnection renegotiates */ });
  }

  function clearTimers() {
    clearTimeout(disconnectedTimer);
    clearTimeout(failedTimer);
    disconnectedTimer = null;
    failedTimer = null;
  }

  function restartIce(conn) {
    if (pc !== conn) return;
    if (offerer()) conn.restartIce();
    else send({ kind: "restart", session });
  }

  function watch(conn) {
    if (pc !== conn) return;
    const state = conn.iceConnectionState;
    if (state === "connected" || state === "completed") {
      clearTimers();
      view.status(i18n.connected);
      return;
    }
    if (state === "disconnected" && !disconnectedTimer) {
      view.status(i18n.reconnecting);
      disconnectedTimer = setTimeout(() => { disconnectedTimer = null; restartIce(conn); }, DISCONNECTED_RESTART_MS);
    }
    if (state === "failed") {
      view.status(i18n.reconnecting);
      restartIce(conn);
    }
    if (["checking", "disconnected", "failed"].includes(state) && !failedTimer) {
      failedTimer = setTimeout(() => { if (pc === conn) view.status(i18n.ice_failed); }, ICE_FAILED_MS);
    }
  }

  function connect(id) {
    if (pc) pc.close();
    clearTimers();
    session = id;
    const conn = new RTCPeerConnection({ iceServers: access.ice_servers });
    pc = conn;
    if (stream) {
      for (const track of stream.getTracks()) conn.addTrack(track, stream);
    } else if (offerer()) { // no camera or microphone here: still receive the other side
      conn.addTransceiver("audio", { direction: "recvonly" });
      conn.addTransceiver("video", { direction: "recvonly" });
    }
    conn.ontrack = (event) => {
      if (pc === conn) view.showRemote(event.streams[0] || new MediaStream([event.track]));
    };
    conn.onicecandidate = ({ candidate }) => {
      if (candidate && pc === conn) send({ kind: "candidate", session: id, candidate: candidate.toJSON() });
    };
    conn.oniceconnectionstatechange = () => watch(conn);
    if (offerer()) {
      conn.onnegotiationneeded = async () => {
        if (pc !== conn) return;
        await conn.setLocalDescription();
        const { type, sdp } = conn.localDescription;
        send({ kind: "description", session: id, description: { type, sdp } });
      };
    }
    view.status(i18n.connecting);
  }

  async function onSignal(message) {
    if (offerer()) {
      if (message.session !== session || !pc) return; // an answer to a connection thrown away
      if (message.kind === "description" && message.description.type === "answer") {
        if (pc.signalingState === "have-local-offer") await pc.setRemoteDescription(message.description);
      } else if (message.kind === "candidate") {
        await pc.addIceCandidate(message.candidate).catch(() => {});
      } else if (message.kind === "restart") {
        pc.restartIce();
      }
      return;
    }
    if (message.kind === "description" && message.description.type === "offer") {
      if (message.session !== session || !pc) connect(message.session);
      await pc.setRemoteDescription(message.description);
      await pc.setLocalDescription();
      const { type, sdp } = pc.localDescription;
      send({ kind: "description", session, description: { type, sdp } });
    } else if (message.kind === "candidate" && message.session === session && pc) {
      await pc.addIceCandidate(message.candidate).catch(() => {});
    }
  }

  function onEvent(event) {
    if (event.type === "ended") { finish(); return; }
    let task = null;
    if (event.type === "signal") task = () => onSignal(event.message);
    const present = event.type === "hello" ? event.peer : event.type === "peer" ? event.present : null;
    if (present === false && !(pc && ["connected", "completed"].includes(pc.iceConnectionState))) {
      view.status(i18n.waiting_peer);
    }
    // the other page came (back): a fresh connection, offered by the clinician's page
    if (present === true && offerer()) task = () => connect(randomId());
    if (event.type === "resync") task = () => (offerer() ? connect(randomId()) : send({ kind: "restart", session }));
    if (task) inbox = inbox.then(task).catch(() => view.status(i18n.reconnecting));
  }

  // The signal stream is page.js's: reopened after a refusal, when the browser comes back online,
  // and when it fell silent (a network cut Chromium did not notice). A new stream resynchronises as
  // a reload does: the server tells the other page, and the clinician's page offers a new session.
  // Each drop also asks whether the call is still on: a stream refused because it is over ends it.
  function listen() {
    source = openStream(config.events_url, onEvent, { onDown: stillOn });
  }

  let asking = false;
  async function stillOn() {
    if (asking || stopped) return;
    asking = true;
    try {
      await fetchAccess(config.access_url);
    } catch (err) {
      if (err instanceof CallEnded) finish(); // otherwise unreachable for now: the stream retries
    } finally {
      asking = false;
    }
  }

  async function start() {
    if (ended) return;
    stopped = false;
    try {
      access = await fetchAccess(config.access_url);
    } catch (err) {
      if (err instanceof CallEnded) finish();
      else if (onFailed) onFailed(err);
      return;
    }
    if (stopped) return;
    if (onOpen) onOpen();
    stream = await view.openMedia();
    if (stopped) { view.closeMedia(); return; }
    listen();
  }

  function leave() {
    stopped = true;
    if (source) source.close();
    source = null;
    clearTimers();
    if (pc) pc.close();
    pc = null;
    session = null;
    view.closeMedia();
    stream = null;
  }

  function finish() {
    if (ended) return;
    ended = true;
    leave();
    view.remove();
    if (onEnded) onEnded();
  }

  start();
  return {
    stop() {
      leave();
      view.remove();
    },
  };
}
