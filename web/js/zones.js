// Dates, wall-clock times and IANA time zones with the browser's Intl only: the browser's zone,
// a wall time in any zone as an instant, and the short forms the pages show.

import { h } from "./dom.js";

export const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
export const DAY_LABELS = { mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri", sat: "Sat", sun: "Sun" };

/** The browser's IANA time zone. */
export const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/** Whether the browser knows `tz` as a time zone. */
export function validZone(tz) {
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
    return Boolean(tz);
  } catch {
    return false;
  }
}

/** A <datalist> of the IANA zones the browser knows, for time zone inputs. */
export function zoneOptions(id) {
  let zones = [];
  try {
    zones = Intl.supportedValuesOf("timeZone");
  } catch {
    zones = [];
  }
  return h("datalist", { id }, zones.map((z) => h("option", { value: z })));
}

const HHMM = /^([01]?\d|2[0-3]):([0-5]\d)$|^24:00$/;
const YMD = /^(\d{4})-(\d{2})-(\d{2})$/;

/** "9:05" → "09:05"; null when it is no time of day (24:00 allowed). */
export function parseHhmm(s) {
  const v = (s || "").trim();
  if (!HHMM.test(v)) return null;
  const [h, m] = v.split(":");
  return `${h.padStart(2, "0")}:${m}`;
}

/** Whether `s` is a YYYY-MM-DD date. */
export const isDate = (s) => YMD.test(s || "");

/** Milliseconds that the wall clock of `tz` is ahead of UTC at the instant `ms`. */
function offset(ms, tz) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: tz,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(ms));
  const v = Object.fromEntries(parts.map((p) => [p.type, Number(p.value)]));
  const wall = Date.UTC(v.year, v.month - 1, v.day, v.hour % 24, v.minute, v.second);
  return wall - Math.floor(ms / 1000) * 1000;
}

/** The instant (ms) of the wall time `date` `hhmm` in `tz` (24:00 is the next midnight). In a
 * gap of a daylight-saving change it is the time after the change. */
export function zonedToUtc(date, hhmm, tz) {
  const [, y, mo, d] = date.match(YMD).map(Number);
  const [h, mi] = hhmm.split(":").map(Number);
  const wall = Date.UTC(y, mo - 1, d, h, mi);
  const first = wall - offset(wall, tz);
  return wall - offset(first, tz);
}

/** The weekday ("mon"...) of a YYYY-MM-DD date. */
export function weekdayOf(date) {
  const [, y, mo, d] = date.match(YMD).map(Number);
  return DAYS[(new Date(Date.UTC(y, mo - 1, d)).getUTCDay() + 6) % 7];
}

/** The date `n` days after the YYYY-MM-DD `date`. */
export function addDays(date, n) {
  const [, y, mo, d] = date.match(YMD).map(Number);
  return new Date(Date.UTC(y, mo - 1, d + n)).toISOString().slice(0, 10);
}

/** Today in the browser's zone, YYYY-MM-DD. */
export function today(now = new Date()) {
  return localDate(now);
}

/** The browser-local YYYY-MM-DD of a Date. */
export function localDate(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

/** "10:00" in the browser's zone. */
export const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

/** "Tue 24 Nov" (with the year when it is not this year). */
export function dayLabel(ms) {
  const d = new Date(ms);
  const opts = { weekday: "short", day: "numeric", month: "short" };
  if (d.getFullYear() !== new Date().getFullYear()) opts.year = "numeric";
  return d.toLocaleDateString([], opts);
}

/** "ends at 12:00" today, "ends on Tue 24 Nov at 12:00" later. */
export function endsAt(rfc3339) {
  const ms = Date.parse(rfc3339);
  if (localDate(new Date(ms)) === today()) return `ends at ${clock(ms)}`;
  return `ends on ${dayLabel(ms)} at ${clock(ms)}`;
}

/** A range of instants: "Tue 24 Nov 10:00–12:00" (both days when it spans two). */
export function span(startMs, endMs) {
  const sameDay = localDate(new Date(startMs)) === localDate(new Date(endMs - 1));
  return sameDay
    ? `${dayLabel(startMs)} ${clock(startMs)}–${clock(endMs)}`
    : `${dayLabel(startMs)} ${clock(startMs)} – ${dayLabel(endMs)} ${clock(endMs)}`;
}

/** "Mon, Wed" or "Mon–Fri" for a list of days. */
export function daysLabel(days) {
  const idx = days.map((d) => DAYS.indexOf(d)).filter((i) => i >= 0).sort((a, b) => a - b);
  if (idx.length > 2 && idx.every((v, i) => i === 0 || v === idx[i - 1] + 1)) {
    return `${DAY_LABELS[DAYS[idx[0]]]}–${DAY_LABELS[DAYS[idx[idx.length - 1]]]}`;
  }
  return idx.map((i) => DAY_LABELS[DAYS[i]]).join(", ");
}

/** Comma- or space-separated items, trimmed, empty ones dropped. */
export const splitList = (v) => (v || "").split(/[,\s]+/).map((x) => x.trim()).filter(Boolean);
