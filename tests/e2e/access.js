// The steps of access policies and courses, run by portal.test.js on its site (configured with
// a "campus" network and room for two demo desktops): a steward sets policies with the form; a
// person sees the network and time-window denials and is not offered a template of another
// group; a steward books a course and is refused an overlapping one that does not fit; the
// capacity calendar; a member's "My courses"; auto-assign at login into a course desktop.

import assert from "node:assert/strict";

import { BOOT_MS, page, portalLogin, shot } from "./support.js";

const DEMO = "osvdi demo desktop";
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

/** YYYY-MM-DD of `ms` in `tz`, `days` later. */
function dateIn(tz, days = 0, ms = Date.now()) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: tz }).format(new Date(ms + days * 86_400_000));
}
const weekdayOf = (ymd) => DAYS[new Date(`${ymd}T12:00:00Z`).getUTCDay()];

/** "HH:MM" in UTC of the wall time `hhmm` on `ymd` in `tz` (no daylight-saving change that day). */
function utcClock(ymd, hhmm, tz) {
  const guess = Date.parse(`${ymd}T${hhmm}:00Z`);
  const there = new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(guess);
  const offset = Date.parse(`${ymd}T${there}:00Z`) - guess;
  return new Date(guess - offset).toISOString().slice(11, 16);
}

export async function accessAndCourses(t, { site, chrome, admin }) {
  const ok = (res, status, what) => assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
  const as = (who) => ({ token: who.token });
  for (const [name, role] of [["tom", "steward"], ["dora", "user"], ["carol", "user"], ["kai", "user"]]) {
    ok(await site.api("POST", "/users", { ...as(admin), body: { name, role, password: `${name}-password-1` } }), 201, name);
  }
  for (const [group, members] of [["imaging", ["tom", "carol"]], ["chemistry", ["tom"]], ["open-lab", ["kai"]]]) {
    ok(await site.api("POST", "/groups", { ...as(admin), body: { name: group } }), 201, group);
    for (const m of members) ok(await site.api("PUT", `/groups/${group}/members/${m}`, as(admin)), 204, `${m} in ${group}`);
  }
  const tom = await site.login("tom", "tom-password-1");
  const ids = {};
  for (const [name, visibility, groups] of [
    ["Campus only", "everyone", []],
    ["Timetabled lab", "everyone", []],
    ["Chemistry lab", "groups", ["chemistry"]],
    ["Imaging", "groups", ["imaging"]],
  ]) {
    const made = await site.api("POST", "/templates", {
      ...as(tom),
      body: { name, vcpus: 1, memory_mb: 256, disk_gb: 1, visibility, groups },
    });
    ok(made, 201, name);
    ok(await site.api("PUT", `/templates/${made.body.id}/image`, { ...as(tom), body: await site.qcow2() }), 201, `${name} image`);
    ids[name] = made.body.id;
  }
  // The day after tomorrow (UTC): a window on it is closed today and tomorrow.
  const closedToday = weekdayOf(dateIn("UTC", 2));
  const label = (d) => d[0].toUpperCase() + d.slice(1);

  const stewardContext = await chrome.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-GB", timezoneId: "Europe/Berlin" });
  const steward = await page(stewardContext);
  await portalLogin(steward, site, "tom", "tom-password-1");

  await t.test("a steward sets access policies with the form", async () => {
    await steward.goto(site.url(`/#/manage/${ids["Campus only"]}`));
    const form = steward.locator("form.policy");
    await form.getByLabel("Networks").fill("campus");
    await form.getByRole("button", { name: "Save policy" }).click();
    await steward.getByText("Policy saved").waitFor();
    await form.getByText("available at any time from the campus network").waitFor();
    await shot(form, "policy-network");

    await steward.goto(site.url(`/#/manage/${ids["Timetabled lab"]}`));
    await form.getByLabel("Time zone").fill("UTC");
    await form.getByRole("button", { name: "Add a weekly window" }).click();
    const win = form.locator("fieldset.window").first();
    for (const d of ["Mon", "Tue", "Wed", "Thu", "Fri"]) await win.getByRole("checkbox", { name: d }).uncheck();
    const day = label(closedToday);
    await win.getByRole("checkbox", { name: day }).check();
    await win.getByLabel("From", { exact: true }).fill("00:00");
    await win.getByLabel("To", { exact: true }).fill("24:00");
    await form.getByLabel("Closed dates").fill("2030-12-24");
    await form.getByRole("button", { name: "Save policy" }).click();
    await steward.getByText("Policy saved").waitFor();
    await form.getByText(`available ${day} 0:00–24:00 (UTC), closed on 2030-12-24 from anywhere`).waitFor();
    await shot(form, "policy-window");
    const saved = await site.api("GET", `/templates/${ids["Timetabled lab"]}`, as(tom));
    assert.deepEqual(saved.body.policy, {
      networks: [],
      schedule: { time_zone: "UTC", windows: [{ days: [closedToday], start: "00:00", end: "24:00" }], closed: ["2030-12-24"], extra: [] },
      auto_assign: false,
      clipboard: true,
    });
    assert.deepEqual(steward.problems, []);
  });

  const userContext = await chrome.newContext({ viewport: { width: 1280, height: 1000 } });
  const user = await page(userContext);
  const dora = await site.login("dora", "dora-password-1");
  const card = (name) => user.locator("[data-template]", { has: user.locator("h2", { hasText: name }) });

  await t.test("a person sees the network denial", async () => {
    await portalLogin(user, site, "dora", "dora-password-1");
    const c = card("Campus only");
    await c.locator(".access").getByText("available at any time from the campus network").waitFor();
    const why = await c.locator(".denied").textContent();
    assert.match(why, /from the campus network; you are connecting from 127\.0\.0\.1$/);
    assert.equal(await c.getByRole("button", { name: "Launch" }).isDisabled(), true);
    await shot(user, "denied-network");
    const refused = await site.api("POST", "/sessions", { ...as(dora), body: { template_id: ids["Campus only"] } });
    ok(refused, 403, "launch from outside the campus");
    assert.equal(refused.body.error.message, why);
  });

  await t.test("a person sees the time-window denial", async () => {
    const c = card("Timetabled lab");
    const why = await c.locator(".denied").textContent();
    assert.match(why, /^This desktop is available \w{3} 0:00–24:00 \(UTC\), closed on 2030-12-24 from anywhere; it is now \w{3} \d+:\d\d there$/);
    assert.ok(!why.includes(`it is now ${label(closedToday)}`), why);
    assert.equal(await c.getByRole("button", { name: "Launch" }).isDisabled(), true);
    await c.scrollIntoViewIfNeeded();
    await shot(c, "denied-schedule");
    ok(await site.api("POST", "/sessions", { ...as(dora), body: { template_id: ids["Timetabled lab"] } }), 403, "launch out of hours");
  });

  await t.test("a template of another group is not offered", async () => {
    await card(DEMO).waitFor();
    assert.equal(await card("Chemistry lab").count(), 0);
    assert.equal(await card("Imaging").count(), 0);
    await shot(user, "group-not-offered");
    for (const [method, path, body] of [
      ["POST", "/sessions", { template_id: ids["Chemistry lab"] }],
      ["GET", `/templates/${ids["Chemistry lab"]}`, undefined],
    ]) {
      ok(await site.api(method, path, { ...as(dora), body }), 404, `${method} ${path}`);
    }
    assert.deepEqual(user.problems, []);
  });

  // In the steward's zone (Europe/Berlin, the browser's): the day after tomorrow.
  const courseDay = dateIn("Europe/Berlin", 2);
  let course;

  await t.test("a steward books a course and is refused one that does not fit", async () => {
    await steward.getByRole("navigation").getByRole("link", { name: "Courses", exact: true }).click();
    await steward.getByRole("heading", { name: "Courses", level: 1 }).waitFor();
    const form = steward.locator("form.book");
    assert.equal(await form.getByLabel("Time zone").inputValue(), "Europe/Berlin", "the browser's zone by default");
    await form.getByLabel("Course name").fill("Imaging 101");
    await form.getByLabel("Template").selectOption({ label: "Imaging" });
    await form.getByLabel("Group").fill("imaging");
    await form.getByLabel("Desktops").fill("2");
    await form.getByRole("radio", { name: "Every week" }).check();
    const day = weekdayOf(courseDay);
    await form.getByRole("checkbox", { name: label(day) }).check();
    await form.getByLabel("First day").fill(dateIn("Europe/Berlin"));
    await form.getByLabel("Last day").fill(dateIn("Europe/Berlin", 14));
    await form.getByLabel("Except").fill(dateIn("Europe/Berlin", 9));
    await form.getByLabel("Starts at").fill("10:00");
    await form.getByLabel("Ends at").fill("12:00");
    await form.getByRole("button", { name: "Book course" }).click();
    await steward.getByText("Course “Imaging 101” booked").waitFor();
    const row = steward.locator("table.courses tr", { hasText: "Imaging 101" });
    await row.getByText(/^Weekly on \w{3}, 10:00–12:00 \(Europe\/Berlin\)/).waitFor();
    await shot(steward, "course-booked");
    course = (await site.api("GET", "/courses", as(tom))).body.find((c) => c.name === "Imaging 101");
    assert.deepEqual(course.schedule.weekly, {
      first: dateIn("Europe/Berlin"),
      last: dateIn("Europe/Berlin", 14),
      days: [day],
      start: "10:00",
      end: "12:00",
      except: [dateIn("Europe/Berlin", 9)],
      time_zone: "Europe/Berlin",
    });

    // One more desktop at the same time does not fit: the host has room for two.
    await form.getByLabel("Course name").fill("Imaging extra");
    await form.getByLabel("Template").selectOption({ label: "Imaging" });
    await form.getByLabel("Group").fill("imaging");
    await form.getByLabel("Desktops").fill("1");
    await form.getByRole("radio", { name: "Once" }).check();
    await form.getByLabel("Date", { exact: true }).fill(courseDay);
    await form.getByLabel("Starts at").fill("11:00");
    await form.getByLabel("Ends at").fill("13:00");
    await form.getByRole("button", { name: "Book course" }).click();
    const refusal = form.getByRole("alert");
    await refusal.getByText("“Imaging extra” was not booked: it does not fit").waitFor();
    const text = await refusal.textContent();
    // A one-off slot is named in UTC: 11:00-13:00 in Berlin.
    const [from, to] = [utcClock(courseDay, "11:00", "Europe/Berlin"), utcClock(courseDay, "13:00", "Europe/Berlin")];
    assert.ok(text.includes(`(${courseDay} ${from} to ${courseDay} ${to})`), `the slot: ${text}`);
    assert.ok(text.includes("'Imaging 101'"), `courses by name (the server names them): ${text}`);
    assert.doesNotMatch(text, UUID);
    await shot(steward, "course-refused");
    assert.equal((await site.api("GET", "/courses", as(tom))).body.length, 1, "nothing booked");
  });

  await t.test("the capacity calendar shows the slot", async () => {
    await steward.getByRole("navigation").getByRole("link", { name: "Capacity" }).click();
    await steward.getByRole("heading", { name: "Capacity", level: 1 }).waitFor();
    const slot = steward.locator(`tbody[data-day="${courseDay}"] tr[data-course="${course.id}"]`);
    await slot.getByText("10:00–12:00").waitFor();
    await slot.getByText("Imaging 101").waitFor();
    assert.equal((await slot.locator("td.num").textContent()).trim(), "2");
    assert.equal(await slot.getByRole("meter").getAttribute("aria-label"), "Imaging 101: 0 of 2 in use");
    assert.equal(await steward.locator("table.capacity tbody").count(), 14, "fourteen days");
    // Weekly: the course's day of next week is an exception; the one after is past the 14 days.
    assert.equal(await steward.locator(`table.capacity tr[data-course="${course.id}"]`).count(), 1);
    await shot(steward, "capacity");
    assert.deepEqual(steward.problems, []);
  });

  await t.test("a member of the course's group sees it in “My courses”", async () => {
    const ctx = await chrome.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-GB", timezoneId: "Europe/Berlin" });
    const carol = await page(ctx);
    await portalLogin(carol, site, "carol", "carol-password-1");
    await carol.getByRole("navigation").getByRole("link", { name: "My courses" }).click();
    await carol.getByRole("heading", { name: "My courses", level: 1 }).waitFor();
    const row = carol.locator(`tr[data-course="${course.id}"]`);
    await row.getByText("Imaging 101").waitFor();
    await row.getByText("imaging", { exact: true }).waitFor();
    assert.equal(await carol.getByRole("button", { name: /Cancel/ }).count(), 0, "members do not cancel");
    await shot(carol, "my-courses");
    // Dora is in no group of a course.
    assert.deepEqual((await site.api("GET", "/courses", as(dora))).body, []);
    assert.deepEqual(carol.problems, []);
    await ctx.close();
  });

  await t.test("auto-assign at login hands over a course desktop", async () => {
    const demo = (await site.api("GET", "/templates", as(admin))).body.find((x) => x.name === DEMO);
    const now = Date.now();
    const booked = await site.api("POST", "/courses", {
      ...as(admin),
      body: {
        name: "Open lab",
        template_id: demo.id,
        group: "open-lab",
        desktops: 1,
        schedule: { once: { start: new Date(now - 60_000).toISOString(), end: new Date(now + 3_600_000).toISOString() } },
      },
    });
    ok(booked, 201, "the open lab, now");
    const policy = { ...demo.policy, auto_assign: true };
    ok(await site.api("PUT", `/templates/${demo.id}/policy`, { ...as(admin), body: policy }), 200, "auto-assign");
    const kaiToken = await site.login("kai", "kai-password-1");
    const usable = (await site.api("GET", "/templates", as(kaiToken))).body.filter((x) => x.available && x.current_version);
    assert.deepEqual(usable.map((x) => x.name), [DEMO], "kai may use only the demo desktop");
    const ctx = await chrome.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-GB", timezoneId: "Europe/Berlin" });
    const kai = await page(ctx);
    try {
      await kai.goto(site.url("/"));
      await kai.getByLabel("User name").fill("kai");
      await kai.getByLabel("Password").fill("kai-password-1");
      await kai.getByRole("button", { name: "Log in" }).click();
      await kai.getByRole("heading", { name: "My desktops" }).waitFor();
      const row = kai.locator("tr.highlight[data-session]");
      await row.waitFor();
      const id = await row.getAttribute("data-session");
      const session = (await site.api("GET", `/sessions/${id}`, as(kaiToken))).body;
      assert.equal(session.course_id, booked.body.id, "drawn from the course's reservation");
      await shot(kai, "auto-assigned");
      await row.locator('.badge[data-state="ready"]').waitFor({ timeout: BOOT_MS });
      await kai.locator(".course-ready").getByText("Your course desktop for Open lab is ready").waitFor();
      await row.locator(".expires").getByText(/^ends at \d\d:\d\d$/).waitFor();
      await shot(kai, "course-desktop-ready");
      assert.deepEqual(kai.problems, []);
      ok(await site.api("DELETE", `/sessions/${id}`, as(kaiToken)), 202, "end it");
    } finally {
      await site.api("PUT", `/templates/${demo.id}/policy`, { ...as(admin), body: demo.policy });
      await site.api("DELETE", `/courses/${booked.body.id}`, as(admin));
      await ctx.close();
    }
  });

  await userContext.close();
  await stewardContext.close();
}
