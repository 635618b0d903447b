// "Tester mon équipement": camera, microphone, sound, then the network against our echo peer.
//
// The network test (the echo peer) is static/js/precall_network.js.
import { pageData } from "./page.js";
import { adviceFor, browserFamily, mediaProblem, verdictOf } from "./precall_logic.js";
import { networkTest } from "./precall_network.js";

const data = pageData();
const t = data.i18n;
const $ = (id) => document.getElementById(id);
const lang = document.documentElement.lang || "fr";
const VIDEO = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } };

const state = {
  stream: null,
  media: { audio: false, video: false, problem: null },
  audioContext: null,
  meterSource: null,
  meterFrame: 0,
  micHeard: false,
  heardTone: null,
  pc: null,
  running: false,
  lastResult: null,
};

// The return link and the language links keep ?back= and the fragment (on a patient's link,
// the consultation secret: it stays in the browser, never in a request).
function keepReturnPath() {
  const hash = window.location.hash;
  const back = $("back-link");
  if (back && hash) back.href = back.getAttribute("href") + hash;
  const params = new URLSearchParams(window.location.search);
  for (const link of document.querySelectorAll(".langs a[hreflang]")) {
    const query = new URLSearchParams(params);
    query.set("lang", link.getAttribute("hreflang"));
    link.href = `?${query}${hash}`;
  }
}

// ---- camera and microphone -------------------------------------------------------------

async function getMedia(cameraId, micId) {
  const audio = micId ? { deviceId: { exact: micId } } : true;
  const video = cameraId ? { ...VIDEO, deviceId: { exact: cameraId } } : VIDEO;
  try {
    return { stream: await navigator.mediaDevices.getUserMedia({ audio, video }), problem: null };
  } catch (error) {
    const problem = mediaProblem(error);
    if (problem === "denied") return { stream: null, problem };
    for (const constraints of [{ audio }, { video }]) { // one of the two may still work
      try {
        return { stream: await navigator.mediaDevices.getUserMedia(constraints), problem };
      } catch (ignored) { /* try the other */ }
    }
    return { stream: null, problem };
  }
}

function stopStream(stream) {
  if (stream) for (const track of stream.getTracks()) track.stop();
}

function currentDeviceId(kind) {
  const track = state.stream && state.stream.getTracks().find((tr) => tr.kind === kind);
  return track ? track.getSettings().deviceId : undefined;
}

function startMeter(stream) {
  cancelAnimationFrame(state.meterFrame);
  if (state.meterSource) state.meterSource.disconnect();
  state.meterSource = null;
  const meter = $("mic-level");
  meter.value = 0;
  const AudioCtx = window.AudioContext || window.webkitAudioContext;
  if (!stream.getAudioTracks().length || !AudioCtx) return;
  if (!state.audioContext) state.audioContext = new AudioCtx();
  if (state.audioContext.state === "suspended") state.audioContext.resume();
  const source = state.audioContext.createMediaStreamSource(stream);
  const analyser = state.audioContext.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  state.meterSource = source;
  const samples = new Float32Array(analyser.fftSize);
  let loudFrames = 0;
  if (!state.micHeard) $("mic-status").textContent = t.mic_silent;
  const tick = () => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const v of samples) sum += v * v;
    const level = Math.min(1, Math.sqrt(sum / samples.length) * 4);
    meter.value = level;
    if (level > 0.04) loudFrames += 1;
    if (!state.micHeard && loudFrames >= 5) {
      state.micHeard = true;
      $("mic-status").textContent = t.mic_heard;
    }
    state.meterFrame = requestAnimationFrame(tick);
  };
  tick();
}

function useStream(stream) {
  state.stream = stream;
  state.media.audio = stream.getAudioTracks().length > 0;
  state.media.video = stream.getVideoTracks().length > 0;
  $("self-view").srcObject = stream;
  startMeter(stream);
  if (state.pc) { // a switch during the network test: send the new tracks instead
    for (const sender of state.pc.getSenders()) {
      const track = sender.track && stream.getTracks().find((tr) => tr.kind === sender.track.kind);
      if (track) sender.replaceTrack(track);
    }
  }
}

function fillSelect(select, devices, current, fallback) {
  select.replaceChildren(...devices.map((device, i) => {
    const option = new Option(device.label || `${fallback} ${i + 1}`, device.deviceId);
    option.selected = device.deviceId === current;
    return option;
  }));
  select.disabled = devices.length === 0;
}

async function fillDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  fillSelect($("camera-select"), devices.filter((d) => d.kind === "videoinput"), currentDeviceId("video"),
    t.camera_default);
  fillSelect($("mic-select"), devices.filter((d) => d.kind === "audioinput"), currentDeviceId("audio"),
    t.mic_default);
  const outputs = devices.filter((d) => d.kind === "audiooutput" && d.deviceId);
  if ("setSinkId" in HTMLMediaElement.prototype && outputs.length > 1) {
    fillSelect($("speaker-select"), outputs, $("tone").sinkId || "default", t.speaker_default);
    $("speaker-field").hidden = false;
  }
}

function showPermissionHelp() {
  const family = browserFamily(navigator.userAgent, navigator.maxTouchPoints || 0);
  const list = $("help-list");
  const match = list.querySelector(`[data-browser="${family}"]`);
  if (match) {
    list.prepend(match);
    match.querySelector(".yours").hidden = false;
  }
  $("permission-help").hidden = false;
}

function showMediaProblem(problem) {
  const error = $("media-error");
  error.hidden = true;
  $("permission-help").hidden = true;
  if (!problem) return;
  if (problem === "denied") {
    showPermissionHelp();
    return;
  }
  error.textContent = t[problem === "not_found" ? "not_found" : problem === "not_readable" ? "not_readable" : "media_error"];
  error.hidden = false;
}

async function switchDevices() {
  const cameraId = $("camera-select").value;
  const micId = $("mic-select").value;
  stopStream(state.stream); // a phone cannot open two cameras at once
  const { stream, problem } = await getMedia(cameraId, micId);
  state.media.problem = problem;
  showMediaProblem(problem);
  if (stream) useStream(stream);
}

// ---- sound --------------------------------------------------------------------------------

async function playTone() {
  const tone = $("tone");
  tone.currentTime = 0;
  try {
    await tone.play();
  } catch (ignored) { /* the question still lets the patient say "no" */ }
  $("tone-question").hidden = false;
}

function answerTone(button) {
  state.heardTone = button.dataset.heard;
  for (const other of document.querySelectorAll("[data-heard]")) {
    other.setAttribute("aria-pressed", String(other === button));
  }
  $("tone-advice").hidden = state.heardTone !== "no";
  if (state.lastResult) showVerdict(state.lastResult, false);
}

// ---- verdict --------------------------------------------------------------------------------

function formatNumber(value, digits) {
  return new Intl.NumberFormat(lang, { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(value);
}

function showMeasures(m) {
  const list = $("measures");
  if (!m) {
    list.hidden = true;
    return;
  }
  const rows = [
    ["rtt", m.rttMs === null ? "—" : `${formatNumber(m.rttMs, 0)} ${t.ms}`],
    ["loss", `${formatNumber(m.lossPercent, 1)} %`],
    ["jitter", `${formatNumber(m.jitterMs, 0)} ${t.ms}`],
    ["upload", `${formatNumber(m.uploadKbps / 1000, 1)} ${t.mbps}`],
  ];
  list.replaceChildren(...rows.flatMap(([key, text]) => {
    const dt = document.createElement("dt");
    dt.textContent = t[key];
    const dd = document.createElement("dd");
    dd.textContent = text;
    dd.dataset.measure = key;
    return [dt, dd];
  }));
  list.hidden = false;
}

function showVerdict(result, focus = true) {
  const section = $("verdict");
  const thresholds = data.thresholds;
  const verdict = result.busy ? "busy"
    : verdictOf({ connected: result.connected, media: state.media, m: result.m }, thresholds);
  const advice = adviceFor({
    verdict, connected: result.connected && !result.refused, busy: result.busy, media: state.media,
    micHeard: state.micHeard, heardTone: state.heardTone, m: result.m,
  }, thresholds);
  if (result.refused) advice.push("advice_browser");
  section.dataset.verdict = verdict;
  if (result.m) {
    section.dataset.rttMs = String(result.m.rttMs);
    section.dataset.lossPercent = String(result.m.lossPercent);
    section.dataset.uploadKbps = String(result.m.uploadKbps);
  }
  $("verdict-title").textContent = verdict === "busy" ? t.busy : t[`verdict_${verdict}`];
  $("verdict-text").textContent = verdict === "busy" ? "" : t[`text_${verdict}`];
  $("advice").replaceChildren(...[...new Set(advice)].map((key) => {
    const item = document.createElement("li");
    item.textContent = t[key];
    item.dataset.advice = key;
    return item;
  }));
  showMeasures(result.m);
  section.hidden = false;
  if (focus) section.focus();
}

// ---- the whole test -----------------------------------------------------------------------

async function runTest() {
  if (state.running) return;
  state.running = true;
  $("start").disabled = true;
  $("restart").disabled = true;
  $("verdict").hidden = true;
  state.lastResult = null;
  try {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.RTCPeerConnection) {
      $("start-status").textContent = t.unsupported;
      state.media.problem = "error";
      state.lastResult = { connected: false, refused: true, busy: false, m: null };
      showVerdict(state.lastResult);
      return;
    }
    const live = state.stream && state.stream.getTracks().some((track) => track.readyState === "live");
    if (!live) {
      $("start-status").textContent = t.starting;
      const { stream, problem } = await getMedia();
      state.media = { audio: false, video: false, problem };
      showMediaProblem(problem);
      if (stream) {
        useStream(stream);
        await fillDevices();
      }
      $("start-status").textContent = "";
    }
    state.lastResult = await networkTest({
      data, t, stream: state.stream, status: $("network-status"), progress: $("network-progress"),
      onPeer: (pc) => { state.pc = pc; },
    });
    showVerdict(state.lastResult);
  } finally {
    state.running = false;
    $("start").disabled = false;
    $("restart").disabled = false;
  }
}

keepReturnPath();
$("start").addEventListener("click", runTest);
$("restart").addEventListener("click", runTest);
$("play-tone").addEventListener("click", playTone);
for (const button of document.querySelectorAll("[data-heard]")) {
  button.addEventListener("click", () => answerTone(button));
}
$("camera-select").addEventListener("change", switchDevices);
$("mic-select").addEventListener("change", switchDevices);
$("speaker-select").addEventListener("change", (event) => {
  const tone = $("tone");
  if (tone.setSinkId) tone.setSinkId(event.target.value).catch(() => {});
});
navigator.mediaDevices?.addEventListener?.("devicechange", () => { if (state.stream) fillDevices(); });
window.addEventListener("pagehide", () => {
  if (state.pc) state.pc.close();
  stopStream(state.stream);
});
