// The direct call's screen: the other person large, oneself small, the status line, and the
// controls (microphone, camera, choice of devices, hang up). It holds the local media; the
// connection itself is direct_call.js's. Nothing here talks to the server.
import { el } from "./page.js";

function toggle(labelOff, labelOn, onChange) {
  // aria-pressed = the device is off; the label says what a press does
  const button = el("button", { type: "button", class: "secondary", "aria-pressed": "false" }, labelOff);
  button.addEventListener("click", () => {
    const off = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", String(off));
    button.textContent = off ? labelOn : labelOff;
    onChange(!off);
  });
  return button;
}

async function play(video, soundButton) {
  try {
    await video.play();
  } catch (err) {
    // the browser refuses sound before the person touched the page: play muted, offer the sound
    video.muted = true;
    soundButton.hidden = false;
    try { await video.play(); } catch (again) { /* shown when a track arrives */ }
  }
}

/**
 * Mounts the call screen in `parentNode`. Callbacks: onTrackChange(kind, track) when a device is
 * switched (the new track replaces the old one in the connection), onHangUp(), onRejoin().
 * `displayName` (optional) is shown under the self view, on this page only: no name travels in
 * the direct call's signalling.
 */
export function mountView(parentNode, i18n, { onTrackChange, onHangUp, onRejoin, displayName = "" }) {
  const remote = el("video", { class: "direct-remote", autoplay: "", playsinline: "", "aria-label": i18n.remote_view });
  const local = el("video", { class: "direct-self", autoplay: "", playsinline: "", "aria-label": i18n.self_view });
  local.muted = true;
  const status = el("p", { class: "direct-status", role: "status", "aria-live": "polite" }, i18n.connecting);
  const sound = el("button", { type: "button", class: "primary direct-sound" }, i18n.sound_on);
  sound.hidden = true;
  sound.addEventListener("click", () => { remote.muted = false; sound.hidden = true; remote.play().catch(() => {}); });
  let stream = null;

  const mic = toggle(i18n.mic_off, i18n.mic_on, (on) => stream && stream.getAudioTracks().forEach((t) => { t.enabled = on; }));
  const cam = toggle(i18n.cam_off, i18n.cam_on, (on) => stream && stream.getVideoTracks().forEach((t) => { t.enabled = on; }));
  const cameraSelect = el("select", { id: "direct-camera" });
  const micSelect = el("select", { id: "direct-microphone" });
  const hangUp = el("button", { type: "button", class: "danger", id: "direct-hang-up" }, i18n.hang_up);
  const rejoin = el("button", { type: "button", class: "primary", id: "direct-rejoin" }, i18n.rejoin);
  rejoin.hidden = true;
  hangUp.addEventListener("click", () => { onHangUp(); });
  rejoin.addEventListener("click", () => { onRejoin(); });
  const controls = el("div", { class: "direct-controls" }, mic, cam,
    el("label", { for: "direct-camera" }, i18n.camera, cameraSelect),
    el("label", { for: "direct-microphone" }, i18n.microphone, micSelect), hangUp, rejoin);
  const selfName = el("p", { class: "direct-self-name", id: "direct-self-name" }, displayName);
  selfName.hidden = !displayName;
  const root = el("div", { class: "direct-call" },
    el("div", { class: "direct-videos" }, remote, local, sound), selfName, status, controls);
  parentNode.replaceChildren(root);

  async function switchDevice(kind, deviceId) {
    if (!stream || !deviceId) return;
    const constraints = kind === "video" ? { video: { deviceId: { exact: deviceId } } }
      : { audio: { deviceId: { exact: deviceId } } };
    const fresh = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks()[0];
    const old = kind === "video" ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
    if (old) { fresh.enabled = old.enabled; stream.removeTrack(old); old.stop(); }
    stream.addTrack(fresh);
    await onTrackChange(kind, fresh);
  }
  cameraSelect.addEventListener("change", () => switchDevice("video", cameraSelect.value).catch(() => {
    status.textContent = i18n.no_media;
  }));
  micSelect.addEventListener("change", () => switchDevice("audio", micSelect.value).catch(() => {
    status.textContent = i18n.no_media;
  }));

  async function listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    for (const [select, kind, track] of [[cameraSelect, "videoinput", stream.getVideoTracks()[0]],
      [micSelect, "audioinput", stream.getAudioTracks()[0]]]) {
      const current = track ? track.getSettings().deviceId : "";
      select.replaceChildren(...devices.filter((d) => d.kind === kind).map((d, i) =>
        el("option", { value: d.deviceId }, d.label || `${select === cameraSelect ? i18n.camera : i18n.microphone} ${i + 1}`)));
      if (current) select.value = current;
    }
  }

  return {
    // local media: the camera and microphone, or null when the browser refused them
    async openMedia() {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      } catch (err) {
        stream = null;
        status.textContent = i18n.no_media;
        return null;
      }
      for (const track of stream.getTracks()) {
        track.enabled = (track.kind === "audio" ? mic : cam).getAttribute("aria-pressed") !== "true";
      }
      local.srcObject = stream;
      listDevices().catch(() => {});
      return stream;
    },
    closeMedia() {
      if (stream) stream.getTracks().forEach((t) => t.stop());
      stream = null;
      local.srcObject = null;
      remote.srcObject = null;
    },
    showRemote(mediaStream) {
      if (remote.srcObject === mediaStream) return;
      remote.srcObject = mediaStream;
      play(remote, sound);
    },
    status(text) { status.textContent = text; },
    left(isLeft) {
      rejoin.hidden = !isLeft;
      hangUp.hidden = isLeft;
      if (isLeft) status.textContent = i18n.left;
    },
    remove() { root.remove(); },
  };
}
