// The browser console: noVNC's RFB client over the WebSocket relay. It asks the API for a
// fresh one-time token for each connection, so reconnecting (or another browser) just works.

import RFB from "./vendor/novnc/core/rfb.js";
import { apiOrLogin as api } from "./js/api.js";

const id = decodeURIComponent(location.hash.slice(1));
const $ = (sel) => document.getElementById(sel);
const screen = $("screen");
const status = $("status");
const buttons = {
  cad: $("cad"),
  fullscreen: $("fullscreen"),
  disconnect: $("disconnect"),
  reconnect: $("reconnect"),
  clipboard: $("clipboard-toggle"),
};
const scale = $("scale");
const resize = $("resize");
const clipPanel = $("clipboard");
const clipText = $("clip-text");

let rfb = null;
let wanted = true;
// Set when the H.264 viewer (/stream) sent this browser here because it cannot decode video.
const fallbackReason = new URLSearchParams(location.search).get("from") === "stream" ? new URLSearchParams(location.search).get("reason") || "no H.264 video in this browser" : null;

function setState(state, text) {
  document.body.dataset.state = state;
  status.textContent = text;
  const connected = state === "connected";
  buttons.cad.disabled = !connected;
  buttons.disconnect.hidden = !connected && state !== "connecting";
  buttons.reconnect.hidden = connected || state === "connecting" || state === "loading";
}

/** Whether the clipboard may be shared with this desktop. A template policy may turn it off
 * (`clipboard: false` on the session or its template); on otherwise. */
function clipboardAllowed(session, template) {
  const policy = template && template.policy;
  return !(session && session.clipboard === false) && !(policy && policy.clipboard === false);
}

function applyClipboardPolicy(allowed) {
  buttons.clipboard.hidden = !allowed;
  if (!allowed) clipPanel.hidden = true;
  return allowed;
}

let clipboardOn = true;

async function connect() {
  wanted = true;
  setState("connecting", "Connecting…");
  let session;
  let template = null;
  try {
    session = await api("GET", `/sessions/${encodeURIComponent(id)}`);
    template = await api("GET", `/templates/${encodeURIComponent(session.template_id)}`).catch(() => null);
  } catch (e) {
    setState("failed", e.message);
    return;
  }
  const name = template ? template.name : "Desktop";
  $("title").textContent = name;
  document.title = `${name} — console — osvdi`;
  clipboardOn = applyClipboardPolicy(clipboardAllowed(session, template));
  if (session.state !== "ready") {
    setState("unavailable", `This desktop is ${session.state}; its console opens when it is ready.`);
    return;
  }
  let grant;
  try {
    grant = await api("POST", `/sessions/${encodeURIComponent(id)}/console`);
  } catch (e) {
    setState("failed", e.message);
    return;
  }
  // The relay is on this server: build its address from where this page came from, which
  // also holds behind a reverse proxy.
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}/ws/console?token=${encodeURIComponent(grant.token)}`;
  rfb = new RFB(screen, url, { wsProtocols: ["binary"], shared: true });
  rfb.scaleViewport = scale.checked;
  rfb.resizeSession = resize.checked;
  rfb.focusOnClick = true;
  rfb.addEventListener("connect", () => {
    setState("connected", fallbackReason ? `Connected to ${name} (classic console: ${fallbackReason})` : `Connected to ${name}`);
    rfb.focus();
  });
  rfb.addEventListener("disconnect", (e) => {
    rfb = null;
    if (wanted && !e.detail.clean) setState("disconnected", "The connection was lost.");
    else setState("disconnected", "Disconnected. The desktop keeps running.");
  });
  rfb.addEventListener("securityfailure", (e) => setState("failed", `Refused: ${e.detail.reason || "security failure"}`));
  rfb.addEventListener("clipboard", (e) => {
    if (clipboardOn) clipText.value = e.detail.text;
  });
  rfb.addEventListener("desktopname", (e) => {
    if (e.detail.name) status.title = e.detail.name;
  });
}

buttons.cad.addEventListener("click", () => {
  if (rfb) {
    rfb.sendCtrlAltDel();
    rfb.focus();
  }
});
buttons.disconnect.addEventListener("click", () => {
  wanted = false;
  if (rfb) rfb.disconnect();
});
buttons.reconnect.addEventListener("click", () => connect());
buttons.fullscreen.addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen().catch(() => {});
});
document.addEventListener("fullscreenchange", () => {
  buttons.fullscreen.textContent = document.fullscreenElement ? "Exit full screen" : "Full screen";
});
scale.addEventListener("change", () => {
  if (rfb) rfb.scaleViewport = scale.checked;
});
resize.addEventListener("change", () => {
  if (rfb) rfb.resizeSession = resize.checked;
});
buttons.clipboard.addEventListener("click", () => {
  clipPanel.hidden = !clipPanel.hidden;
  buttons.clipboard.setAttribute("aria-expanded", String(!clipPanel.hidden));
});
$("clip-send").addEventListener("click", () => {
  if (rfb && clipboardOn) {
    rfb.clipboardPasteFrom(clipText.value);
    rfb.focus();
  }
});
// Leaving the page closes the connection at once (the desktop keeps running).
window.addEventListener("pagehide", () => {
  wanted = false;
  if (rfb) rfb.disconnect();
});

if (!id) setState("failed", "No desktop given.");
else connect();
