// "My desktops": the person's live desktops with their state as it changes (server-sent
// events), connected or not, last activity, when they end, and what can be done with each; a
// notice when a course desktop is ready.

import { del, get, post } from "./api.js";
import { h, replace, time } from "./dom.js";
import { endsAt } from "./zones.js";

const STEPS = ["requested", "provisioning", "booting", "ready"];
const TERMINAL = new Set(["ended", "failed"]);

const LABELS = {
  requested: "Requested",
  provisioning: "Preparing",
  booting: "Starting",
  ready: "Ready",
  suspending: "Suspending",
  suspended: "Suspended",
  resuming: "Resuming",
  stopping: "Ending",
  ended: "Ended",
  failed: "Failed",
};

/** The state with a progress bar while it starts. */
export function stateCell(s) {
  const step = STEPS.indexOf(s.state);
  return h(
    "div",
    { class: "state" },
    h("span", { class: `badge state-${s.state}`, "data-state": s.state }, LABELS[s.state] || s.state),
    step >= 0 && step < 3
      ? h("progress", { max: 3, value: step, "aria-label": `Starting: step ${step + 1} of 4` })
      : null,
    s.expires_at && !TERMINAL.has(s.state)
      ? h("p", { class: "expires" }, h("time", { datetime: s.expires_at, title: new Date(s.expires_at).toLocaleString() }, endsAt(s.expires_at)))
      : null,
    s.reason ? h("p", { class: "reason" }, s.reason) : null,
  );
}

// Connect opens the H.264 video viewer (/stream, which itself falls back to the console where
// the browser lacks WebCodecs H.264); the noVNC console stays one click away.
const connectLink = (s, name, cls) =>
  h(
    "a",
    { class: `button ${cls || ""}`.trim(), href: `/stream#${s.id}`, target: "_blank", rel: "noopener", "aria-label": `Connect to ${name} (opens a new tab)` },
    "Connect",
  );

const classicLink = (s, name) =>
  h(
    "a",
    { class: "button", href: `/console#${s.id}`, target: "_blank", rel: "noopener", "aria-label": `Classic console (VNC) of ${name} (opens a new tab)` },
    "Classic console (VNC)",
  );

function actions(ctx, s, t, refresh) {
  const name = t ? t.name : "desktop";
  const out = [];
  const button = (label, fn, cls) => {
    const b = h("button", { type: "button", class: cls || null, "aria-label": `${label} ${name}` }, label);
    b.addEventListener("click", () => ctx.act(b, async () => {
      await fn();
      await refresh();
    }));
    return b;
  };
  if (s.state === "ready") {
    out.push(connectLink(s, name, "primary"), classicLink(s, name));
    if (t && t.protocols.includes("spice")) {
      out.push(h("a", { class: "button", href: `/api/v1/sessions/${s.id}/spice.vv`, download: "", "aria-label": `Open ${name} in remote-viewer` }, "Open in remote-viewer"));
    }
    out.push(button("Suspend", () => post(`/sessions/${s.id}/suspend`)));
  }
  if (s.state === "suspended") out.push(button("Resume", () => post(`/sessions/${s.id}/resume`)));
  if (!TERMINAL.has(s.state) && s.state !== "stopping") {
    out.push(
      button(
        "End",
        async () => {
          if (!window.confirm(`End “${name}”? Everything in it is lost.`)) return;
          await del(`/sessions/${s.id}`);
        },
        "danger",
      ),
    );
  }
  return out;
}

/** `highlight`: the id of a desktop just started (from the catalogue or at login). */
export async function desktops(ctx, highlight) {
  const [sessions, templates, courses] = await Promise.all([
    get("/sessions?live=true"),
    get("/templates"),
    get("/courses").catch(() => []),
  ]);
  const byId = new Map(templates.map((t) => [t.id, t]));
  const courseName = new Map(courses.map((c) => [c.id, c.name]));
  const notices = h("div", { class: "course-notices", role: "status", "aria-live": "polite" });
  const body = h("tbody");
  const rows = new Map();
  const latest = new Map();
  const streams = new Map();

  const table = h(
    "table",
    { class: "sessions" },
    h("caption", { class: "visually-hidden" }, "Your desktops"),
    h("thead", {}, h("tr", {}, ["Desktop", "State", "Console", "Last activity", "Started", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
    body,
  );
  const empty = h("p", { class: "empty" }, "You have no desktops running. ", h("a", { href: "#/" }, "Launch one from the catalogue."));

  async function refresh() {
    const now = await get("/sessions?live=true");
    for (const s of now) render(s);
    for (const id of [...rows.keys()]) {
      if (!now.some((s) => s.id === id)) {
        const last = latest.get(id);
        if (!TERMINAL.has(last.state)) render({ ...last, state: "ended", connected: false });
      }
    }
    watchAll();
  }

  function render(s) {
    const t = byId.get(s.template_id);
    const cells = [
      h("th", { scope: "row" }, t ? t.name : "(template removed)"),
      h("td", {}, stateCell(s)),
      h("td", {}, h("span", { class: `conn ${s.connected ? "on" : "off"}`, "data-connected": String(s.connected) }, s.connected ? "Connected" : "Not connected")),
      h("td", {}, time(s.last_activity)),
      h("td", {}, time(s.created_at)),
      h("td", { class: "actions" }, actions(ctx, s, t, refresh)),
    ];
    let row = rows.get(s.id);
    if (!row) {
      row = h("tr", { "data-session": s.id, class: s.id === highlight ? "highlight" : null });
      rows.set(s.id, row);
      body.prepend(row);
    }
    row.dataset.state = s.state;
    latest.set(s.id, s);
    replace(row, cells);
    empty.hidden = rows.size > 0;
    table.hidden = rows.size === 0;
    renderNotices();
  }

  // "Your course desktop for X is ready", once per ready course desktop, with its Connect.
  function renderNotices() {
    const ready = [...latest.values()].filter((s) => s.course_id && s.state === "ready");
    const key = ready.map((s) => s.id).join(",");
    if (notices.dataset.key === key) return;
    notices.dataset.key = key;
    replace(
      notices,
      ready.map((s) => {
        const course = courseName.get(s.course_id) || "your course";
        const t = byId.get(s.template_id);
        return h(
          "p",
          { class: "course-ready", "data-session": s.id },
          `Your course desktop for ${course} is ready. `,
          connectLink(s, t ? t.name : course, "primary"),
        );
      }),
    );
  }

  function watch(id) {
    if (streams.has(id)) return;
    const es = new EventSource(`/api/v1/sessions/${id}/events`);
    streams.set(id, es);
    es.addEventListener("state", (e) => {
      const s = JSON.parse(e.data);
      render(s);
      if (TERMINAL.has(s.state)) {
        es.close();
        streams.delete(id);
      }
    });
    es.addEventListener("error", () => {
      if (es.readyState === EventSource.CLOSED) streams.delete(id);
    });
  }

  function watchAll() {
    for (const [id, row] of rows) if (!TERMINAL.has(row.dataset.state)) watch(id);
  }

  for (const s of sessions.slice().reverse()) render(s);
  replace(ctx.main, h("h1", {}, "My desktops"), notices, table, empty);
  if (highlight && rows.has(highlight)) rows.get(highlight).scrollIntoView({ block: "nearest" });
  empty.hidden = rows.size > 0;
  table.hidden = rows.size === 0;
  watchAll();
  // Last activity changes without an event; new desktops may come from another tab.
  const timer = setInterval(() => refresh().catch(() => {}), 20000);
  ctx.onLeave(() => {
    clearInterval(timer);
    for (const es of streams.values()) es.close();
  });
}
