// Single sign-on end to end: headless Chromium, the real `osvdi serve`, and a real OpenID
// provider (panva's oidc-provider, oidc-idp.js) on loopback. Logging in with the provider
// creates the account; groups and entitlements map to osvdi groups and a role; a group lost at
// the provider is lost at the next login; logout continues at the provider; replayed
// callbacks, cancelled consent, a missing claim and an unreachable provider each give a clear
// page; admins see the rules and why someone has access. Screenshots: artifacts/oidc-NN-*.png.

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { CLIENT_ID, CLIENT_SECRET, startIdp } from "./oidc-idp.js";
import { ARTIFACTS, Site, browser, page, portalLogin } from "./support.js";

const DEMO = "osvdi demo desktop";
const EGI = "urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu";

const config = (issuer, publicUrl) => `
[oidc]
public_url = "${publicUrl}"

[oidc.providers.uni]
display_name = "Test University"
issuer = "${issuer}"
client_id = "${CLIENT_ID}"
client_secret = "${CLIENT_SECRET}"
scopes = ["openid", "profile", "email", "groups", "eduperson"]
required_claims = ["email"]

# Nothing listens on port 9: this provider is always unreachable.
[oidc.providers.closed]
display_name = "Closed University"
issuer = "http://127.0.0.1:9"
client_id = "osvdi"

[[oidc.rules]]
claim = "groups"
value = "imaging"
group = "imaging"

[[oidc.rules]]
claim = "eduperson_entitlement"
value_prefix = "urn:mace:egi.eu:group:vo.example.org:"
group = "vo-example"

[[oidc.rules]]
provider = "uni"
claim = "groups"
value = "vdi-stewards"
role = "steward"
`;

let site;
let idp;
let chrome;
let admin;
let demoId;

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

let shots = 0;
async function shot(p, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  shots += 1;
  await p.screenshot({ path: join(ARTIFACTS, `oidc-${String(shots).padStart(2, "0")}-${name}.png`) });
}

before(async () => {
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  idp = await startIdp({ publicUrl, provider: "uni" });
  site = await Site.start({ config: config(idp.issuer, publicUrl), listen: `127.0.0.1:${port}` });
  chrome = await browser();
  admin = await site.login("admin", site.adminPassword);
  // The demo desktop is for the imaging group only.
  assert.equal((await site.api("POST", "/groups", { ...admin, body: { name: "imaging" } })).status, 201);
  const templates = (await site.api("GET", "/templates", admin)).body;
  demoId = templates.find((t) => t.name === DEMO).id;
  const shared = await site.api("PUT", `/templates/${demoId}/sharing`, { ...admin, body: { visibility: "groups", groups: ["imaging"] } });
  assert.equal(shared.status, 200, JSON.stringify(shared.body));
});

after(async () => {
  if (chrome) await chrome.close();
  if (site) await site.stop();
  if (idp) await idp.stop();
});

/** A browser context that reaches loopback only. */
async function loopbackContext() {
  const context = await chrome.newContext({ viewport: { width: 1100, height: 760 } });
  await context.route(
    (url) => url.hostname !== "127.0.0.1" && url.hostname !== "localhost",
    (route) => route.abort(),
  );
  return context;
}

/** On the provider's development pages: logs in as `login`, gives consent if asked, and
 * returns once the browser is back at osvdi. */
async function loginAtProvider(p, login) {
  await p.locator('input[name="login"]').waitFor();
  await p.locator('input[name="login"]').fill(login);
  await p.locator('input[name="password"]').fill("any password");
  await p.getByRole("button", { name: "Sign-in" }).click();
  const consent = p.getByRole("button", { name: "Continue" });
  const deadline = Date.now() + 15_000;
  while (!p.url().startsWith(site.base)) {
    if (Date.now() > deadline) throw new Error(`stuck at the provider: ${p.url()}`);
    if (await consent.isVisible().catch(() => false)) await consent.click().catch(() => {});
    await p.waitForTimeout(100);
  }
  await p.waitForLoadState();
}

const me = (p) => p.evaluate(() => fetch("/api/v1/me").then((r) => (r.ok ? r.json() : r.status)));

/** The error page's heading and code. */
async function errorPage(p) {
  const alert = p.locator("p.error[data-code]");
  await alert.waitFor();
  return { title: await p.locator("h1").textContent(), code: await alert.getAttribute("data-code") };
}

test("single sign-on through a real OpenID provider", async (t) => {
  const context = await loopbackContext();
  const p = await page(context);
  const callbacks = [];
  p.on("request", (r) => {
    if (r.url().includes("/auth/oidc/uni/callback")) callbacks.push(r.url());
  });

  await t.test("log in with the provider: the account is made, groups and role mapped", async () => {
    idp.setClaims("carol", {
      name: "Carol Chen",
      preferred_username: "carol",
      email: "carol@uni.example",
      email_verified: true,
      groups: ["imaging", "vdi-stewards"],
      eduperson_entitlement: [EGI],
    });
    await p.goto(site.url("/"));
    const button = p.getByRole("link", { name: "Log in with Test University" });
    await button.waitFor();
    await p.getByRole("link", { name: "Log in with Closed University" }).waitFor();
    await shot(p, "login-page");
    await button.click();
    await loginAtProvider(p, "carol");
    await p.getByRole("heading", { name: "Desktops to launch" }).waitFor();
    await p.getByRole("heading", { name: DEMO }).waitFor();
    await shot(p, "catalogue-through-imaging");
    const who = await me(p);
    assert.equal(who.name, "carol");
    assert.equal(who.role, "steward", "role from the vdi-stewards group");
    assert.deepEqual(who.groups, ["imaging", "vo-example"]);
    assert.deepEqual(p.problems, []);
  });

  await t.test("a replayed callback is refused with a clear page", async () => {
    assert.equal(callbacks.length, 1);
    await p.goto(callbacks[0]);
    assert.deepEqual(await errorPage(p), { title: "This sign-in link has expired", code: "unknown_state" });
    await shot(p, "replayed-callback");
  });

  await t.test("admins see the rules and why carol may use the demo desktop", async () => {
    const ac = await loopbackContext();
    const ap = await page(ac);
    await portalLogin(ap, site, "admin", site.adminPassword);
    await ap.goto(site.url("/#/admin/access"));
    await ap.getByRole("heading", { name: "Single sign-on mapping rules" }).waitFor();
    assert.equal(await ap.locator("table tbody tr").count(), 3);
    await ap.getByLabel("Person").selectOption("carol");
    await ap.getByLabel("Template").selectOption(demoId);
    await ap.getByRole("button", { name: "Explain" }).click();
    const answer = ap.locator(".why");
    await answer.getByText("carol and osvdi demo desktop: may use it").waitFor();
    const text = await answer.textContent();
    assert.match(text, /carol is in group imaging: granted at the last login by rule 1: groups = "imaging"/);
    assert.match(text, /logs in through provider uni/);
    await shot(ap, "why-access");
    // A local account's logout stays here.
    await ap.getByRole("button", { name: "Log out" }).click();
    await ap.getByRole("heading", { name: "Log in to osvdi" }).waitFor();
    assert.ok(ap.url().startsWith(site.base));
    assert.equal(await me(ap), 401);
    assert.deepEqual(ap.problems, []);
    await ac.close();
  });

  await t.test("logout ends the session here and at the provider", async () => {
    await p.goto(site.url("/"));
    await p.getByRole("button", { name: "Log out" }).click();
    await p.getByRole("button", { name: "Yes, sign me out" }).click();
    await p.getByRole("heading", { name: "Log in to osvdi" }).waitFor();
    assert.equal(await me(p), 401);
  });

  await t.test("a group lost at the provider is lost here at the next login", async () => {
    idp.setClaims("carol", {
      name: "Carol Chen",
      preferred_username: "carol",
      email: "carol@new.example",
      groups: ["staff"],
      eduperson_entitlement: [EGI],
    });
    await p.getByRole("link", { name: "Log in with Test University" }).click();
    await loginAtProvider(p, "carol");
    await p.getByRole("heading", { name: "Desktops to launch" }).waitFor();
    await p.getByText("No desktop templates are shared with you yet.").waitFor();
    await shot(p, "catalogue-after-losing-imaging");
    const who = await me(p);
    assert.equal(who.name, "carol", "the same account");
    assert.equal(who.role, "user", "the mapped role is gone");
    assert.deepEqual(who.groups, ["vo-example"]);
    const why = await site.api("GET", `/admin/access?user=carol&template=${demoId}`, admin);
    assert.equal(why.body.allowed, false);
    await p.getByRole("button", { name: "Log out" }).click();
    await p.getByRole("button", { name: "Yes, sign me out" }).click();
    await p.getByRole("heading", { name: "Log in to osvdi" }).waitFor();
  });

  await t.test("cancelled consent, a missing claim and an unreachable provider: clear pages", async () => {
    await p.getByRole("link", { name: "Log in with Test University" }).click();
    await p.getByRole("link", { name: "[ Cancel ]" }).click();
    assert.deepEqual(await errorPage(p), { title: "Sign-in cancelled", code: "access_denied" });
    await shot(p, "consent-cancelled");

    idp.setClaims("dave", { preferred_username: "dave", groups: ["imaging"] });
    await p.goto(site.url("/"));
    await p.getByRole("link", { name: "Log in with Test University" }).click();
    await loginAtProvider(p, "dave");
    assert.deepEqual(await errorPage(p), {
      title: "Your home organisation did not send what osvdi needs",
      code: "missing_claim",
    });
    await shot(p, "missing-claim");

    await p.goto(site.url("/"));
    await p.getByRole("link", { name: "Log in with Closed University" }).click();
    assert.deepEqual(await errorPage(p), { title: "The sign-in service cannot be reached", code: "provider_unreachable" });
    await shot(p, "provider-unreachable");
    assert.deepEqual(p.problems, []);

    const users = (await site.api("GET", "/users", admin)).body.map((u) => u.name);
    assert.ok(!users.includes("dave"), "no account without the required claim");
    const audit = (await site.api("GET", "/audit?action=login&limit=100", admin)).body;
    const failures = audit.filter((e) => e.object.startsWith("oidc:")).map((e) => `${e.object} ${e.detail.split(":")[0]}`);
    for (const f of ["oidc:uni unknown_state", "oidc:uni access_denied", "oidc:uni missing_claim", "oidc:closed provider_unreachable"]) {
      assert.ok(failures.includes(f), `${f} in ${failures}`);
    }
  });
  await context.close();
});
