// denoise serve: choose or record a recording, send it to /api/analyze, show before and after.
// Plain browser JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, limits: null, urls: [], recorder: null };

function showMessage(text) {
  $("message").textContent = text || "";
  $("message").hidden = !text;
}

function objectUrl(blob) {
  const url = URL.createObjectURL(blob);
  state.urls.push(url);
  return url;
}

function clearResult() {
  for (const url of state.urls.splice(0)) URL.revokeObjectURL(url);
  for (const id of ["denoised", "original"]) $(id).removeAttribute("src");
  for (const id of ["spec-original", "spec-denoised", "download"]) $(id).hidden = true;
  $("timing").textContent = "";
}

function megabytes(bytes) {
  return (bytes / 1048576).toFixed(1) + " MB";
}

// A recording was chosen, dropped or recorded: check it against the limits and play it.
function choose(file) {
  clearResult();
  showMessage("");
  state.file = null;
  $("enhance").disabled = true;
  if (!file) return;
  if (file.size === 0) return showMessage(file.name + ": the file is empty");
  if (state.limits && file.size > state.limits.max_upload_bytes) {
    return showMessage(file.name + " is " + megabytes(file.size) + "; the limit is " +
                       megabytes(state.limits.max_upload_bytes));
  }
  state.file = file;
  $("chosen").textContent = file.name + " (" + megabytes(file.size) + ")";
  $("original").src = objectUrl(file);
  $("enhance").disabled = false;
}

function base64Bytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function setBusy(busy) {
  $("busy").hidden = !busy;
  $("enhance").disabled = busy || !state.file;
  $("enhance").setAttribute("aria-busy", String(busy));
  $("record").disabled = busy;
  $("file").disabled = busy;
}

async function enhance() {
  if (!state.file) return;
  showMessage("");
  setBusy(true);
  const started = performance.now();
  try {
    const form = new FormData();
    form.append("file", state.file, state.file.name);
    const strength = Number($("strength").value) / 100;
    const response = await fetch("/api/analyze?strength=" + strength, { method: "POST", body: form });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(body.detail || "the server answered " + response.status);
    }
    const audio = new Blob([base64Bytes(body.audio)], { type: body.media_type });
    const url = objectUrl(audio);
    $("denoised").src = url;
    $("spec-original").src = "data:image/png;base64," + body.spectrograms.original;
    $("spec-denoised").src = "data:image/png;base64," + body.spectrograms.denoised;
    $("spec-original").hidden = $("spec-denoised").hidden = false;
    const roundTrip = (performance.now() - started) / 1000;
    $("timing").textContent = body.seconds.toFixed(1) + " s of audio denoised in " +
      body.processing_seconds.toFixed(2) + " s (" + roundTrip.toFixed(2) + " s with upload and images)" +
      (body.scaled_db < 0 ? "; scaled by " + body.scaled_db.toFixed(2) + " dB to avoid clipping" : "") +
      (body.truncated ? "; note: " + body.truncated + ", denoised what it holds" : "");
    $("download").href = url;
    $("download").download = body.filename;
    $("download").hidden = false;
  } catch (error) {
    showMessage(error.message === "Failed to fetch" ? "the server cannot be reached" : error.message);
  } finally {
    setBusy(false);
  }
}

// --- Recording: MediaRecorder, then decoded and re-encoded as 16-bit mono WAV, which the server reads.

function wavFile(buffer) {
  const rate = buffer.sampleRate;
  const n = buffer.length;
  const mono = new Float32Array(n);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const data = buffer.getChannelData(c);
    for (let i = 0; i < n; i++) mono[i] += data[i] / buffer.numberOfChannels;
  }
  const view = new DataView(new ArrayBuffer(44 + 2 * n));
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * n, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, 2 * n, true);
  for (let i = 0; i < n; i++) {
    const s = Math.max(-1, Math.min(1, mono[i]));
    view.setInt16(44 + 2 * i, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
  return new File([view], "recording-" + stamp + ".wav", { type: "audio/wav" });
}

async function startRecording() {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    return showMessage("no microphone available (" + error.message + ")");
  }
  const chunks = [];
  const recorder = new MediaRecorder(stream);
  const started = Date.now();
  const tick = setInterval(() => {
    $("record-time").textContent = ((Date.now() - started) / 1000).toFixed(0) + " s";
  }, 250);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    clearInterval(tick);
    stream.getTracks().forEach((track) => track.stop());
    $("record").textContent = "Record";
    $("record").setAttribute("aria-pressed", "false");
    try {
      const context = new AudioContext();
      const decoded = await context.decodeAudioData(await new Blob(chunks).arrayBuffer());
      context.close();
      choose(wavFile(decoded));
    } catch (error) {
      showMessage("the recording could not be decoded (" + error.message + ")");
    }
  };
  recorder.start();
  state.recorder = recorder;
  $("record").textContent = "Stop";
  $("record").setAttribute("aria-pressed", "true");
  showMessage("");
}

function toggleRecording() {
  if (state.recorder && state.recorder.state === "recording") {
    state.recorder.stop();
    state.recorder = null;
  } else {
    startRecording();
  }
}

// --- Wiring.

function init() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => choose(event.target.files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    choose(event.dataTransfer.files[0]);
  });
  $("enhance").addEventListener("click", enhance);
  if (navigator.mediaDevices && window.MediaRecorder) {
    $("record").addEventListener("click", toggleRecording);
  } else {
    $("record").disabled = true;
    $("record").title = "Recording needs a secure page: open it on this machine (127.0.0.1) or over HTTPS";
  }
  $("strength").addEventListener("input", () => {
    $("strength-value").textContent = $("strength").value + " %";
  });
  fetch("/api/limits").then((r) => r.json()).then((limits) => {
    state.limits = limits;
    $("limits").textContent = limits.formats.join(", ") + "; up to " + megabytes(limits.max_upload_bytes) +
      " and " + Math.round(limits.max_seconds) + " s";
  }).catch(() => {});
}

document.addEventListener("DOMContentLoaded", init);
