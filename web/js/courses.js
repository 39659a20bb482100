// Courses: desktops reserved for a group, once or weekly. Stewards and admins see them all,
// book new ones (refusals say which slot does not fit) and cancel them; everyone else sees
// their groups' courses ("My courses").

import { ApiError, del, get, post } from "./api.js";
import { field, h, replace } from "./dom.js";
import { dayChecks, hhmmInput } from "./policy.js";
import {
  addDays,
  browserZone,
  daysLabel,
  isDate,
  parseHhmm,
  span,
  splitList,
  today,
  validZone,
  weekdayOf,
  zoneOptions,
  zonedToUtc,
} from "./zones.js";

const isSteward = (me) => me.role === "steward" || me.role === "admin";

/** The next slot of a course that has not ended at `now` (ms): [start, end] or null. */
export function nextSlot(c, now = Date.now()) {
  if (c.schedule.once) {
    const { start, end } = c.schedule.once;
    return Date.parse(end) > now ? [Date.parse(start), Date.parse(end)] : null;
  }
  const w = c.schedule.weekly;
  let day = w.first < today() ? addDays(today(), -1) : w.first;
  for (let i = 0; i < 800 && day <= w.last; i += 1, day = addDays(day, 1)) {
    if (!w.days.includes(weekdayOf(day)) || w.except.includes(day)) continue;
    const end = zonedToUtc(day, w.end, w.time_zone);
    if (end > now) return [zonedToUtc(day, w.start, w.time_zone), end];
  }
  return null;
}

/** A course's timetable in words. */
export function describe(c) {
  if (c.schedule.once) return `Once: ${span(Date.parse(c.schedule.once.start), Date.parse(c.schedule.once.end))}`;
  const w = c.schedule.weekly;
  const except = w.except.length ? `, except ${w.except.join(", ")}` : "";
  return `Weekly on ${daysLabel(w.days)}, ${w.start}–${w.end} (${w.time_zone}), ${w.first} to ${w.last}${except}`;
}

function courseTable(ctx, courses, templates, steward, reload) {
  const templateName = new Map(templates.map((t) => [t.id, t.name]));
  const rows = courses.map((c) => {
    const next = nextSlot(c);
    let cancel = null;
    if (steward) {
      cancel = h("button", { type: "button", class: "danger", "aria-label": `Cancel ${c.name}` }, "Cancel");
      cancel.addEventListener("click", () =>
        ctx.act(cancel, async () => {
          if (!window.confirm(`Cancel the course “${c.name}”? Desktops already running keep running.`)) return;
          await del(`/courses/${c.id}`);
          ctx.notify(`Course “${c.name}” cancelled`);
          await reload();
        }),
      );
    }
    return h(
      "tr",
      { "data-course": c.id },
      h("th", { scope: "row" }, c.name),
      h("td", {}, templateName.get(c.template_id) || "—"),
      h("td", {}, c.group),
      h("td", { class: "num" }, String(c.desktops)),
      h("td", {}, describe(c)),
      h("td", { class: "next" }, next ? span(next[0], next[1]) : h("span", { class: "muted" }, "over")),
      steward ? h("td", { class: "actions" }, cancel) : null,
    );
  });
  const heads = ["Course", "Template", "Group", "Desktops", "When", "Next"];
  if (steward) heads.push("Actions");
  return h(
    "table",
    { class: "courses" },
    h("caption", { class: "visually-hidden" }, steward ? "Courses" : "Your courses"),
    h("thead", {}, h("tr", {}, heads.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows),
  );
}

/** The schedule the form says, as the API takes it; throws with a message. */
function readSchedule(form) {
  const v = (name) => form.elements[name].value.trim();
  const zone = v("time_zone");
  if (!validZone(zone)) throw new Error(`Unknown time zone “${zone}”`);
  const start = parseHhmm(v("start"));
  const end = parseHhmm(v("end"));
  if (!start || !end) throw new Error("Write the start and end times as HH:MM");
  if (form.elements.kind.value === "once") {
    const date = v("date");
    if (!isDate(date)) throw new Error("Choose the date of the course");
    const s = zonedToUtc(date, start, zone);
    const e = zonedToUtc(date, end, zone);
    if (e <= s) throw new Error("The course ends before it starts");
    return { once: { start: new Date(s).toISOString(), end: new Date(e).toISOString() } };
  }
  const days = [...form.querySelectorAll(".weekly fieldset.days input:checked")].map((c) => c.value);
  if (!days.length) throw new Error("Choose the days of the week");
  const first = v("first");
  const last = v("last");
  if (!isDate(first) || !isDate(last)) throw new Error("Choose the first and the last day of the course");
  const except = splitList(v("except"));
  const bad = except.find((d) => !isDate(d));
  if (bad) throw new Error(`Exception “${bad}”: write it as YYYY-MM-DD`);
  return { weekly: { first, last, days, start, end, except, time_zone: zone } };
}

function bookingForm(ctx, courses, templates, reload) {
  const mine = templates.filter((t) => ctx.me.role === "admin" || t.owner_id === ctx.me.id);
  if (!mine.length) {
    return h("section", { class: "card" }, h("h2", {}, "Book a course"), h("p", { class: "empty" }, "Create a template first: courses reserve desktops of your templates."));
  }
  const groups = h("datalist", { id: "course-groups" });
  const known = new Set();
  const offer = (names) => {
    for (const n of names) {
      if (known.has(n)) continue;
      known.add(n);
      groups.append(h("option", { value: n }));
    }
  };
  offer(mine.flatMap((t) => t.groups));
  get("/groups")
    .then((gs) => offer(gs.map((g) => g.name)))
    .catch(() => {});
  const template = h(
    "select",
    { name: "template_id", required: true },
    mine.map((t) => h("option", { value: t.id }, t.current_version === null ? `${t.name} (no image yet)` : t.name)),
  );
  const group = h("input", { name: "group", required: true, list: "course-groups", autocomplete: "off" });
  // The template's group as a first guess.
  const guess = () => {
    const t = mine.find((x) => x.id === template.value);
    if (!group.value && t && t.groups.length) group.value = t.groups[0];
  };
  template.addEventListener("change", guess);
  guess();
  const kind = (value, label, checked) =>
    h("label", { class: "check" }, h("input", { type: "radio", name: "kind", value, checked }), ` ${label}`);
  const once = h("div", { class: "once" }, field("Date", h("input", { name: "date", type: "date", value: addDays(today(), 1) })));
  const weekly = h(
    "div",
    { class: "weekly", hidden: true },
    dayChecks("Days of the week", []),
    h(
      "div",
      { class: "row" },
      field("First day", h("input", { name: "first", type: "date", value: today() })),
      field("Last day", h("input", { name: "last", type: "date", value: addDays(today(), 7 * 15) })),
    ),
    field("Except", h("input", { name: "except", placeholder: "2026-12-29, 2027-01-05", autocomplete: "off" }), "Dates without the course (holidays), YYYY-MM-DD, comma-separated."),
  );
  const error = h("div", { class: "refusal", role: "alert" });
  const submit = h("button", { type: "submit" }, "Book course");
  const form = h(
    "form",
    { class: "card book", "aria-labelledby": "book-heading" },
    h("h2", { id: "book-heading" }, "Book a course"),
    field("Course name", h("input", { name: "name", required: true, maxlength: 100, autocomplete: "off" })),
    h(
      "div",
      { class: "row" },
      field("Template", template),
      field("Group", group, "Its members get the desktops."),
      field("Desktops", h("input", { name: "desktops", type: "number", min: 1, max: 10000, value: 1, required: true }), "Reserved in every slot."),
    ),
    h(
      "fieldset",
      { class: "when" },
      h("legend", {}, "When"),
      h("div", {}, kind("once", "Once", true), kind("weekly", "Every week", false)),
      once,
      weekly,
      h(
        "div",
        { class: "row" },
        field("Starts at", hhmmInput("start", "10:00"), "HH:MM"),
        field("Ends at", hhmmInput("end", "12:00"), "HH:MM, up to 24:00"),
        field("Time zone", h("input", { name: "time_zone", required: true, value: browserZone(), list: "course-zones", autocomplete: "off" }), "IANA name; daylight saving is handled."),
      ),
      zoneOptions("course-zones"),
    ),
    groups,
    error,
    submit,
  );
  form.addEventListener("change", (e) => {
    if (e.target.name !== "kind") return;
    const weeklyNow = form.elements.kind.value === "weekly";
    weekly.hidden = !weeklyNow;
    once.hidden = weeklyNow;
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    replace(error);
    const name = form.elements.name.value.trim();
    let body;
    try {
      body = {
        name,
        template_id: template.value,
        group: group.value.trim(),
        desktops: Number(form.elements.desktops.value),
        schedule: readSchedule(form),
      };
    } catch (err) {
      replace(error, h("p", {}, err.message));
      return;
    }
    ctx.act(submit, async () => {
      try {
        await post("/courses", body);
      } catch (err) {
        if (err instanceof ApiError && (err.status === 409 || err.status === 400 || err.status === 403)) {
          replace(
            error,
            h("p", { class: "refusal-title" }, err.status === 409 ? `“${name}” was not booked: it does not fit` : `“${name}” was not booked`),
            h("p", {}, err.message),
          );
          return;
        }
        throw err;
      }
      ctx.notify(`Course “${name}” booked`);
      await reload();
    });
  });
  return form;
}

/** "Courses" (stewards, admins) and "My courses" (everyone else). */
export async function coursesPage(ctx) {
  const reload = () => coursesPage(ctx);
  const steward = isSteward(ctx.me);
  const [courses, templates] = await Promise.all([get("/courses"), get("/templates")]);
  courses.sort((a, b) => (nextSlot(a)?.[0] ?? Infinity) - (nextSlot(b)?.[0] ?? Infinity) || a.name.localeCompare(b.name));
  const list = courses.length
    ? courseTable(ctx, courses, templates, steward, reload)
    : h("p", { class: "empty" }, steward ? "No courses are booked." : "None of your groups has a course booked.");
  replace(
    ctx.main,
    h("h1", {}, steward ? "Courses" : "My courses"),
    steward ? null : h("p", { class: "hint" }, "During a course, launching its template gives you one of the desktops reserved for it."),
    list,
    steward ? bookingForm(ctx, courses, templates, reload) : null,
    steward ? h("p", {}, h("a", { href: "#/capacity" }, "See the capacity calendar")) : null,
  );
}
