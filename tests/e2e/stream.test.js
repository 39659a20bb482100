// The H.264 stream viewer in a real headless Chromium against the real server and the demo
// desktop: Connect in the portal opens it; WebCodecs decodes the guest's screen (not blank);
// typed keys reach the guest and change the pixels of the prompt's lines only; the overlay
// counts decoded frames and shows the round trip from the acknowledgements; an idle guest costs
// zero video bytes per second; resize requests reach QEMU (which refuses them for the demo's
// VGA); the clipboard follows the template's policy; a browser without WebCodecs, or whose
// WebCodecs refuses H.264, gets the classic console. Screenshots: artifacts/stream-*.png.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";

import { ARTIFACTS, BOOT_MS, Site, browser, page, portalLogin, typeKeys } from "./support.js";

const DEMO = "osvdi demo desktop";
// Typed at the guest's shell: its answer also goes to the serial port, where the test reads it
// (and the capital S checks that Shift reaches the guest).
const COMMAND = "echo osvdi-$((6*7)) | tee /dev/ttyS0";

let site;
let chrome;
let admin;

before(async () => {
  site = await Site.start();
  chrome = await browser();
  admin = await site.login("admin", site.adminPassword);
});

after(async () => {
  if (chrome) await chrome.close();
  if (site) await site.stop();
});

let shots = 0;
/** A screenshot as artifacts/stream-NN-name.png (its own series: other files keep theirs). */
async function shot(target, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  shots += 1;
  const path = join(ARTIFACTS, `stream-${String(shots).padStart(2, "0")}-${name}.png`);
  return target.screenshot({ path });
}

const counters = (viewer) => viewer.evaluate(() => ({ ...window.osvdiStream }));

async function waitFor(viewer, predicate, what, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const c = await counters(viewer);
    if (predicate(c)) return c;
    if (Date.now() > deadline) throw new Error(`${what}: ${JSON.stringify(c)}`);
    await viewer.waitForTimeout(100);
  }
}

/** Waits until no video arrived for `quietMs`; returns the counters then. */
async function settle(viewer, quietMs = 2000, ms = 30_000) {
  const deadline = Date.now() + ms;
  let last = await counters(viewer);
  let since = Date.now();
  while (Date.now() < deadline) {
    await viewer.waitForTimeout(250);
    const c = await counters(viewer);
    if (c.videoBytes !== last.videoBytes) {
      last = c;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return c;
    }
  }
  throw new Error("the stream never went quiet");
}

/** Per pixel row of a PNG: how many pixels are not black (`base` omitted) or changed from
 * `base` (another PNG of the same size) the way text appearing or going does (a sum of
 * channel differences over 300 of 765: lossy coding alone moves settled text by less than
 * 150). Decoded by Chromium in a blank page. */
async function rowCounts(scratch, png, base) {
  return scratch.evaluate(
    async ([a, b]) => {
      const pixels = async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const bmp = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
        const c = new OffscreenCanvas(bmp.width, bmp.height);
        const ctx = c.getContext("2d");
        ctx.drawImage(bmp, 0, 0);
        return ctx.getImageData(0, 0, bmp.width, bmp.height);
      };
      const pa = await pixels(a);
      const pb = b ? await pixels(b) : null;
      const rows = [];
      for (let y = 0; y < pa.height; y++) {
        let n = 0;
        for (let x = 0; x < pa.width; x++) {
          const i = (y * pa.width + x) * 4;
          const d = pb
            ? Math.abs(pa.data[i] - pb.data[i]) + Math.abs(pa.data[i + 1] - pb.data[i + 1]) + Math.abs(pa.data[i + 2] - pb.data[i + 2])
            : pa.data[i] + pa.data[i + 1] + pa.data[i + 2];
          if (d > (pb ? 300 : 96)) n += 1;
        }
        rows.push(n);
      }
      return rows;
    },
    [png.toString("base64"), base ? base.toString("base64") : null],
  );
}

const rowsWith = (counts) => counts.flatMap((n, y) => (n > 0 ? [y] : []));

test("the H.264 stream viewer, end to end", async (t) => {
  const context = await chrome.newContext({ viewport: { width: 1280, height: 900 } });
  const portal = await page(context);
  const scratch = await context.newPage();
  let id;
  let viewer;
  let template;

  await t.test("WebCodecs H.264 decoding is there in this Chromium", async () => {
    await portal.goto(site.url("/"));
    const s = await portal.evaluate(async () =>
      typeof VideoDecoder === "function" ? (await VideoDecoder.isConfigSupported({ codec: "avc1.42E01F", optimizeForLatency: true })).supported : "no VideoDecoder",
    );
    assert.equal(s, true, "headless Chromium decodes H.264 with WebCodecs (software)");
  });

  await t.test("launch the demo desktop and Connect from the portal", async () => {
    await portalLogin(portal, site, "admin", site.adminPassword);
    const card = portal.locator("[data-template]", { has: portal.locator("h2", { hasText: DEMO }) });
    template = await card.getAttribute("data-template");
    await card.getByRole("button", { name: "Launch" }).click();
    await portal.getByRole("heading", { name: "My desktops" }).waitFor();
    const row = portal.locator("tr[data-session]").first();
    id = await row.getAttribute("data-session");
    await row.locator('.badge[data-state="ready"]').waitFor({ timeout: BOOT_MS });
    await site.waitSerial(id, "OSVDI-READY");
    assert.equal(await row.getByRole("link", { name: /^Classic console \(VNC\)/ }).getAttribute("href"), `/console#${id}`);
    [viewer] = await Promise.all([context.waitForEvent("page"), row.getByRole("link", { name: /^Connect/ }).click()]);
    viewer.problems = [];
    viewer.on("pageerror", (e) => viewer.problems.push(e.message));
    viewer.on("console", (m) => {
      if (m.type() === "error") viewer.problems.push(m.text());
    });
    assert.equal(new URL(viewer.url()).pathname, "/stream");
    await viewer.locator('body[data-state="connected"]').waitFor({ timeout: 30_000 });
  });

  let initial;
  await t.test("the guest's screen is decoded and shown", async () => {
    const c = await waitFor(viewer, (c) => c.framesDecoded > 0, "a decoded frame");
    assert.ok(c.codec && c.codec.startsWith("avc1."), c.codec);
    assert.ok(c.width >= 640 && c.height >= 400, `${c.width}x${c.height}`);
    await settle(viewer);
    initial = await shot(viewer.locator("#video"), "desktop");
    const lit = rowsWith(await rowCounts(scratch, initial));
    assert.ok(lit.length > 10, `the canvas shows text, not a blank screen (${lit.length} rows lit)`);
    await shot(viewer, "viewer");
  });

  await t.test("an idle guest costs zero video bytes per second", async () => {
    const a = await settle(viewer);
    await viewer.waitForTimeout(5000);
    const b = await counters(viewer);
    assert.equal(b.videoBytes - a.videoBytes, 0, "no video bytes in 5 s of an idle guest");
    assert.equal(b.framesReceived - a.framesReceived, 0);
  });

  await t.test("typed keys appear on the prompt's lines, nowhere else", async () => {
    const start = await counters(viewer);
    const litBefore = rowsWith(await rowCounts(scratch, initial));
    await viewer.locator("#video").click();
    await typeKeys(viewer, COMMAND);
    await viewer.keyboard.press("Enter");
    await waitFor(viewer, (c) => c.framesDecoded > start.framesDecoded, "frames after typing");
    await settle(viewer);
    const after = await shot(viewer.locator("#video"), "typed");
    const typed = await counters(viewer);
    t.diagnostic(
      `typing ${COMMAND.length} characters and Enter: ${typed.framesReceived - start.framesReceived} pictures, ` +
        `${typed.videoBytes - start.videoBytes} video bytes; last picture: change on the desktop → drawn in ${typed.latencyMs} ms`,
    );
    assert.ok(typed.latencyMs >= 0 && typed.latencyMs < 5000, `latency ${typed.latencyMs} ms`);
    await site.waitSerial(id, "osvdi-42");
    const changed = rowsWith(await rowCounts(scratch, after, initial));
    assert.ok(changed.length > 0, "the screen changed");
    const height = (await rowCounts(scratch, after)).length;
    const prompt = litBefore[litBefore.length - 1];
    const [top, bottom] = [changed[0], changed[changed.length - 1]];
    // The prompt's line (typed command) and the two below it (the answer, the next prompt).
    assert.ok(top >= prompt - 0.05 * height, `changes start at the prompt (row ${top}, prompt ends at ${prompt})`);
    assert.ok(bottom - top < 0.25 * height, `changes stay within a few text lines (rows ${top}..${bottom} of ${height})`);
    assert.ok(litBefore[0] < top, "the lines above the prompt are untouched");
  });

  await t.test("the overlay counts decoded frames and shows the round trip", async () => {
    await viewer.getByRole("button", { name: "Stats" }).click();
    const stats = viewer.locator("#stats");
    await stats.waitFor();
    // The page's figures refresh every second; the server's after a second of activity.
    await viewer.locator("#video").click();
    await viewer.keyboard.press("Space");
    await viewer.keyboard.press("Backspace");
    const c = await waitFor(viewer, (c) => c.server && typeof c.server.rtt_ms === "number", "server figures with a round trip", 10_000);
    await viewer.waitForTimeout(1100);
    const text = await stats.textContent();
    const decoded = Number(text.match(/decoded\s+(\d+) frames/)[1]);
    assert.ok(decoded > 1, text);
    assert.match(text, /round trip\s+\d+(\.\d+)? ms/);
    assert.ok(c.server.in_flight <= 3, JSON.stringify(c.server));
    t.diagnostic(`figures: ${JSON.stringify({ ...c.server, videoBytes: c.videoBytes, framesDecoded: c.framesDecoded, cursorShapes: c.cursorShapes })}`);
    await shot(viewer, "stats-overlay");
  });

  await t.test("a resize request reaches the desktop, which refuses it (standard VGA)", async () => {
    const resize = viewer.getByLabel("Resize desktop");
    assert.equal(await resize.isVisible(), true, "the desktop announces ExtendedDesktopSize");
    // Switching it on asks for the size of the window's screen area at once (the answer may
    // come back before a click could be checked, so the switch is clicked, not "checked").
    await viewer.setViewportSize({ width: 1000, height: 700 });
    await resize.click();
    const c = await waitFor(viewer, (c) => c.resizeRefused !== null, "QEMU's answer to SetDesktopSize", 10_000);
    assert.equal(c.resizeRefused, 3, "QEMU: invalid screen layout (the device cannot resize)");
    assert.equal(await resize.isDisabled(), true);
    assert.equal(await resize.isChecked(), false);
    assert.deepEqual([c.width, c.height], [1024, 768], "the desktop kept its size");
    await viewer.setViewportSize({ width: 1280, height: 900 });
  });

  await t.test("the clipboard follows the template's policy", async () => {
    assert.equal(await viewer.getByRole("button", { name: "Clipboard" }).isVisible(), true, "allowed by default");
    const current = (await site.api("GET", `/templates/${template}`, { token: admin.token })).body.policy;
    const set = await site.api("PUT", `/templates/${template}/policy`, { token: admin.token, body: { ...current, clipboard: false } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    await viewer.getByRole("button", { name: "Disconnect" }).click();
    await viewer.locator('body[data-state="disconnected"]').waitFor();
    const before = await counters(viewer);
    await viewer.getByRole("button", { name: "Reconnect" }).click();
    await viewer.locator('body[data-state="connected"]').waitFor({ timeout: 30_000 });
    await waitFor(viewer, (c) => c.keyframes > before.keyframes && c.framesDecoded > before.framesDecoded, "a keyframe decoded after reconnecting");
    assert.equal(await viewer.getByRole("button", { name: "Clipboard" }).isVisible(), false, "off by policy");
  });

  for (const [what, script, reason] of [
    ["without WebCodecs", () => delete window.VideoDecoder, /classic console: this browser has no WebCodecs VideoDecoder/],
    [
      "when WebCodecs refuses H.264",
      () => {
        VideoDecoder.isConfigSupported = async (config) => ({ supported: false, config });
      },
      /classic console: this browser cannot decode H.264 with WebCodecs/,
    ],
  ]) {
    await t.test(`${what} the classic console takes over`, async () => {
      const ctx = await chrome.newContext({ viewport: { width: 1280, height: 900 } });
      await ctx.addInitScript(script);
      const p = await page(ctx);
      await portalLogin(p, site, "admin", site.adminPassword);
      await p.goto(site.url(`/stream#${id}`));
      await p.waitForURL((u) => u.pathname === "/console", { timeout: 10_000 });
      await p.locator('body[data-state="connected"]').waitFor({ timeout: 30_000 });
      await p.locator("#screen canvas").first().waitFor();
      assert.match(await p.locator("#status").textContent(), reason);
      await shot(p, "fallback-console");
      assert.deepEqual(p.problems, []);
      await ctx.close();
    });
  }

  await t.test("no page error, no CSP violation", async () => {
    assert.deepEqual(viewer.problems, []);
    assert.deepEqual(portal.problems, []);
  });

  await context.close();
});
