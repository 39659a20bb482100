// Single sign-on in the portal: the "Log in with ..." buttons, logout that continues at the
// provider, and the admin page with the mapping rules (read-only) and "why does this person
// have access to this template?".

import { get, post } from "./api.js";
import { field, formValues, h, replace } from "./dom.js";

/** The "Log in with ..." links for the login page (nothing when no provider is configured). */
export async function ssoButtons() {
  let providers = [];
  try {
    providers = await get("/auth/providers");
  } catch {
    return null; // the local form still works
  }
  if (!providers.length) return null;
  const back = encodeURIComponent(`/${location.hash || ""}`);
  return h(
    "div",
    { class: "sso" },
    h("p", { class: "hint" }, "Log in with your home organisation:"),
    providers.map((p) =>
      h("p", {}, h("a", { class: "button primary sso-login", href: `${p.login_url}?return_to=${back}` }, `Log in with ${p.display_name}`)),
    ),
    h("p", { class: "hint" }, "Or with an osvdi account:"),
  );
}

/** Ends the session; for a single sign-on session, continues to the provider's logout. */
export async function ssoLogout() {
  const answer = await post("/auth/oidc/logout");
  if (answer && answer.redirect) {
    location.assign(answer.redirect);
    return true;
  }
  return false;
}

const table = (headings, rows, caption) =>
  h(
    "table",
    {},
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, headings.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows),
  );

/** Admins: the mapping rules and the access explanation. */
export async function adminAccess(ctx) {
  const [rules, users, templates] = await Promise.all([get("/admin/oidc/rules"), get("/users"), get("/templates")]);
  const rulesView = rules.length
    ? table(
        ["#", "Provider", "Claim", "Value", "Gives", "In words"],
        rules.map((r) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, String(r.number)),
            h("td", {}, r.provider || "any"),
            h("td", {}, h("code", {}, r.claim)),
            h("td", {}, r.value !== null ? r.value : r.value_prefix !== null ? `${r.value_prefix}…` : "(any value)"),
            h("td", {}, [r.group ? `group ${r.group}` : null, r.role ? `role ${r.role}` : null].filter(Boolean).join(", ")),
            h("td", {}, r.description),
          ),
        ),
        "Mapping rules",
      )
    : h("p", { class: "empty" }, "No mapping rules are configured.");

  const answer = h("div", { class: "why", "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Explain");
  const form = h(
    "form",
    { class: "card inline-form", id: "why-form" },
    field("Person", h("select", { name: "user", required: true }, users.map((u) => h("option", { value: u.name }, u.name)))),
    field("Template", h("select", { name: "template", required: true }, templates.map((t) => h("option", { value: t.id }, t.name)))),
    submit,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.act(submit, async () => {
      const v = formValues(form);
      const why = await get(`/admin/access?user=${encodeURIComponent(v.user)}&template=${encodeURIComponent(v.template)}`);
      replace(
        answer,
        h(
          "section",
          { class: "card" },
          h("h2", {}, `${why.user} and ${why.template}: ${why.allowed ? "may use it" : "may not use it"}`),
          h("ol", { class: "steps" }, why.steps.map((s) => h("li", { "data-kind": s.kind }, h("span", { class: "badge" }, s.kind), " ", s.text))),
        ),
      );
    });
  });

  replace(
    ctx.main,
    h("h1", {}, "Access"),
    h("h2", {}, "Why does this person have access to this template?"),
    form,
    answer,
    h("h2", {}, "Single sign-on mapping rules"),
    h(
      "p",
      { class: "hint" },
      "From the config file ([[oidc.rules]]), evaluated at every login through a provider. Groups they grant are taken " +
        "away at the next login when the claim no longer has the value; groups an admin set by hand stay.",
    ),
    rulesView,
  );
}
