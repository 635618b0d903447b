// Pre-call test: the pure parts (no DOM), so that they read as the rules they are.

// Which browser's help to show first, from the user agent. On iPhone and iPad every browser
// is Safari underneath and asks for the camera the Safari way.
export function browserFamily(userAgent, maxTouchPoints = 0) {
  const ua = userAgent || "";
  const ios = /iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && maxTouchPoints > 1);
  if (ios) return "safari";
  if (/Firefox\/|FxiOS/.test(ua)) return "firefox";
  if (/Chrome\/|Chromium\/|CriOS|Edg\/|SamsungBrowser/.test(ua)) return "chrome";
  if (/Safari\//.test(ua)) return "safari";
  return "chrome";
}

// What getUserMedia's failure means for the patient.
export function mediaProblem(error) {
  const name = error && error.name;
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") return "denied";
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") return "not_found";
  if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") return "not_readable";
  return "error";
}

// The totals of one getStats() report that the verdict needs.
export function summarize(report, now) {
  const s = {
    time: now, bytesSent: 0, packetsSent: 0, remoteLost: 0, packetsReceived: 0, packetsLost: 0,
    jitter: 0, remoteRtt: null, pairRtt: null, availableOutgoing: null,
  };
  let selectedPair = null;
  report.forEach((stat) => {
    if (stat.type === "transport" && stat.selectedCandidatePairId) selectedPair = stat.selectedCandidatePairId;
  });
  report.forEach((stat) => {
    switch (stat.type) {
      case "outbound-rtp":
        s.bytesSent += stat.bytesSent || 0;
        s.packetsSent += stat.packetsSent || 0;
        break;
      case "remote-inbound-rtp":
        s.remoteLost += Math.max(0, stat.packetsLost || 0);
        s.jitter = Math.max(s.jitter, stat.jitter || 0);
        if (typeof stat.roundTripTime === "number") s.remoteRtt = Math.max(s.remoteRtt || 0, stat.roundTripTime);
        break;
      case "inbound-rtp":
        s.packetsReceived += stat.packetsReceived || 0;
        s.packetsLost += Math.max(0, stat.packetsLost || 0);
        s.jitter = Math.max(s.jitter, stat.jitter || 0);
        break;
      case "candidate-pair":
        if (selectedPair ? stat.id === selectedPair : (stat.nominated && stat.state === "succeeded")) {
          if (typeof stat.currentRoundTripTime === "number") s.pairRtt = stat.currentRoundTripTime;
          if (typeof stat.availableOutgoingBitrate === "number") s.availableOutgoing = stat.availableOutgoingBitrate;
        }
        break;
      default:
        break;
    }
  });
  return s;
}

// Chrome and its kin start sending video at 300 kbit/s and climb by about 8 % a second: an
// 8-second test could never see 1 Mbit/s. The answer's x-google-start-bitrate lets them start
// near the "good" rate instead; a path that cannot carry it then shows delay and loss, and the
// sender backs off. Other browsers ignore the parameter.
export function withStartBitrate(sdp, kbps) {
  const lines = sdp.split("\r\n");
  const video = new Set();
  for (const line of lines) {
    const match = /^a=rtpmap:(\d+) (VP8|VP9|H264|AV1)\//i.exec(line);
    if (match) video.add(match[1]);
  }
  const withFmtp = new Set();
  const out = lines.map((line) => {
    const match = /^a=fmtp:(\d+) (.*)$/.exec(line);
    if (match && video.has(match[1])) {
      withFmtp.add(match[1]);
      return `${line};x-google-start-bitrate=${kbps}`;
    }
    return line;
  });
  return out.flatMap((line) => {
    const match = /^a=rtpmap:(\d+) /.exec(line);
    return match && video.has(match[1]) && !withFmtp.has(match[1])
      ? [line, `a=fmtp:${match[1]} x-google-start-bitrate=${kbps}`] : [line];
  }).join("\r\n");
}

function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function percent(part, whole) {
  return whole > 0 ? (100 * Math.max(0, part)) / whole : 0;
}

// Measurements from the stats samples (one a second) and the data-channel ping RTTs (ms).
// Rates and loss are taken over the second half of the test, once the sender has settled on
// what the path carries (the first seconds may overshoot, see withStartBitrate).
// Upload: what was really sent, or the browser's own estimate of what the path takes, whichever
// is higher (a still picture sends little although the network could take more).
// Loss: the worse of upstream (what the echo peer reported in RTCP) and downstream.
export function measure(samples, pingRtts) {
  const last = samples[samples.length - 1];
  const mid = samples[Math.floor((samples.length - 1) / 2)];
  let sentKbps = 0;
  let upLoss = 0;
  let downLoss = 0;
  if (last && mid && last.time > mid.time) {
    sentKbps = ((last.bytesSent - mid.bytesSent) * 8) / (last.time - mid.time); // bytes/ms*8 = kbit/s
    upLoss = percent(last.remoteLost - mid.remoteLost, last.packetsSent - mid.packetsSent);
    const lost = last.packetsLost - mid.packetsLost;
    downLoss = percent(lost, last.packetsReceived - mid.packetsReceived + Math.max(0, lost));
  } else if (last) {
    upLoss = percent(last.remoteLost, last.packetsSent);
    downLoss = percent(last.packetsLost, last.packetsReceived + last.packetsLost);
  }
  const estimateKbps = last && last.availableOutgoing ? last.availableOutgoing / 1000 : 0;
  let rtt = median(pingRtts);
  if (rtt === null && last) {
    const fallback = last.pairRtt ?? last.remoteRtt;
    rtt = fallback === null ? null : fallback * 1000;
  }
  return {
    rttMs: rtt,
    lossPercent: Math.min(100, Math.max(upLoss, downLoss)),
    jitterMs: last ? last.jitter * 1000 : 0,
    uploadKbps: Math.max(sentKbps, estimateKbps),
    sentKbps,
  };
}

function meets(m, t) {
  return m.rttMs !== null && m.rttMs < t.rtt_ms && m.lossPercent < t.loss_percent && m.uploadKbps >= t.upload_kbps;
}

// "good", "usable" or "poor" (shown as "not enough").
export function verdictOf({ connected, media, m }, thresholds) {
  if (!connected || !media.audio || !media.video) return "poor";
  if (meets(m, thresholds.good)) return "good";
  if (meets(m, thresholds.usable)) return "usable";
  return "poor";
}

// What to do next, as i18n keys, most useful first.
export function adviceFor({ verdict, connected, busy, media, micHeard, heardTone, m }, thresholds) {
  const advice = [];
  if (media.problem === "denied") advice.push("advice_allow");
  else if (media.problem !== "error" && (!media.audio || !media.video)) advice.push("advice_no_device");
  if (busy) advice.push("advice_busy");
  else if (!connected) advice.push("advice_blocked", "advice_browser");
  else if (m) {
    const good = thresholds.good;
    if (m.rttMs === null || m.rttMs >= good.rtt_ms || m.lossPercent >= good.loss_percent) advice.push("advice_switch");
    if (m.uploadKbps < good.upload_kbps) advice.push("advice_closer", "advice_downloads");
  }
  if (media.problem === "error" && !advice.includes("advice_browser")) advice.push("advice_browser");
  if (media.audio && !micHeard) advice.push("advice_mic_silent");
  if (heardTone === "no") advice.push("advice_volume");
  if (verdict === "good" && !advice.length) advice.push("advice_ready");
  return advice;
}
