// The network part of the pre-call test: one RTCPeerConnection to the aiortc echo peer behind
// precallOffer. The page sends its camera and microphone for test_seconds, pings on a data
// channel every 250 ms (which also keeps the session alive), and reads RTT, loss, jitter and
// upload from getStats. Only STUN/TURN servers from the page data are used: none by default.
import { measure, summarize, withStartBitrate } from "./precall_logic.js";

const PING_MS = 250;
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function iceGathered(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs); // send the candidates we have
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function connected(pc, timeoutMs) {
  return new Promise((resolve) => {
    let timer;
    const check = () => {
      const s = pc.connectionState || pc.iceConnectionState;
      if (s === "connected" || s === "completed") finish(true);
      else if (s === "failed" || s === "closed") finish(false);
    };
    const finish = (ok) => {
      clearTimeout(timer);
      pc.removeEventListener("connectionstatechange", check);
      pc.removeEventListener("iceconnectionstatechange", check);
      resolve(ok);
    };
    timer = setTimeout(() => finish(false), timeoutMs);
    pc.addEventListener("connectionstatechange", check);
    pc.addEventListener("iceconnectionstatechange", check);
    check();
  });
}

// `data`: the page data (offer_url, ice_servers, thresholds, test_seconds); `stream`: the camera
// and microphone to send (or null); `status` and `progress`: the elements that show the test;
// `onPeer(pc)`: told the connection while it is open (a device switch replaces its tracks), then null.
export async function networkTest({ data, t, stream, status, progress, onPeer = () => {} }) {
  const result = { connected: false, busy: false, refused: false, m: null };
  let pc = null;
  let pings = 0;
  try {
    status.textContent = t.connecting;
    pc = new RTCPeerConnection({ iceServers: data.ice_servers });
    onPeer(pc);
    const channel = pc.createDataChannel("precall");
    if (stream) for (const track of stream.getTracks()) pc.addTrack(track, stream);
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc, 5000);
    const response = await fetch(data.offer_url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer" }),
      credentials: "omit",
    });
    if (response.status === 400) {
      result.refused = true;
      status.textContent = t.server_error;
      return result;
    }
    if (!response.ok) {
      result.busy = true;
      status.textContent = response.status === 503 || response.status === 429 ? t.busy : t.server_error;
      return result;
    }
    const answer = await response.json();
    const startKbps = Math.round(data.thresholds.good.upload_kbps * 1.25);
    await pc.setRemoteDescription({ type: answer.type, sdp: withStartBitrate(answer.sdp, startKbps) });
    result.connected = await connected(pc, 10000);
    if (!result.connected) {
      status.textContent = "";
      return result;
    }
    status.textContent = t.measuring;
    const rtts = [];
    let seq = 0;
    channel.addEventListener("message", (event) => {
      try {
        const echo = JSON.parse(event.data);
        if (typeof echo.t === "number") rtts.push(performance.now() - echo.t);
      } catch (ignored) { /* not one of our pings */ }
    });
    pings = setInterval(() => {
      if (channel.readyState === "open") channel.send(JSON.stringify({ seq: seq++, t: performance.now() }));
    }, PING_MS);
    progress.value = 0;
    progress.hidden = false;
    const samples = [];
    for (let second = 1; second <= data.test_seconds; second += 1) {
      await wait(1000);
      samples.push(summarize(await pc.getStats(), performance.now()));
      progress.value = (100 * second) / data.test_seconds;
    }
    result.m = measure(samples, rtts);
    status.textContent = "";
  } catch (error) {
    result.busy = !result.connected; // our server or the network hiccuped: try again
    status.textContent = t.server_error;
  } finally {
    clearInterval(pings);
    if (pc) pc.close();
    onPeer(null);
    progress.hidden = true;
  }
  return result;
}
