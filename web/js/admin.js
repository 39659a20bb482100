// Admin pages: users, groups, everyone's sessions, the host's GPUs (mdev), the audit log.

import { del, get, patch, post, put } from "./api.js";
import { field, formValues, h, replace, time } from "./dom.js";
import { stateCell } from "./desktops.js";

const table = (headings, rows, caption) =>
  h(
    "table",
    {},
    caption ? h("caption", { class: "visually-hidden" }, caption) : null,
    h("thead", {}, h("tr", {}, headings.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows),
  );

const ROLES = ["user", "steward", "admin"];

export async function adminUsers(ctx) {
  const reload = () => adminUsers(ctx);
  const users = await get("/users");
  const rows = users.map((u) => {
    const role = h("select", { "aria-label": `Role of ${u.name}` }, ROLES.map((r) => h("option", { value: r, selected: u.role === r }, r)));
    role.addEventListener("change", () =>
      ctx.act(role, async () => {
        await patch(`/users/${encodeURIComponent(u.name)}`, { role: role.value });
        ctx.notify(`${u.name} is now ${role.value}`);
      }).then(reload),
    );
    const reset = h("button", { type: "button", "aria-label": `Set a new password for ${u.name}` }, "New password");
    reset.addEventListener("click", () =>
      ctx.act(reset, async () => {
        const pw = window.prompt(`New password for ${u.name} (at least 10 characters):`);
        if (!pw) return;
        await patch(`/users/${encodeURIComponent(u.name)}`, { password: pw });
        ctx.notify(`Password of ${u.name} changed; their sessions were ended`);
      }),
    );
    const remove = h("button", { type: "button", class: "danger", "aria-label": `Delete ${u.name}` }, "Delete");
    remove.addEventListener("click", () =>
      ctx.act(remove, async () => {
        if (!window.confirm(`Delete the account ${u.name}?`)) return;
        await del(`/users/${encodeURIComponent(u.name)}`);
        await reload();
      }),
    );
    return h("tr", {}, h("th", { scope: "row" }, u.name), h("td", {}, role), h("td", {}, time(u.created_at)), h("td", { class: "actions" }, reset, remove));
  });
  const submit = h("button", { type: "submit" }, "Create user");
  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, "New user"),
    h(
      "div",
      { class: "row" },
      field("User name", h("input", { name: "name", required: true, autocomplete: "off" })),
      field("Role", h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r }, r)))),
      field("Password", h("input", { name: "password", type: "password", required: true, minlength: 10, autocomplete: "new-password" })),
    ),
    submit,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.act(submit, async () => {
      const v = formValues(form);
      await post("/users", v);
      ctx.notify(`User ${v.name} created`);
      await reload();
    });
  });
  replace(ctx.main, h("h1", {}, "Users"), table(["Name", "Role", "Created", "Actions"], rows, "Users"), form);
}

export async function adminGroups(ctx) {
  const reload = () => adminGroups(ctx);
  const groups = await get("/groups");
  const cards = groups.map((g) => {
    const members = g.members.map((m) => {
      const rm = h("button", { type: "button", class: "link", "aria-label": `Remove ${m} from ${g.name}` }, "remove");
      rm.addEventListener("click", () => ctx.act(rm, () => del(`/groups/${encodeURIComponent(g.name)}/members/${encodeURIComponent(m)}`)).then(reload));
      return h("li", {}, m, " ", rm);
    });
    const who = h("input", { name: "member", required: true, autocomplete: "off" });
    const add = h("button", { type: "submit" }, "Add");
    const form = h("form", { class: "inline-form" }, field(`Add to ${g.name}`, who), add);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      ctx.act(add, () => put(`/groups/${encodeURIComponent(g.name)}/members/${encodeURIComponent(who.value.trim())}`)).then(reload);
    });
    const remove = h("button", { type: "button", class: "danger" }, "Delete group");
    remove.addEventListener("click", () =>
      ctx.act(remove, async () => {
        if (!window.confirm(`Delete the group ${g.name}?`)) return;
        await del(`/groups/${encodeURIComponent(g.name)}`);
      }).then(reload),
    );
    return h(
      "section",
      { class: "card" },
      h("h2", {}, g.name),
      members.length ? h("ul", { class: "members" }, members) : h("p", { class: "empty" }, "No members."),
      form,
      remove,
    );
  });
  const name = h("input", { name: "name", required: true });
  const create = h("button", { type: "submit" }, "Create group");
  const form = h("form", { class: "card" }, h("h2", {}, "New group"), field("Name", name), create);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.act(create, () => post("/groups", { name: name.value })).then(reload);
  });
  replace(ctx.main, h("h1", {}, "Groups"), h("div", { class: "grid" }, cards, form));
}

export async function adminSessions(ctx) {
  const render = async () => {
    const [sessions, users, templates] = await Promise.all([get("/sessions?all=true&live=true"), get("/users"), get("/templates")]);
    const userName = new Map(users.map((u) => [u.id, u.name]));
    const templateName = new Map(templates.map((t) => [t.id, t.name]));
    const rows = sessions.map((s) => {
      const end = h("button", { type: "button", class: "danger", "aria-label": `End session of ${userName.get(s.owner_id) || s.owner_id}` }, "End");
      end.addEventListener("click", () =>
        ctx.act(end, async () => {
          if (!window.confirm("End this desktop? Everything in it is lost.")) return;
          await del(`/sessions/${s.id}`);
        }).then(render),
      );
      return h(
        "tr",
        { "data-session": s.id },
        h("th", { scope: "row" }, userName.get(s.owner_id) || s.owner_id),
        h("td", {}, templateName.get(s.template_id) || s.template_id, ` v${s.template_version}`),
        h("td", {}, stateCell(s)),
        h("td", {}, s.connected ? "Connected" : "—"),
        h("td", {}, time(s.last_activity)),
        h("td", {}, time(s.created_at)),
        h("td", {}, s.state === "stopping" ? null : end),
      );
    });
    replace(
      ctx.main,
      h("h1", {}, "All sessions"),
      rows.length ? table(["Person", "Template", "State", "Console", "Last activity", "Started", ""], rows, "Live sessions") : h("p", { class: "empty" }, "No desktops are running."),
    );
  };
  await render();
  const timer = setInterval(() => render().catch(() => {}), 5000);
  ctx.onLeave(() => clearInterval(timer));
}

export async function adminGpus(ctx) {
  const gpus = await get("/admin/gpus");
  const sections = gpus.map((g) =>
    h(
      "section",
      { class: "card" },
      h("h2", {}, `${g.vendor} GPU ${g.parent}`),
      h("p", {}, g.single_type ? `One mdev type at a time${g.active_type ? ` (now ${g.active_type})` : ""}.` : "Mixed mdev types."),
      table(
        ["Type", "Name", "Description", "API", "Available"],
        g.types.map((t) => h("tr", {}, h("th", { scope: "row" }, t.id), h("td", {}, t.name), h("td", {}, t.description), h("td", {}, t.device_api), h("td", {}, String(t.available_instances)))),
        "mdev types",
      ),
      g.instances.length
        ? table(["Instance", "Type"], g.instances.map((i) => h("tr", {}, h("th", { scope: "row" }, h("code", {}, i.uuid)), h("td", {}, i.type_id))), "mdev instances")
        : h("p", { class: "empty" }, "No instances."),
    ),
  );
  replace(ctx.main, h("h1", {}, "GPUs"), sections.length ? sections : h("p", { class: "empty" }, "This host has no mediated-device GPUs."));
}

export async function adminAudit(ctx) {
  const params = new URLSearchParams();
  const body = h("tbody");
  const more = h("button", { type: "button" }, "Older entries");
  let before = null;
  const load = async (reset) => {
    const q = new URLSearchParams(params);
    q.set("limit", "100");
    if (!reset && before !== null) q.set("before", String(before));
    const entries = await get(`/audit?${q}`);
    if (reset) body.replaceChildren();
    for (const e of entries) {
      body.append(
        h(
          "tr",
          { class: `outcome-${e.outcome}` },
          h("td", {}, time(e.at)),
          h("th", { scope: "row" }, e.actor),
          h("td", {}, h("code", {}, e.action)),
          h("td", {}, e.object),
          h("td", {}, e.outcome),
          h("td", {}, e.client || ""),
          h("td", {}, e.detail),
        ),
      );
    }
    if (entries.length) before = entries[entries.length - 1].id;
    more.hidden = entries.length < 100;
  };
  more.addEventListener("click", () => ctx.act(more, () => load(false)));
  const filter = h("button", { type: "submit" }, "Filter");
  const form = h(
    "form",
    { class: "inline-form", role: "search" },
    field("Action", h("input", { name: "action", placeholder: "e.g. login, session.console" })),
    field("Actor", h("input", { name: "actor", placeholder: "user name" })),
    filter,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = formValues(form);
    for (const k of ["action", "actor"]) {
      if (v[k]) params.set(k, v[k]);
      else params.delete(k);
    }
    before = null;
    ctx.act(filter, () => load(true));
  });
  await load(true);
  replace(
    ctx.main,
    h("h1", {}, "Audit log"),
    form,
    h(
      "table",
      { class: "audit" },
      h("thead", {}, h("tr", {}, ["When", "Who", "Action", "Object", "Outcome", "From", "Detail"].map((c) => h("th", { scope: "col" }, c)))),
      body,
    ),
    more,
  );
}
