// @ts-check
// The desktop as H.264 video: the page of /stream#<session>. It asks the API for a one-time
// stream token, opens /ws/stream (protocol: crates/osvdi-server/src/api/stream.rs), hands the
// pictures to a Worker that decodes them with WebCodecs onto a transferred OffscreenCanvas
// (stream-worker.js), acknowledges each decoded picture, and sends keyboard (physical key
// codes as QEMU XT scancodes plus the X11 keysym, both from noVNC's tables), mouse, clipboard
// and resize requests. Browsers without WebCodecs H.264 go to the classic console
// (/console, noVNC) instead.
//
// Plain ES module, no build step (like the portal). For tests and curious people it keeps its
// counters on `window.osvdiStream`: {state, codec, width, height, framesReceived, framesDecoded,
// keyframes, videoBytes (binary message bytes received), decodeErrors, cursorShapes, latencyMs
// (change on the desktop → picture drawn, of the last picture: needs agreeing clocks), rttMs (the
// last round trip the server measured), resizeRefused (the status of a refused resize), server
// (the last figures the server sent)}.

import { getKeycode, getKeysym } from "./vendor/novnc/core/input/util.js";
import XtScancode from "./vendor/novnc/core/input/xtscancodes.js";
import KeyTable from "./vendor/novnc/core/input/keysym.js";
import { apiOrLogin as api } from "./js/api.js";

// Types (JSDoc, checked by TypeScript: tests/e2e/tsconfig.stream.json, `npm run typecheck`).
//
// Server → viewer, as text (the binary pictures are parsed in onPicture):
/**
 * @typedef {{type: "init", codec: string, width: number, height: number, clipboard: boolean, resize: boolean}} InitMessage
 * @typedef {{type: "cursor", x_hot: number, y_hot: number, width: number, height: number, rgba: string}} CursorMessage
 * @typedef {{type: "clipboard", text: string}} ClipboardMessage (both ways)
 * @typedef {{type: "resize", status: number}} ResizeRefusedMessage
 * @typedef {{type: "stats", frames: number, bytes: number, period_ms: number, encode_ms: number | null,
 *   rtt_ms: number | null, rtt_max_ms: number | null, decode_ms: number | null, waits: number,
 *   in_flight: number, total_frames: number}} StatsMessage
 * @typedef {InitMessage | CursorMessage | ClipboardMessage | ResizeRefusedMessage | StatsMessage} ServerMessage
 */
// Viewer → server:
/**
 * @typedef {{type: "keyframe"}} KeyframeRequest
 * @typedef {{type: "pointer", x: number, y: number, buttons: number}} PointerMessage
 * @typedef {{type: "key", down: boolean, keysym: number, code?: number}} KeyMessage
 * @typedef {{type: "ack", frame: number, decode_ms?: number}} AckMessage
 * @typedef {{type: "resize", width: number, height: number}} ResizeRequest
 * @typedef {KeyframeRequest | PointerMessage | KeyMessage | AckMessage | ClipboardMessage | ResizeRequest} ViewerMessage
 */
// Page ↔ worker (as documented at the top of stream-worker.js, which declares the same types):
/**
 * @typedef {{type: "canvas", canvas: OffscreenCanvas}} CanvasMessage
 * @typedef {{type: "init", codec: string, width: number, height: number}} DecoderInit
 * @typedef {{type: "frame", number: number, keyframe: boolean, data: ArrayBuffer}} FrameMessage
 * @typedef {CanvasMessage | DecoderInit | FrameMessage} ToWorker
 * @typedef {{type: "configured", codec: string, hardware?: boolean}
 *   | {type: "unsupported", codec: string, reason: string}
 *   | {type: "decoded", number: number, decodeMs: number | null}
 *   | {type: "keyframe"}
 *   | {type: "error", message: string}} FromWorker
 */
/**
 * The counters kept on `window.osvdiStream` (see above).
 * @typedef {{state: string, codec: string | null, width: number, height: number, framesReceived: number,
 *   framesDecoded: number, keyframes: number, videoBytes: number, decodeErrors: number,
 *   cursorShapes: number, latencyMs: number | null, resizeRefused: number | null,
 *   rttMs: number | null, server: StatsMessage | null}} StreamCounters
 */

const id = decodeURIComponent(location.hash.slice(1));
/** An element of stream.html (all of them are there). */
const $ = (/** @type {string} */ sel) => /** @type {HTMLElement} */ (document.getElementById(sel));
const video = /** @type {HTMLCanvasElement} */ ($("video"));
const statusLine = $("status");
const statsBox = $("stats");
const clipPanel = $("clipboard");
const clipText = /** @type {HTMLTextAreaElement} */ ($("clip-text"));
const buttons = {
  cad: /** @type {HTMLButtonElement} */ ($("cad")),
  fullscreen: $("fullscreen"),
  disconnect: $("disconnect"),
  reconnect: $("reconnect"),
  clipboard: $("clipboard-toggle"),
  stats: $("stats-toggle"),
};
const resizeBox = /** @type {HTMLInputElement} */ ($("resize"));
const HEADER_LEN = 16;
/** Capture times (ms since the epoch, from the picture header) of pictures not yet decoded.
 * @type {Map<number, number>} */
const captured = new Map();

/** @type {StreamCounters} */
const counters = {
  state: "loading",
  codec: null,
  width: 0,
  height: 0,
  framesReceived: 0,
  framesDecoded: 0,
  keyframes: 0,
  videoBytes: 0,
  decodeErrors: 0,
  cursorShapes: 0,
  latencyMs: null,
  resizeRefused: null,
  rttMs: null,
  server: null,
};
/** @type {Window & {osvdiStream?: StreamCounters}} */ (window).osvdiStream = counters;

/** @type {WebSocket | null} */
let ws = null;
/** @type {Worker | null} */
let worker = null;
let wanted = true;
/** The session, as the API gives it (the fields used here).
 * @typedef {{state: string, template_id: string}} Session
 * @type {Session | null} */
let session = null;
let allowClipboard = false;
let allowResize = false;

/**
 * @param {string} state
 * @param {string} text
 */
function setState(state, text) {
  counters.state = state;
  document.body.dataset.state = state;
  statusLine.textContent = text;
  const connected = state === "connected";
  buttons.cad.disabled = !connected;
  buttons.disconnect.hidden = !connected && state !== "connecting";
  buttons.reconnect.hidden = connected || state === "connecting" || state === "loading";
}

/** To the noVNC console, saying why.
 * @param {string} reason */
function fallBack(reason) {
  wanted = false;
  if (ws) ws.close();
  const params = new URLSearchParams({ from: "stream", reason });
  location.replace(`/console?${params}#${encodeURIComponent(id)}`);
}

/** Whether this browser can show the stream at all (the codec is checked again on init). */
async function webCodecsMissing() {
  if (typeof VideoDecoder !== "function" || typeof EncodedVideoChunk !== "function") return "this browser has no WebCodecs VideoDecoder";
  if (typeof video.transferControlToOffscreen !== "function" || typeof Worker !== "function") return "this browser cannot draw video in a worker";
  try {
    const s = await VideoDecoder.isConfigSupported({ codec: "avc1.42E01F", optimizeForLatency: true });
    if (!s.supported) return "this browser cannot decode H.264 with WebCodecs";
  } catch (e) {
    return `this browser cannot decode H.264 with WebCodecs (${/** @type {Error} */ (e).message})`;
  }
  return null;
}

/** @param {ViewerMessage} msg */
function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

// ---- the worker: decoding ----

function startWorker() {
  worker = new Worker("/static/stream-worker.js", { type: "module" });
  const offscreen = video.transferControlToOffscreen();
  worker.postMessage(/** @satisfies {CanvasMessage} */ ({ type: "canvas", canvas: offscreen }), [offscreen]);
  worker.onmessage = (e) => {
    /** @type {FromWorker} */
    const m = e.data;
    switch (m.type) {
      case "decoded": {
        counters.framesDecoded += 1;
        const at = captured.get(m.number);
        captured.delete(m.number);
        if (at !== undefined) {
          // Change on the desktop → picture drawn here; meaningful when both clocks agree.
          counters.latencyMs = Date.now() - at;
          local.latencyMs += counters.latencyMs;
          local.latencies += 1;
        }
        local.decoded += 1;
        if (m.decodeMs !== null) {
          local.decodeMs += m.decodeMs;
          local.decodes += 1;
        }
        send(m.decodeMs === null ? { type: "ack", frame: m.number } : { type: "ack", frame: m.number, decode_ms: Math.round(m.decodeMs * 100) / 100 });
        if (counters.state !== "connected") setState("connected", `Connected to ${$("title").textContent}`);
        break;
      }
      case "keyframe":
        send({ type: "keyframe" });
        break;
      case "configured":
        counters.codec = m.codec;
        break;
      case "unsupported":
        fallBack(`${m.codec}: ${m.reason}`);
        break;
      case "error":
        counters.decodeErrors += 1;
        break;
      default:
        break;
    }
  };
}

// ---- the socket ----

/** @param {string} text */
function onText(text) {
  /** @type {ServerMessage} */
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    return;
  }
  switch (m.type) {
    case "init":
      counters.width = m.width;
      counters.height = m.height;
      allowClipboard = m.clipboard === true;
      allowResize = m.resize === true;
      buttons.clipboard.hidden = !allowClipboard;
      if (!allowClipboard) clipPanel.hidden = true;
      $("resize-label").hidden = !allowResize;
      /** @type {Worker} */ (worker).postMessage(/** @satisfies {DecoderInit} */ ({ type: "init", codec: m.codec, width: m.width, height: m.height }));
      break;
    case "cursor":
      counters.cursorShapes += 1;
      setCursor(m);
      break;
    case "clipboard":
      if (allowClipboard) {
        clipText.value = m.text;
        if (navigator.clipboard && document.hasFocus()) navigator.clipboard.writeText(m.text).catch(() => {});
      }
      break;
    case "resize":
      // The desktop cannot take this size (QEMU's standard VGA cannot resize at all).
      counters.resizeRefused = m.status;
      resizeBox.checked = false;
      resizeBox.disabled = true;
      $("resize-label").title = `This desktop cannot change its size (status ${m.status})`;
      break;
    case "stats":
      counters.server = m;
      if (typeof m.rtt_ms === "number") counters.rttMs = m.rtt_ms;
      break;
    default:
      break;
  }
}

/** @param {ArrayBuffer} buf */
function onPicture(buf) {
  counters.videoBytes += buf.byteLength;
  local.bytes += buf.byteLength;
  if (buf.byteLength <= HEADER_LEN) return;
  const head = new DataView(buf, 0, HEADER_LEN);
  if (head.getUint8(0) !== 1) return;
  const keyframe = (head.getUint8(1) & 1) === 1;
  const number = head.getUint32(2);
  // The first change in this picture reached the server at this time (its clock).
  captured.set(number, Number(head.getBigUint64(6)));
  if (captured.size > 64) captured.delete(/** @type {number} */ (captured.keys().next().value));
  counters.framesReceived += 1;
  if (keyframe) counters.keyframes += 1;
  const data = buf.slice(HEADER_LEN);
  /** @type {Worker} */ (worker).postMessage(/** @satisfies {FrameMessage} */ ({ type: "frame", number, keyframe, data }), [data]);
}

async function connect() {
  wanted = true;
  setState("connecting", "Connecting…");
  let template = null;
  try {
    session = /** @type {Session} */ (await api("GET", `/sessions/${encodeURIComponent(id)}`));
    template = await api("GET", `/templates/${encodeURIComponent(session.template_id)}`).catch(() => null);
  } catch (e) {
    setState("failed", /** @type {Error} */ (e).message);
    return;
  }
  const name = template ? template.name : "Desktop";
  $("title").textContent = name;
  document.title = `${name} — osvdi`;
  if (session.state !== "ready") {
    setState("unavailable", `This desktop is ${session.state}; it can be shown once it is ready.`);
    return;
  }
  let grant;
  try {
    grant = await api("POST", `/sessions/${encodeURIComponent(id)}/console?purpose=stream`);
  } catch (e) {
    setState("failed", /** @type {Error} */ (e).message);
    return;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${scheme}//${location.host}/ws/stream?token=${encodeURIComponent(grant.token)}`);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (e) => (typeof e.data === "string" ? onText(e.data) : onPicture(e.data));
  ws.onclose = (e) => {
    ws = null;
    releaseKeys();
    if (wanted) setState("disconnected", e.reason ? `The connection was lost: ${e.reason}` : "The connection was lost.");
    else setState("disconnected", "Disconnected. The desktop keeps running.");
  };
  ws.onopen = () => video.focus();
}

// ---- the pointer's shape ----

const cursorCanvas = document.createElement("canvas");

/** @param {CursorMessage} m */
function setCursor(m) {
  if (!m.width || !m.height) {
    video.style.cursor = "none";
    return;
  }
  const bytes = Uint8ClampedArray.from(atob(m.rgba), (c) => c.charCodeAt(0));
  if (bytes.length !== m.width * m.height * 4) return;
  cursorCanvas.width = m.width;
  cursorCanvas.height = m.height;
  /** @type {CanvasRenderingContext2D} */ (cursorCanvas.getContext("2d")).putImageData(new ImageData(bytes, m.width, m.height), 0, 0);
  video.style.cursor = `url(${cursorCanvas.toDataURL()}) ${m.x_hot} ${m.y_hot}, default`;
}

// ---- keyboard ----

/** QEMU's key number for a KeyboardEvent.code: XT scancode set 1, E0-prefixed as 0x80 | code.
 * @param {string} code
 * @returns {number | undefined} */
function qnum(code) {
  const xt = /** @type {Record<string, number | undefined>} */ (XtScancode)[code];
  if (!xt) return undefined;
  return xt >> 8 === 0xe0 && (xt & 0xff) < 0x7f ? (xt & 0xff) | 0x80 : xt;
}

/** Keys down now: code → keysym sent with the press (the release repeats it).
 * @type {Map<string, number>} */
const down = new Map();

/**
 * @param {boolean} isDown
 * @param {number} keysym
 * @param {string} code
 */
function key(isDown, keysym, code) {
  /** @type {KeyMessage} */
  const msg = { type: "key", down: isDown, keysym };
  const q = qnum(code);
  if (q !== undefined) msg.code = q;
  send(msg);
}

function releaseKeys() {
  for (const [code, keysym] of down) key(false, keysym, code);
  down.clear();
}

const isStatsKey = (/** @type {KeyboardEvent} */ e) => e.ctrlKey && e.altKey && e.shiftKey && e.code === "KeyS";

/** The keysym of a key event. For letters its case follows Shift and Caps Lock: QEMU (which
 * syncs the guest's Caps Lock from the keysym's case when the client does not track LED
 * state) then sees what a real keyboard would send, also for synthetic events whose `key`
 * ignores Shift.
 * @param {KeyboardEvent} e
 * @returns {number | null} */
function keysymOf(e) {
  const sym = getKeysym(e);
  const letter = /^Key[A-Z]$/.test(e.code) && sym !== null && ((sym >= 0x41 && sym <= 0x5a) || (sym >= 0x61 && sym <= 0x7a));
  if (!letter) return sym;
  const upper = e.shiftKey !== e.getModifierState("CapsLock");
  return upper ? sym & ~0x20 : sym | 0x20;
}

video.addEventListener("keydown", (e) => {
  if (isStatsKey(e)) {
    e.preventDefault();
    toggleStats();
    return;
  }
  e.preventDefault();
  const code = getKeycode(e);
  const keysym = down.get(code) ?? keysymOf(e);
  if (keysym === null || keysym === undefined) return;
  down.set(code, keysym);
  key(true, keysym, code);
});
video.addEventListener("keyup", (e) => {
  e.preventDefault();
  const code = getKeycode(e);
  const keysym = down.get(code) ?? keysymOf(e);
  down.delete(code);
  if (keysym === null || keysym === undefined) return;
  key(false, keysym, code);
});
video.addEventListener("blur", releaseKeys);

// ---- mouse ----

let buttonMask = 0;
let lastPos = { x: 0, y: 0 };

/** Framebuffer coordinates of a pointer event (the canvas keeps the desktop's aspect).
 * @param {MouseEvent} e */
function position(e) {
  const r = video.getBoundingClientRect();
  const w = counters.width || video.width;
  const h = counters.height || video.height;
  const x = Math.floor(((e.clientX - r.left) * w) / Math.max(r.width, 1));
  const y = Math.floor(((e.clientY - r.top) * h) / Math.max(r.height, 1));
  return { x: Math.min(Math.max(x, 0), Math.max(w - 1, 0)), y: Math.min(Math.max(y, 0), Math.max(h - 1, 0)) };
}

/** DOM buttons (1 left, 2 right, 4 middle) → RFB (1 left, 2 middle, 4 right). */
const rfbButtons = (/** @type {number} */ b) => (b & 1) | ((b & 4) >> 1) | ((b & 2) << 1);

/** @param {PointerEvent} e */
function pointer(e) {
  lastPos = position(e);
  buttonMask = rfbButtons(e.buttons);
  send({ type: "pointer", x: lastPos.x, y: lastPos.y, buttons: buttonMask });
}

video.addEventListener("pointermove", pointer);
video.addEventListener("pointerdown", (e) => {
  video.focus();
  video.setPointerCapture(e.pointerId);
  e.preventDefault();
  pointer(e);
});
video.addEventListener("pointerup", (e) => {
  e.preventDefault();
  pointer(e);
});
video.addEventListener("contextmenu", (e) => e.preventDefault());
video.addEventListener(
  "wheel",
  (e) => {
    e.preventDefault();
    if (e.deltaY === 0) return;
    const bit = e.deltaY < 0 ? 8 : 16;
    const { x, y } = position(e);
    send({ type: "pointer", x, y, buttons: buttonMask | bit });
    send({ type: "pointer", x, y, buttons: buttonMask });
  },
  { passive: false },
);

// ---- toolbar ----

buttons.cad.addEventListener("click", () => {
  /** @type {[number, string][]} */
  const seq = [
    [KeyTable.XK_Control_L, "ControlLeft"],
    [KeyTable.XK_Alt_L, "AltLeft"],
    [KeyTable.XK_Delete, "Delete"],
  ];
  for (const [sym, code] of seq) key(true, sym, code);
  for (const [sym, code] of seq.reverse()) key(false, sym, code);
  video.focus();
});
buttons.disconnect.addEventListener("click", () => {
  wanted = false;
  if (ws) ws.close();
});
buttons.reconnect.addEventListener("click", () => connect());
buttons.fullscreen.addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen().catch(() => {});
});
document.addEventListener("fullscreenchange", () => {
  buttons.fullscreen.textContent = document.fullscreenElement ? "Exit full screen" : "Full screen";
});
buttons.clipboard.addEventListener("click", () => {
  clipPanel.hidden = !clipPanel.hidden;
  buttons.clipboard.setAttribute("aria-expanded", String(!clipPanel.hidden));
});
$("clip-send").addEventListener("click", () => {
  if (allowClipboard) send({ type: "clipboard", text: clipText.value });
  video.focus();
});

// Resize requests follow the window, when asked for and the desktop takes them.
/** @type {number | null} */
let resizeTimer = null;
function requestResize() {
  if (!allowResize || !resizeBox.checked) return;
  const area = $("screen").getBoundingClientRect();
  send({ type: "resize", width: Math.floor(area.width), height: Math.floor(area.height) });
}
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer ?? undefined);
  resizeTimer = setTimeout(requestResize, 300);
});
resizeBox.addEventListener("change", requestResize);

// ---- the figures ----

const local = { at: performance.now(), decoded: 0, bytes: 0, decodeMs: 0, decodes: 0, latencyMs: 0, latencies: 0 };

function toggleStats() {
  statsBox.hidden = !statsBox.hidden;
  buttons.stats.setAttribute("aria-pressed", String(!statsBox.hidden));
}
buttons.stats.addEventListener("click", toggleStats);

const fmt = (/** @type {number | null | undefined} */ v, /** @type {string} */ unit, digits = 1) => (v === null || v === undefined ? "–" : `${Number(v).toFixed(digits)} ${unit}`);

setInterval(() => {
  const now = performance.now();
  const secs = (now - local.at) / 1000;
  const s = /** @type {Partial<StatsMessage>} */ (counters.server || {});
  const lines = [
    `fps          ${(local.decoded / secs).toFixed(1)}`,
    `bitrate      ${((local.bytes * 8) / secs / 1000).toFixed(1)} kbit/s`,
    `decode       ${fmt(local.decodes ? local.decodeMs / local.decodes : null, "ms", 2)}`,
    `round trip   ${fmt(counters.rttMs, "ms")}`,
    `latency      ${fmt(local.latencies ? local.latencyMs / local.latencies : counters.latencyMs, "ms")} (change → shown)`,
    `encode       ${fmt(s.encode_ms, "ms")}`,
    `decoded      ${counters.framesDecoded} frames (${counters.keyframes} key)`,
    `received     ${(counters.videoBytes / 1024).toFixed(0)} KiB`,
    `size         ${counters.width}×${counters.height} ${counters.codec || ""}`,
  ];
  statsBox.textContent = lines.join("\n");
  Object.assign(local, { at: now, decoded: 0, bytes: 0, decodeMs: 0, decodes: 0, latencyMs: 0, latencies: 0 });
}, 1000);

// Leaving the page closes the connection at once (the desktop keeps running).
window.addEventListener("pagehide", () => {
  wanted = false;
  if (ws) ws.close();
});

/** @type {HTMLAnchorElement} */ ($("classic")).href = `/console#${encodeURIComponent(id)}`;

async function start() {
  if (!id) {
    setState("failed", "No desktop given.");
    return;
  }
  const missing = await webCodecsMissing();
  if (missing) {
    fallBack(missing);
    return;
  }
  startWorker();
  connect();
}

start();
