// A template's access policy as a small form (stewards): client networks, weekly time windows
// in a time zone, closed dates, extra openings, auto-assign, clipboard; the JSON beside it for
// what the form does not show.

import { put } from "./api.js";
import { field, h, replace } from "./dom.js";
import { DAYS, DAY_LABELS, browserZone, isDate, parseHhmm, splitList, validZone, zoneOptions } from "./zones.js";

let windowCount = 0;

/** "HH:MM" text input (type=time cannot say 24:00). */
export function hhmmInput(name, value) {
  return h("input", {
    name,
    value: value || "",
    required: true,
    size: 5,
    inputmode: "numeric",
    placeholder: "HH:MM",
    pattern: "([01]?[0-9]|2[0-3]):[0-5][0-9]|24:00",
  });
}

/** Checkboxes for the days of the week, all in one fieldset. */
export function dayChecks(legend, checked) {
  return h(
    "fieldset",
    { class: "days" },
    h("legend", {}, legend),
    DAYS.map((d) =>
      h("label", { class: "check" }, h("input", { type: "checkbox", value: d, checked: checked.includes(d) }), ` ${DAY_LABELS[d]}`),
    ),
  );
}

const checkedDays = (fs) => [...fs.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value);

/** One weekly window: days, from, to, and a button to remove it. */
function windowEditor(w, onRemove) {
  windowCount += 1;
  const n = windowCount;
  const start = hhmmInput("start", w.start);
  const end = hhmmInput("end", w.end);
  const remove = h("button", { type: "button", class: "link" }, "Remove this window");
  const el = h(
    "fieldset",
    { class: "window", "data-window": String(n) },
    h("legend", {}, "Weekly window"),
    dayChecks("Days", w.days),
    h("div", { class: "row" }, field("From", start, "HH:MM"), field("To", end, "HH:MM, up to 24:00")),
    remove,
  );
  remove.addEventListener("click", () => {
    el.remove();
    onRemove();
  });
  return el;
}

/** "2026-12-19 09:00-13:00" lines → extra openings; throws with the line that is wrong. */
function parseExtras(text) {
  const out = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const m = line.match(/^(\d{4}-\d{2}-\d{2})\s+(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})$/);
    const start = m && parseHhmm(m[2]);
    const end = m && parseHhmm(m[3]);
    if (!m || !start || !end) throw new Error(`Extra opening “${line}”: write it as 2026-12-19 09:00-13:00`);
    out.push({ date: m[1], start, end });
  }
  return out;
}

/** The policy the form says; throws with a message for what is wrong. */
function readForm(form, windows) {
  const zone = form.elements.time_zone.value.trim();
  const list = [...windows.querySelectorAll("fieldset.window")].map((fs, i) => {
    const days = checkedDays(fs.querySelector("fieldset.days"));
    const start = parseHhmm(fs.querySelector("[name=start]").value);
    const end = parseHhmm(fs.querySelector("[name=end]").value);
    if (!days.length) throw new Error(`Weekly window ${i + 1}: choose at least one day`);
    if (!start || !end) throw new Error(`Weekly window ${i + 1}: write the times as HH:MM`);
    return { days, start, end };
  });
  const closed = splitList(form.elements.closed.value);
  const bad = closed.find((d) => !isDate(d));
  if (bad) throw new Error(`Closed date “${bad}”: write it as YYYY-MM-DD`);
  const extra = parseExtras(form.elements.extra.value);
  let schedule = null;
  if (list.length || extra.length) {
    if (!validZone(zone)) throw new Error(`Unknown time zone “${zone}”`);
    schedule = { time_zone: zone, windows: list, closed, extra };
  } else if (closed.length) {
    throw new Error("Closed dates need a weekly window (or an extra opening) to close");
  }
  return {
    networks: splitList(form.elements.networks.value),
    schedule,
    auto_assign: form.elements.auto_assign.checked,
    clipboard: form.elements.clipboard.checked,
  };
}

/** The access policy card of a template's page. */
export function policySection(ctx, t, reload) {
  if (t.policy === undefined) return null;
  const p = t.policy;
  const s = p.schedule;
  const windows = h("div", { class: "windows" });
  const none = h("p", { class: "hint" }, "No weekly window: at any time (unless there are extra openings).");
  const sync = () => {
    none.hidden = windows.querySelector("fieldset.window") !== null;
  };
  const addWindow = (w) => {
    windows.append(windowEditor(w, sync));
    sync();
  };
  for (const w of s ? s.windows : []) addWindow(w);
  sync();
  const add = h("button", { type: "button" }, "Add a weekly window");
  add.addEventListener("click", () => {
    addWindow({ days: ["mon", "tue", "wed", "thu", "fri"], start: "08:00", end: "18:00" });
    windows.lastElementChild.querySelector("input").focus();
  });
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit" }, "Save policy");
  const form = h(
    "form",
    { class: "card policy", "aria-labelledby": "policy-heading" },
    h("h2", { id: "policy-heading" }, "Access policy"),
    h("p", { class: "access" }, t.access),
    field(
      "Networks",
      h("input", { name: "networks", value: p.networks.join(", "), placeholder: "campus, 192.0.2.0/24", autocomplete: "off" }),
      "Names from the site's [networks] or CIDRs, comma-separated. Empty: from anywhere.",
    ),
    field(
      "Time zone",
      h("input", { name: "time_zone", value: s ? s.time_zone : browserZone(), list: "policy-zones", autocomplete: "off" }),
      "IANA name, e.g. Europe/Berlin; the windows and dates are in it.",
    ),
    zoneOptions("policy-zones"),
    none,
    windows,
    add,
    field(
      "Closed dates",
      h("input", { name: "closed", value: s ? s.closed.join(", ") : "", placeholder: "2026-12-24, 2026-12-31", autocomplete: "off" }),
      "YYYY-MM-DD, comma-separated: the weekly windows do not apply on them.",
    ),
    field(
      "Extra openings",
      h("textarea", { name: "extra", rows: 2, value: s ? s.extra.map((e) => `${e.date} ${e.start}-${e.end}`).join("\n") : "" }),
      "One a line, e.g. 2026-12-19 09:00-13:00.",
    ),
    h(
      "label",
      { class: "check block" },
      h("input", { type: "checkbox", name: "auto_assign", checked: p.auto_assign }),
      " Auto-assign: start a desktop at login for people who may use only this template",
    ),
    h("label", { class: "check block" }, h("input", { type: "checkbox", name: "clipboard", checked: p.clipboard }), " Clipboard in the browser console"),
    error,
    submit,
    jsonEditor(ctx, t, reload),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    replace(error);
    let body;
    try {
      body = readForm(form, windows);
    } catch (err) {
      replace(error, err.message);
      return;
    }
    ctx.act(submit, async () => {
      try {
        await put(`/templates/${t.id}/policy`, body);
      } catch (err) {
        if (err.status === 400 || err.status === 409) {
          replace(error, err.message);
          return;
        }
        throw err;
      }
      ctx.notify("Policy saved");
      await reload();
    });
  });
  return form;
}

/** The whole policy as JSON, for what the form does not show. */
function jsonEditor(ctx, t, reload) {
  const text = h("textarea", { name: "policy_json", rows: 8, class: "code", value: JSON.stringify(t.policy, null, 2), spellcheck: "false" });
  const save = h("button", { type: "button" }, "Save JSON");
  save.addEventListener("click", () =>
    ctx.act(save, async () => {
      let body;
      try {
        body = JSON.parse(text.value);
      } catch (err) {
        throw new Error(`The policy is not valid JSON: ${err.message}`);
      }
      await put(`/templates/${t.id}/policy`, body);
      ctx.notify("Policy saved");
      await reload();
    }),
  );
  return h("details", { class: "json" }, h("summary", {}, "Edit as JSON"), field("Policy as JSON", text), save);
}
