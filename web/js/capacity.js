// The capacity calendar (stewards, admins): the reservation slots of the next 14 days, day by
// day, with how many of each slot's reserved desktops are in use.

import { get } from "./api.js";
import { h, replace } from "./dom.js";
import { browserZone, clock, dayLabel, localDate } from "./zones.js";

const DAYS_AHEAD = 14;

export async function capacity(ctx) {
  const [slots, courses, templates] = await Promise.all([
    get(`/admin/capacity?days=${DAYS_AHEAD}`),
    get("/courses"),
    get("/templates"),
  ]);
  const course = new Map(courses.map((c) => [c.id, c]));
  const templateName = new Map(templates.map((t) => [t.id, t.name]));
  const byDay = new Map();
  for (const s of slots) {
    const key = localDate(new Date(s.start));
    if (!byDay.has(key)) byDay.set(key, []);
    byDay.get(key).push(s);
  }
  const start = new Date();
  start.setHours(12, 0, 0, 0);
  const days = [];
  for (let i = 0; i < DAYS_AHEAD; i += 1) {
    const d = new Date(start);
    d.setDate(start.getDate() + i);
    days.push([localDate(d), d.getTime()]);
  }
  // A slot that started before today (still running) belongs to today.
  for (const [key, list] of byDay) {
    if (key < days[0][0]) {
      if (!byDay.has(days[0][0])) byDay.set(days[0][0], []);
      byDay.get(days[0][0]).unshift(...list);
      byDay.delete(key);
    }
  }
  let reservedTotal = 0;
  const bodies = days.map(([key, noon]) => {
    const list = (byDay.get(key) || []).sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
    const day = h("th", { scope: "rowgroup", rowspan: Math.max(list.length, 1) }, h("time", { datetime: key }, dayLabel(noon)));
    if (!list.length) {
      return h("tbody", { "data-day": key, class: "free" }, h("tr", {}, day, h("td", { colspan: 5, class: "muted" }, "No reservations")));
    }
    return h(
      "tbody",
      { "data-day": key },
      list.map((s, i) => {
        reservedTotal += s.reserved;
        const c = course.get(s.course_id);
        const name = c ? c.name : s.course_id;
        return h(
          "tr",
          { "data-course": s.course_id },
          i === 0 ? day : null,
          h("td", {}, h("time", { datetime: s.start }, clock(Date.parse(s.start))), "–", h("time", { datetime: s.end }, clock(Date.parse(s.end)))),
          h("td", {}, name, c ? h("span", { class: "muted" }, ` · ${c.group}`) : null),
          h("td", {}, c ? templateName.get(c.template_id) || "—" : "—"),
          h("td", { class: "num" }, String(s.reserved)),
          h(
            "td",
            { class: "use" },
            h("meter", { min: 0, max: Math.max(s.reserved, 1), value: s.in_use, "aria-label": `${name}: ${s.in_use} of ${s.reserved} in use` }),
            ` ${s.in_use} of ${s.reserved}`,
          ),
        );
      }),
    );
  });
  replace(
    ctx.main,
    h("h1", {}, "Capacity"),
    h(
      "p",
      { class: "hint" },
      `Desktops reserved by courses in the next ${DAYS_AHEAD} days, and how many of them are in use. Times in ${browserZone()}. `,
      h("a", { href: "#/courses" }, "Book or cancel courses"),
    ),
    slots.length ? null : h("p", { class: "empty" }, "No course has desktops reserved in the next two weeks."),
    h(
      "table",
      { class: "capacity" },
      h("caption", { class: "visually-hidden" }, `Reservations of the next ${DAYS_AHEAD} days: ${reservedTotal} desktops in ${slots.length} slots`),
      h("thead", {}, h("tr", {}, ["Day", "Time", "Course", "Template", "Reserved", "In use"].map((x) => h("th", { scope: "col" }, x)))),
      bodies,
    ),
  );
}
