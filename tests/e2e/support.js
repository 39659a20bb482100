// The pieces the end-to-end tests stand on: the real `osvdi` binary on a throwaway data
// directory, Debian's Chromium driven by playwright-core, screenshots, the REST API from Node.

import { spawn, execFile } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

const exec = promisify(execFile);

export const ARTIFACTS = new URL("./artifacts/", import.meta.url).pathname;
export const BOOT_MS = 120_000;

export const osvdiBin = () => {
  const bin = process.env.OSVDI_BIN;
  if (!bin) throw new Error("Set OSVDI_BIN to the osvdi binary (make e2e does)");
  return bin;
};

/** A site: `osvdi template demo` on a fresh data directory, then `osvdi serve` on a free port,
 * with `config` (TOML text) as its configuration file when given, on `listen` when given. */
export class Site {
  static async start({ config, listen } = {}) {
    const site = new Site();
    site.dir = await mkdtemp(join(tmpdir(), "osvdi-e2e-"));
    site.data = join(site.dir, "data");
    const serveArgs = ["serve", "--data-dir", site.data, "--listen", listen || "127.0.0.1:0"];
    if (config) {
      site.config = join(site.dir, "osvdi.toml");
      await writeFile(site.config, config);
      serveArgs.push("--config", site.config);
    }
    const { stdout } = await exec(osvdiBin(), ["template", "demo", "--data-dir", site.data], {
      env: { ...process.env, RUST_LOG: "warn" },
    });
    const pw = stdout.match(/password '([^']+)'/);
    if (!pw) throw new Error(`no admin password in: ${stdout}`);
    site.adminPassword = pw[1];
    site.log = join(site.dir, "serve.log");
    const log = createWriteStream(site.log);
    site.server = spawn(osvdiBin(), serveArgs, {
      env: { ...process.env, RUST_LOG: "debug" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    site.server.stderr.pipe(log);
    site.base = await new Promise((resolve, reject) => {
      let out = "";
      site.server.stdout.on("data", (chunk) => {
        out += chunk;
        const m = out.match(/osvdi listening on (http:\/\/\S+)/);
        if (m) resolve(m[1]);
      });
      site.server.on("exit", (code) => reject(new Error(`osvdi serve exited with ${code}: ${out}`)));
    });
    return site;
  }

  url(path) {
    return `${this.base}${path}`;
  }

  /** One API call from Node; returns {status, body}. */
  async api(method, path, { token, cookie, origin, body } = {}) {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (cookie) headers.cookie = cookie;
    if (origin) headers.origin = origin;
    if (body !== undefined && !(body instanceof Uint8Array)) headers["content-type"] = "application/json";
    const res = await fetch(this.url(`/api/v1${path}`), {
      method,
      headers,
      body: body === undefined ? undefined : body instanceof Uint8Array ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  async login(username, password) {
    const res = await this.api("POST", "/auth/login", { body: { username, password } });
    if (res.status !== 200) throw new Error(`login ${username}: ${res.status}`);
    return { token: res.body.token, cookie: `osvdi_session=${res.body.token}` };
  }

  serialLog(session) {
    return readFile(join(this.data, "desktops", session, "serial.log"), "utf8").catch(() => "");
  }

  /** Waits until the desktop's serial port printed `text`. */
  async waitSerial(session, text, ms = 30_000) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ((await this.serialLog(session)).includes(text)) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`the guest never printed ${text}; serial: ${(await this.serialLog(session)).slice(-500)}`);
  }

  /** A small qcow2 to upload as a template's image: its path. */
  async qcow2Path() {
    const path = join(this.dir, "tiny.qcow2");
    await exec("qemu-img", ["create", "-q", "-f", "qcow2", path, "16M"]);
    return path;
  }

  /** The bytes of a small qcow2. */
  async qcow2() {
    return new Uint8Array(await readFile(await this.qcow2Path()));
  }

  async serverLog() {
    return readFile(this.log, "utf8");
  }

  /** Stops the server, then the desktops (which outlive it by design), then removes it all. */
  async stop() {
    if (this.server && this.server.exitCode === null) {
      const exited = new Promise((r) => this.server.once("exit", r));
      this.server.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (this.server.exitCode === null) this.server.kill("SIGKILL");
    }
    const desktops = join(this.data || "/nonexistent", "desktops");
    for (const d of await readdir(desktops).catch(() => [])) {
      const pid = await readFile(join(desktops, d, "qemu.pid"), "utf8").catch(() => "");
      if (pid.trim()) {
        try {
          process.kill(Number(pid.trim()), "SIGKILL");
        } catch {
          /* already gone */
        }
      }
    }
    if (this.dir && !process.env.OSVDI_E2E_KEEP) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Debian's Chromium, headless, with the flags this machine needs and a fresh profile. */
export async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A page that records uncaught errors and CSP violations. */
export async function page(context) {
  const p = await context.newPage();
  p.problems = [];
  p.on("pageerror", (e) => p.problems.push(`page error: ${e.message}`));
  p.on("console", (m) => {
    if (m.type() === "error" && /Content.Security.Policy|Refused to/i.test(m.text())) p.problems.push(`CSP: ${m.text()}`);
  });
  p.on("dialog", (d) => d.accept());
  return p;
}

let shots = 0;
/** Saves a screenshot of a page or an element as artifacts/NN-name.png (the first one of a run
 * removes the previous run's). */
export async function shot(p, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  if (shots === 0) {
    for (const f of await readdir(ARTIFACTS)) if (/^\d+-.*\.png$/.test(f)) await rm(join(ARTIFACTS, f));
  }
  shots += 1;
  const path = join(ARTIFACTS, `${String(shots).padStart(2, "0")}-${name}.png`);
  await p.screenshot({ path });
  return path;
}

/** Logs in through the portal's form. */
export async function portalLogin(p, site, user, password) {
  await p.goto(site.url("/"));
  await p.getByLabel("User name").fill(user);
  await p.getByLabel("Password").fill(password);
  await p.getByRole("button", { name: "Log in" }).click();
  await p.getByRole("heading", { name: "Desktops to launch" }).waitFor();
}

const SHIFTED = {
  "!": "1", "@": "2", "#": "3", $: "4", "%": "5", "^": "6", "&": "7", "*": "8", "(": "9", ")": "0",
  _: "-", "+": "=", "<": ",", ">": ".", "?": "/", ":": ";", '"': "'", "|": "\\", "~": "`", "{": "[", "}": "]",
};

/** Types on a US keyboard, pressing Shift where a person would: the console sends scan codes,
 * so "$" must be Shift+4, not a bare key event. */
export async function typeKeys(p, text) {
  for (const ch of text) {
    if (ch === " ") await p.keyboard.press("Space");
    else if (SHIFTED[ch]) await p.keyboard.press(`Shift+${SHIFTED[ch]}`);
    else if (/[A-Z]/.test(ch)) await p.keyboard.press(`Shift+${ch.toLowerCase()}`);
    else await p.keyboard.press(ch);
  }
}

/** The console's screen as a data URL (to compare before and after). */
export async function screenPixels(p) {
  return p.evaluate(() => {
    const c = document.querySelector("#screen canvas");
    return c ? c.toDataURL() : "";
  });
}

/** Waits until the console's screen differs from `before`. */
export async function waitScreenChange(p, before, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const now = await screenPixels(p);
    if (now && now !== before) return now;
    await p.waitForTimeout(200);
  }
  throw new Error("the console's screen did not change");
}
