// The osvdi portal: a small single-page app over the REST API. Pages are chosen by the URL's
// fragment (#/desktops ...); each page renders into <main> and may register clean-ups (live
// event streams, timers) that run when the person leaves it.

import { ApiError, get, post } from "./js/api.js";
import { h, replace } from "./js/dom.js";
import { catalogue } from "./js/catalogue.js";
import { desktops } from "./js/desktops.js";
import { manageList, manageTemplate } from "./js/manage.js";
import { adminUsers, adminGroups, adminSessions, adminGpus, adminAudit } from "./js/admin.js";
import { account } from "./js/account.js";
import { coursesPage } from "./js/courses.js";
import { capacity } from "./js/capacity.js";
import { adminAccess, ssoButtons, ssoLogout } from "./js/oidc.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const notice = document.getElementById("notice");

let me = null;
let cleanups = [];
let noticeTimer = null;

/** Tells the person something (politely announced to screen readers). */
export function notify(text, kind = "info") {
  clearTimeout(noticeTimer);
  replace(notice, text ? h("p", { class: `notice-${kind}` }, text) : null);
  if (text && kind !== "error") noticeTimer = setTimeout(() => replace(notice), 6000);
}

/** Runs an action from a button or form: disables it meanwhile, reports errors. */
export async function act(control, fn) {
  if (control) control.disabled = true;
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return showLogin();
    notify(e.message, "error");
    return undefined;
  } finally {
    if (control) control.disabled = false;
  }
}

const isSteward = () => me && (me.role === "steward" || me.role === "admin");
const isAdmin = () => me && me.role === "admin";

const coursesLabel = () => (isSteward() ? "Courses" : "My courses");

// `nav` and `title` are text or functions of the person (their role).
const routes = [
  { path: /^\/?$/, href: "#/", page: catalogue, title: "Desktops to launch", nav: "Catalogue" },
  { path: /^\/desktops(?:\/([0-9a-f-]+))?$/, href: "#/desktops", page: desktops, title: "My desktops", nav: "My desktops" },
  { path: /^\/courses$/, href: "#/courses", page: coursesPage, title: coursesLabel, nav: coursesLabel },
  { path: /^\/manage$/, href: "#/manage", page: manageList, title: "Templates", nav: "Templates", allowed: isSteward },
  { path: /^\/manage\/([0-9a-f-]+)$/, page: manageTemplate, title: "Template", allowed: isSteward },
  { path: /^\/capacity$/, href: "#/capacity", page: capacity, title: "Capacity", nav: "Capacity", allowed: isSteward },
  { path: /^\/admin\/users$/, href: "#/admin/users", page: adminUsers, title: "Users", nav: "Users", allowed: isAdmin },
  { path: /^\/admin\/groups$/, href: "#/admin/groups", page: adminGroups, title: "Groups", nav: "Groups", allowed: isAdmin },
  { path: /^\/admin\/sessions$/, href: "#/admin/sessions", page: adminSessions, title: "All sessions", nav: "All sessions", allowed: isAdmin },
  { path: /^\/admin\/gpus$/, href: "#/admin/gpus", page: adminGpus, title: "GPUs", nav: "GPUs", allowed: isAdmin },
  { path: /^\/admin\/access$/, href: "#/admin/access", page: adminAccess, title: "Access", nav: "Access", allowed: isAdmin },
  { path: /^\/admin\/audit$/, href: "#/admin/audit", page: adminAudit, title: "Audit log", nav: "Audit log", allowed: isAdmin },
  { path: /^\/account$/, page: account, title: "Account" },
];

const text = (x) => (typeof x === "function" ? x() : x);

function renderShell() {
  const here = location.hash.replace(/^#/, "") || "/";
  replace(
    nav,
    h(
      "ul",
      {},
      routes
        .filter((r) => r.nav && (!r.allowed || r.allowed()))
        .map((r) => {
          const current = r.path.test(here);
          return h("li", {}, h("a", { href: r.href, "aria-current": current ? "page" : null }, text(r.nav)));
        }),
    ),
  );
  replace(
    who,
    me
      ? [
          h("a", { href: "#/account", title: "Account" }, me.name),
          h("span", { class: "role" }, me.role),
          h("button", { type: "button", class: "link", on: { click: logout } }, "Log out"),
        ]
      : null,
  );
}

async function logout() {
  // A single sign-on session continues to the provider's logout page, if it has one.
  if (await act(null, ssoLogout)) return;
  me = null;
  showLogin();
}

function leave() {
  for (const fn of cleanups) {
    try {
      fn();
    } catch {
      /* a clean-up that fails must not stop the others */
    }
  }
  cleanups = [];
}

function showLogin(message) {
  leave();
  me = null;
  renderShell();
  document.title = "Log in — osvdi";
  const error = h("p", { class: "error", role: "alert" }, message || null);
  const user = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "none" });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const button = h("button", { type: "submit" }, "Log in");
  const form = h(
    "form",
    {
      class: "login card",
      on: {
        submit: async (e) => {
          e.preventDefault();
          button.disabled = true;
          try {
            const answer = await post("/auth/login", { username: user.value, password: pass.value });
            // Auto-assign: the person's only template started a desktop for them; go to it.
            if (answer && answer.session) {
              location.hash = `#/desktops/${answer.session.id}`;
              notify("A desktop was started for you at login.");
            }
            await start();
          } catch (err) {
            replace(error, err.message);
            pass.value = "";
            pass.focus();
          } finally {
            button.disabled = false;
          }
        },
      },
    },
    h("h1", {}, "Log in to osvdi"),
    error,
    h("div", { class: "field" }, h("label", { for: "login-user" }, "User name"), Object.assign(user, { id: "login-user" })),
    h("div", { class: "field" }, h("label", { for: "login-pass" }, "Password"), Object.assign(pass, { id: "login-pass" })),
    button,
  );
  replace(main, form);
  user.focus();
  ssoButtons().then((buttons) => {
    if (buttons && form.isConnected) form.insertBefore(buttons, form.querySelector(".field"));
  });
}

async function route() {
  if (!me) return;
  leave();
  const here = location.hash.replace(/^#/, "") || "/";
  renderShell();
  const r = routes.find((x) => x.path.test(here));
  if (!r || (r.allowed && !r.allowed())) {
    document.title = "Not found — osvdi";
    replace(main, h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/" }, "Back to the catalogue")));
    return;
  }
  const params = here.match(r.path).slice(1);
  const title = text(r.title);
  document.title = `${title} — osvdi`;
  const ctx = {
    me,
    main,
    notify,
    act,
    onLeave: (fn) => cleanups.push(fn),
    setTitle: (t) => {
      document.title = `${t} — osvdi`;
    },
  };
  replace(main, h("p", { class: "loading" }, "Loading…"));
  try {
    await r.page(ctx, ...params);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return showLogin();
    replace(main, h("h1", {}, title), h("p", { class: "error", role: "alert" }, e.message));
  }
  // Move focus to the page's heading so that screen readers announce the new page.
  const heading = main.querySelector("h1");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

async function start() {
  try {
    me = await get("/me");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return showLogin();
    replace(main, h("p", { class: "error", role: "alert" }, e.message));
    return undefined;
  }
  if (location.hash === "#/login") location.hash = "#/";
  return route();
}

window.addEventListener("hashchange", route);
start();
