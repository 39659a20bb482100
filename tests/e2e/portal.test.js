// End to end, in a real headless Chromium against the real `osvdi serve` with the demo
// template: log in, launch, watch it become ready, use the console with the keyboard and see
// the guest answer, disconnect and reconnect from another browser, suspend and resume from the
// portal; and the security cases: escaped names, token replay, other people's desktops and
// consoles, cross-site requests, no console token in the server log. Then access policies and
// courses (access.js). Screenshots of each step go to tests/e2e/artifacts/.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { accessAndCourses } from "./access.js";
import {
  BOOT_MS,
  Site,
  browser,
  page,
  portalLogin,
  screenPixels,
  shot,
  typeKeys,
  waitScreenChange,
} from "./support.js";

const DEMO = "osvdi demo desktop";
const EVIL_NAME = `<img src=x onerror="window.__xss=1">Evil & Co`;
const EVIL_DESCRIPTION = `<script>window.__xss=2</script><b>not bold</b>`;

// A named network for policies, and room for two demo desktops (1 vCPU each) for the courses.
const CONFIG = `[networks]
campus = ["10.0.0.0/8"]

[desktops]
host_vcpus = 2
host_memory_mb = 2048
`;

let site;
let chrome;
let admin;
const consoleTokens = [];

before(async () => {
  site = await Site.start({ config: CONFIG });
  chrome = await browser();
  admin = await site.login("admin", site.adminPassword);
});

after(async () => {
  if (chrome) await chrome.close();
  if (site) await site.stop();
});

/** The portal's row of a session, and its state. */
const row = (p, id) => p.locator(`tr[data-session="${id}"]`);
const waitState = (p, id, state, timeout = 60_000) =>
  row(p, id).locator(`.badge[data-state="${state}"]`).waitFor({ timeout });

/** Keeps the console tokens the pages of `context` get, to try them again later. */
function keepTokens(context) {
  context.on("response", async (r) => {
    if (r.url().endsWith("/console") && r.request().method() === "POST" && r.ok()) {
      consoleTokens.push((await r.json()).token);
    }
  });
  return context;
}

/** Opens the console from the portal's "Classic console (VNC)" button (Connect opens the H.264
 * viewer, tested in stream.test.js); resolves once it is connected. */
async function connectFromPortal(portal, id) {
  const [viewer] = await Promise.all([
    portal.context().waitForEvent("page"),
    row(portal, id).getByRole("link", { name: /^Classic console/ }).click(),
  ]);
  viewer.problems = [];
  viewer.on("pageerror", (e) => viewer.problems.push(e.message));
  await viewer.locator('body[data-state="connected"]').waitFor({ timeout: 30_000 });
  await viewer.locator("#screen canvas").first().waitFor();
  return viewer;
}

/** Types a command on the console and waits for its answer on the serial port and a change
 * of the screen. */
async function run(viewer, id, command, answer) {
  await viewer.locator("#screen canvas").first().click();
  const before = await screenPixels(viewer);
  await typeKeys(viewer, command);
  await viewer.keyboard.press("Enter");
  await site.waitSerial(id, answer);
  await waitScreenChange(viewer, before);
}

test("the portal and the console, end to end", async (t) => {
  const context = keepTokens(await chrome.newContext({ viewport: { width: 1280, height: 800 } }));
  const portal = await page(context);
  let id;

  await t.test("log in", async () => {
    await portal.goto(site.url("/"));
    await portal.getByRole("heading", { name: "Log in to osvdi" }).waitFor();
    await shot(portal, "login");
    await portal.getByLabel("User name").fill("admin");
    await portal.getByLabel("Password").fill("wrong password");
    await portal.getByRole("button", { name: "Log in" }).click();
    await portal.getByRole("alert").filter({ hasText: "Wrong user name or password" }).waitFor();
    await portal.getByLabel("Password").fill(site.adminPassword);
    await portal.getByRole("button", { name: "Log in" }).click();
    await portal.getByRole("heading", { name: "Desktops to launch" }).waitFor();
    await portal.locator("[data-template] h2", { hasText: DEMO }).waitFor();
    await shot(portal, "catalogue");
  });

  await t.test("names and descriptions with HTML are shown as text", async () => {
    const created = await site.api("POST", "/templates", {
      token: admin.token,
      body: { name: EVIL_NAME, description: EVIL_DESCRIPTION, vcpus: 1, memory_mb: 256, disk_gb: 1, visibility: "everyone" },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const up = await site.api("PUT", `/templates/${created.body.id}/image`, { token: admin.token, body: await site.qcow2() });
    assert.equal(up.status, 201, JSON.stringify(up.body));
    await portal.reload();
    const card = portal.locator(`[data-template="${created.body.id}"]`);
    await card.waitFor();
    assert.equal(await card.locator("h2").textContent(), EVIL_NAME);
    assert.equal(await card.locator(".description").textContent(), EVIL_DESCRIPTION);
    assert.equal(await portal.locator("main img, main script, main b").count(), 0, "no markup from the data");
    await portal.goto(site.url("/#/manage"));
    await portal.getByRole("link", { name: EVIL_NAME }).waitFor();
    assert.equal(await portal.evaluate(() => window.__xss), undefined, "nothing ran");
    await portal.goto(site.url("/#/"));
    await card.waitFor();
    await shot(portal, "names-escaped");
    assert.equal((await site.api("DELETE", `/templates/${created.body.id}`, { token: admin.token })).status, 204);
  });

  await t.test("a steward creates a template, uploads its image and shares it", async () => {
    for (const [path, body] of [
      ["/users", { name: "stella", role: "steward", password: "stella-password-1" }],
      ["/groups", { name: "physics" }],
    ]) {
      assert.equal((await site.api("POST", path, { token: admin.token, body })).status, 201, path);
    }
    const ctx = await chrome.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await page(ctx);
    await portalLogin(p, site, "stella", "stella-password-1");
    await p.getByRole("link", { name: "Templates" }).click();
    await p.getByText("New template").click();
    await p.getByLabel("Name", { exact: true }).fill("Physics lab");
    await p.getByLabel("Description").fill("Lab sessions of PHY-101");
    await p.getByLabel("vCPUs").fill("1");
    await p.getByLabel("Memory (MiB)").fill("256");
    await p.getByLabel("Disk (GB)").fill("1");
    await p.getByRole("button", { name: "Create template" }).click();
    await p.getByRole("heading", { name: "Physics lab", level: 1 }).waitFor();
    await p.getByLabel("Image file").setInputFiles(await site.qcow2Path());
    await p.getByRole("button", { name: "Upload", exact: true }).click();
    await p.getByText("Image uploaded: version 1").waitFor();
    await p.locator("tr", { hasText: "v1" }).getByText("ready").waitFor();
    await p.getByLabel("Shared with").selectOption("groups");
    await p.getByLabel("Groups").fill("physics");
    await p.getByRole("button", { name: "Save sharing" }).click();
    await p.getByText("Sharing saved").waitFor();
    await shot(p, "steward-template");
    const id = p.url().split("/").pop();
    const t = await site.api("GET", `/templates/${id}`, { token: admin.token });
    assert.deepEqual([t.body.visibility, t.body.groups, t.body.current_version], ["groups", ["physics"], 1]);
    assert.deepEqual(p.problems, []);
    await ctx.close();
  });

  await t.test("launch and watch it become ready", async () => {
    await portal
      .locator("[data-template]", { has: portal.locator("h2", { hasText: DEMO }) })
      .getByRole("button", { name: "Launch" })
      .click();
    await portal.getByRole("heading", { name: "My desktops" }).waitFor();
    const first = portal.locator("tr[data-session]").first();
    await first.waitFor();
    id = await first.getAttribute("data-session");
    await shot(portal, "starting");
    await waitState(portal, id, "ready", BOOT_MS);
    assert.equal(await row(portal, id).locator(".conn").getAttribute("data-connected"), "false");
    await shot(portal, "ready");
  });

  await t.test("the console: type a command, see the guest's answer", async () => {
    const viewer = await connectFromPortal(portal, id);
    await site.waitSerial(id, "OSVDI-READY");
    await viewer.waitForTimeout(1000);
    await shot(viewer, "console");
    await run(viewer, id, "echo osvdi-$((6*7)) | tee /dev/ttyS0", "osvdi-42");
    await shot(viewer, "console-answer");
    // The portal shows it connected (pushed by server-sent events).
    await row(portal, id).locator('.conn[data-connected="true"]').waitFor();
    await shot(portal, "connected");
    // Ctrl-Alt-Del and the clipboard panel are there and usable.
    assert.equal(await viewer.getByRole("button", { name: "Ctrl-Alt-Del" }).isEnabled(), true);
    await viewer.getByRole("button", { name: "Clipboard" }).click();
    await viewer.getByLabel(/Text copied in the desktop/).waitFor();
    assert.deepEqual(viewer.problems, []);
    await viewer.close();
  });

  await t.test("disconnect, then reconnect from another browser", async () => {
    await row(portal, id).locator('.conn[data-connected="false"]').waitFor();
    await shot(portal, "disconnected");
    const other = await browser();
    try {
      const p = await page(keepTokens(await other.newContext({ viewport: { width: 1280, height: 800 } })));
      await portalLogin(p, site, "admin", site.adminPassword);
      await p.goto(site.url("/#/desktops"));
      await waitState(p, id, "ready");
      const viewer = await connectFromPortal(p, id);
      await run(viewer, id, "echo again-$((2+3)) | tee /dev/ttyS0", "again-5");
      await shot(viewer, "reconnected-other-browser");
      await viewer.close();
      assert.deepEqual(p.problems, []);
    } finally {
      await other.close();
    }
  });

  await t.test("suspend and resume from the portal; the guest keeps its state", async () => {
    await row(portal, id).locator('.conn[data-connected="false"]').waitFor();
    await row(portal, id).getByRole("button", { name: /^Suspend/ }).click();
    await waitState(portal, id, "suspended");
    await shot(portal, "suspended");
    await row(portal, id).getByRole("button", { name: /^Resume/ }).click();
    await waitState(portal, id, "ready");
    await shot(portal, "resumed");
    const viewer = await connectFromPortal(portal, id);
    await viewer.waitForTimeout(500);
    await run(viewer, id, "echo resumed-$((3*3)) | tee /dev/ttyS0", "resumed-9");
    await shot(viewer, "console-after-resume");
    await viewer.close();
  });

  await t.test("the admin pages", async () => {
    for (const [link, heading] of [
      ["Users", "Users"],
      ["Groups", "Groups"],
      ["GPUs", "GPUs"],
      ["All sessions", "All sessions"],
      ["Audit log", "Audit log"],
    ]) {
      await portal.getByRole("navigation").getByRole("link", { name: link, exact: true }).click();
      await portal.getByRole("heading", { name: heading, level: 1 }).waitFor();
      if (link === "All sessions") {
        await portal.locator(`tr[data-session="${id}"]`).getByText("Ready").waitFor();
        await shot(portal, "admin-sessions");
      }
    }
    await portal.getByLabel("Action").fill("session.console");
    await portal.getByRole("button", { name: "Filter" }).click();
    await portal.locator("table.audit tbody tr").first().getByText("session.console").waitFor();
    await shot(portal, "admin-audit");
    assert.deepEqual(portal.problems, []);
  });

  await t.test("a console token works once", async () => {
    assert.ok(consoleTokens.length >= 3, "the viewer asked for a fresh token each time");
    const used = consoleTokens[0];
    const outcome = await portal.evaluate(
      (url) =>
        new Promise((resolve) => {
          const ws = new WebSocket(url, ["binary"]);
          ws.onopen = () => resolve("opened");
          ws.onerror = () => resolve("refused");
        }),
      site.url(`/ws/console?token=${used}`).replace("http:", "ws:"),
    );
    assert.equal(outcome, "refused");
    const audit = await site.api("GET", "/audit?action=session.console", { token: admin.token });
    assert.ok(
      audit.body.some((e) => e.outcome === "denied" && e.detail === "console token used again"),
      "the replay is audited",
    );
  });

  await t.test("another person sees neither the desktop nor its console", async () => {
    const made = await site.api("POST", "/users", { token: admin.token, body: { name: "bob", password: "bob-password-1" } });
    assert.equal(made.status, 201);
    const bobsContext = await chrome.newContext({ viewport: { width: 1280, height: 800 } });
    const bob = await page(bobsContext);
    await portalLogin(bob, site, "bob", "bob-password-1");
    await bob.goto(site.url("/#/desktops"));
    await bob.getByText("You have no desktops running").waitFor();
    await bob.goto(site.url(`/console#${id}`));
    await bob.locator('body[data-state="failed"]').waitFor();
    assert.match(await bob.locator("#status").textContent(), /Session not found/);
    await shot(bob, "other-person-refused");
    // Not even with a token the owner got.
    const token = (await site.api("POST", `/sessions/${id}/console`, { token: admin.token })).body.token;
    consoleTokens.push(token);
    const outcome = await bob.evaluate(
      (url) =>
        new Promise((resolve) => {
          const ws = new WebSocket(url, ["binary"]);
          ws.onopen = () => resolve("opened");
          ws.onerror = () => resolve("refused");
        }),
      site.url(`/ws/console?token=${token}`).replace("http:", "ws:"),
    );
    assert.equal(outcome, "refused");
    const bobLogin = await site.login("bob", "bob-password-1");
    for (const [method, path] of [
      ["GET", `/sessions/${id}`],
      ["POST", `/sessions/${id}/console`],
      ["POST", `/sessions/${id}/suspend`],
      ["DELETE", `/sessions/${id}`],
    ]) {
      assert.equal((await site.api(method, path, { token: bobLogin.token })).status, 404, `${method} ${path}`);
    }
    await bobsContext.close();
  });

  await t.test("cross-site requests with the cookie are refused", async () => {
    const before = (await site.api("GET", "/sessions?live=true", { token: admin.token })).body.length;
    const evil = "http://evil.example";
    const template = (await site.api("GET", "/templates", { token: admin.token })).body.find((x) => x.name === DEMO).id;
    for (const [method, path, body] of [
      ["POST", "/sessions", { template_id: template }],
      ["POST", `/sessions/${id}/console`, undefined],
      ["POST", `/sessions/${id}/suspend`, undefined],
      ["DELETE", `/sessions/${id}`, undefined],
      ["POST", "/users", { name: "mallory", password: "mallory-password-1", role: "admin" }],
    ]) {
      const res = await site.api(method, path, { cookie: admin.cookie, origin: evil, body });
      assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(res.body)}`);
    }
    const same = await site.api("GET", "/sessions?live=true", { cookie: admin.cookie, origin: evil });
    assert.equal(same.status, 200, "reading is fine");
    assert.equal(same.body.length, before);
    assert.equal(same.body[0].state, "ready", "nothing happened to the desktop");
  });

  await t.test("end from the portal", async () => {
    await portal.goto(site.url("/#/desktops"));
    await waitState(portal, id, "ready");
    await row(portal, id).getByRole("button", { name: /^End/ }).click();
    await waitState(portal, id, "ended");
    await shot(portal, "ended");
    assert.deepEqual(portal.problems, []);
  });

  await t.test("no console token in the server log", async () => {
    const log = await site.serverLog();
    assert.ok(log.includes("/ws/console"), "the relay's requests are logged, by route");
    for (const token of consoleTokens) assert.ok(!log.includes(token), "a console token is in the log");
    assert.ok(!log.includes(admin.token.replace(/^osvdi_/, "")), "a login token is in the log");
  });

  await context.close();
});

test("access policies and courses", async (t) => {
  await accessAndCourses(t, { site, chrome, admin });
});
