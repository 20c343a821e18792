// denoise serve: choose or record a recording, send it to /api/analyze, show before and after.
// Plain browser JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, limits: null, urls: [], recorder: null, job: null };
// Until /api/limits answers (it lists every format the server reads).
const FORMATS = ["wav", "flac", "ogg", "oga", "opus", "mp3", "aiff", "aif", "aifc", "caf", "w64", "m4a", "aac",
                 "mp4", "mov", "3gp", "webm", "mka", "mkv", "wma"];

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
  for (const id of ["denoised", "original"]) {
    $(id).removeAttribute("src");
    $(id).load(); // without it the player keeps playing what it had loaded
  }
  for (const id of ["spec-original", "spec-denoised", "download"]) $(id).hidden = true;
  $("timing").textContent = "";
}

function megabytes(bytes) {
  if (bytes < 102400) return Math.max(1, Math.round(bytes / 1024)) + " kB";  // not "0.0 MB"
  return (bytes / 1048576).toFixed(1) + " MB";
}

function formats() {
  return (state.limits ? state.limits.formats : FORMATS).join(", ");
}

// Whether a file can be a recording: by its type, else by its extension.
function looksLikeAudio(file) {
  if (/^(audio|video)\//.test(file.type)) return true;
  const ext = file.name.includes(".") ? file.name.split(".").pop().toLowerCase() : "";
  return (state.limits ? state.limits.formats : FORMATS).includes(ext);
}

// A recording was chosen, dropped or recorded: check it against the limits and play it.
function choose(file) {
  if (state.job) return; // one recording at a time: a drop while denoising is ignored
  clearResult();
  showMessage("");
  state.file = null;
  $("chosen").textContent = "";
  $("record-time").textContent = "";
  $("enhance").disabled = true;
  if (!file) return;
  if (file.size === 0) return showMessage(file.name + ": the file is empty");
  if (!looksLikeAudio(file)) {
    return showMessage(file.name + " does not look like a recording; choose " + formats());
  }
  if (state.limits && file.size > state.limits.max_upload_bytes) {
    return showMessage(file.name + " is " + megabytes(file.size) + "; this page takes up to " +
                       megabytes(state.limits.max_upload_bytes));
  }
  state.file = file;
  $("chosen").textContent = file.name + " (" + megabytes(file.size) + ")";
  $("original").src = objectUrl(file);
  $("enhance").disabled = false;
}

// The player learns the duration: a recording over the limit is said before it is uploaded.
function checkDuration() {
  const seconds = $("original").duration;
  if (!state.file || !state.limits || !isFinite(seconds) || seconds <= state.limits.max_seconds) return;
  const name = state.file.name;
  choose(null);
  showMessage(name + " is " + Math.round(seconds) + " s long; this page takes up to " +
              Math.round(state.limits.max_seconds) + " s (split it, or use the denoise command)");
}

function base64Bytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function setBusy(busy) {
  $("busy").hidden = !busy;
  $("cancel").hidden = !busy;
  $("enhance").disabled = busy || !state.file;
  $("enhance").setAttribute("aria-busy", String(busy));
  $("record").disabled = busy && !recording(); // a recording under way can always be stopped
  $("file").disabled = busy;
  $("drop").classList.toggle("disabled", busy);
}

async function enhance() {
  if (!state.file || state.job) return;
  showMessage("");
  const job = { controller: new AbortController(), started: performance.now() };
  state.job = job;
  setBusy(true);
  $("cancel").focus();
  const tick = setInterval(() => {
    $("busy-time").textContent = ((performance.now() - job.started) / 1000).toFixed(0) + " s"; // not read out
  }, 1000);
  const strength = Number($("strength").value);
  let done = null;
  try {
    const form = new FormData();
    form.append("file", state.file, state.file.name);
    const response = await fetch("/api/analyze?strength=" + strength / 100,
                                 { method: "POST", body: form, signal: job.controller.signal });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(body.detail || "The server answered " + response.status + ".");
    }
    const audio = new Blob([base64Bytes(body.audio)], { type: body.media_type });
    const url = objectUrl(audio);
    $("denoised").src = url;
    $("spec-original").src = "data:image/png;base64," + body.spectrograms.original;
    $("spec-denoised").src = "data:image/png;base64," + body.spectrograms.denoised;
    $("spec-original").hidden = $("spec-denoised").hidden = false;
    const roundTrip = (performance.now() - job.started) / 1000;
    $("timing").textContent = body.seconds.toFixed(1) + " s of audio denoised at strength " + strength +
      " % in " + body.processing_seconds.toFixed(2) + " s (" + roundTrip.toFixed(2) + " s with upload and images)" +
      (body.spectrograms.seconds < body.seconds ? "; the spectrograms show the first " +
        Math.round(body.spectrograms.seconds) + " s" : "") +
      (body.scaled_db < 0 ? "; scaled by " + body.scaled_db.toFixed(2) + " dB to avoid clipping" : "") +
      (body.truncated ? "; note: " + body.truncated + ", denoised what it holds" : "");
    $("download").href = url;
    $("download").download = body.filename;
    $("download").hidden = false;
    done = $("download");
  } catch (error) {
    if (error.name === "AbortError") showMessage("Cancelled.");
    else showMessage(error.message === "Failed to fetch" ? "The server cannot be reached." : error.message);
  } finally {
    clearInterval(tick);
    $("busy-time").textContent = "";
    state.job = null;
    setBusy(false);
    (done || $("enhance")).focus(); // not left on the body while a disabled button held it
  }
}

function cancel() {
  if (state.job) state.job.controller.abort();
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
  const now = new Date(); // local time, as the person recording reads their clock
  const pad = (x) => String(x).padStart(2, "0");
  const stamp = now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate()) + "-" +
    pad(now.getHours()) + "-" + pad(now.getMinutes()) + "-" + pad(now.getSeconds());
  return new File([view], "recording-" + stamp + ".wav", { type: "audio/wav" });
}

function recording() {
  return Boolean(state.recorder && state.recorder.state === "recording");
}

async function startRecording() {
  let stream, recorder;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    recorder = new MediaRecorder(stream);
  } catch (error) {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    return showMessage("No microphone available (" + error.message + ")");
  }
  choose(null); // what was chosen before is replaced by the recording
  const context = new AudioContext(); // decodes the recording at its rate, which sets the WAV's size
  const chunks = [];
  const started = Date.now();
  // The server's limits: its longest recording, and its largest upload as 16-bit mono WAV.
  const longest = state.limits ? Math.min(state.limits.max_seconds,
                                          (state.limits.max_upload_bytes - 44) / (2 * context.sampleRate)) : Infinity;
  const tick = setInterval(() => {
    const seconds = (Date.now() - started) / 1000;
    $("record-time").textContent = seconds.toFixed(0) + " s";
    if (seconds >= longest && recording()) toggleRecording();
  }, 250);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    clearInterval(tick);
    stream.getTracks().forEach((track) => track.stop());
    $("record").textContent = "Record";
    $("record").setAttribute("aria-pressed", "false");
    $("record").disabled = Boolean(state.job);
    try {
      const decoded = await context.decodeAudioData(await new Blob(chunks).arrayBuffer());
      const seconds = $("record-time").textContent;
      choose(wavFile(decoded));
      $("record-time").textContent = seconds;
    } catch (error) {
      showMessage("The recording could not be decoded (" + error.message + ")");
    } finally {
      context.close();
    }
  };
  recorder.start();
  state.recorder = recorder;
  $("record").textContent = "Stop";
  $("record").setAttribute("aria-pressed", "true");
  showMessage("");
}

function toggleRecording() {
  if (recording()) {
    state.recorder.stop();
    state.recorder = null;
  } else {
    startRecording();
  }
}

// --- Wiring.

function init() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => {
    choose(event.target.files[0]);
    event.target.value = ""; // choosing the same file again is a change too
  });
  $("file").addEventListener("keydown", (event) => { // Space opens the chooser; Enter too
    if (event.key === "Enter") { event.preventDefault(); $("file").click(); }
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    if (!state.job) drop.classList.add("over");
  });
  drop.addEventListener("dragleave", (event) => {
    if (!drop.contains(event.relatedTarget)) drop.classList.remove("over"); // not when over its own text
  });
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    choose(event.dataTransfer.files[0]);
  });
  for (const type of ["dragover", "drop"]) { // a file dropped beside the zone must not replace the page
    window.addEventListener(type, (event) => event.preventDefault());
  }
  $("enhance").addEventListener("click", enhance);
  $("cancel").addEventListener("click", cancel);
  $("original").addEventListener("loadedmetadata", checkDuration);
  if (navigator.mediaDevices && window.MediaRecorder) {
    $("record").addEventListener("click", toggleRecording);
  } else {
    $("record").disabled = true;
    $("record").title = "Recording needs a secure page: open it on this machine (127.0.0.1) or over HTTPS";
  }
  $("strength").addEventListener("input", () => {
    $("strength-value").textContent = $("strength").value + " %";
  });
  window.addEventListener("beforeunload", (event) => {
    if (state.job) event.preventDefault(); // leaving now loses the recording being denoised
  });
  fetch("/api/limits").then((r) => r.json()).then((limits) => {
    state.limits = limits;
    $("limits").textContent = formats() + "; up to " + megabytes(limits.max_upload_bytes) +
      " and " + Math.round(limits.max_seconds) + " s";
  }).catch(() => {});
}

document.addEventListener("DOMContentLoaded", init);
