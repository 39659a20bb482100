// Steward pages: the templates a person manages; creating one; a template's description,
// image uploads (with progress), versions, sharing, access policy, deletion.

import { del, get, patch, post, put, sha256Base64, uploadImage } from "./api.js";
import { field, formValues, h, replace, size, time } from "./dom.js";
import { policySection } from "./policy.js";

const mine = (ctx, t) => ctx.me.role === "admin" || t.owner_id === ctx.me.id;

function groupsList(id) {
  const list = h("datalist", { id });
  get("/groups")
    .then((gs) => list.append(...gs.map((g) => h("option", { value: g.name }))))
    .catch(() => {});
  return list;
}

const splitList = (v) => (v || "").split(",").map((x) => x.trim()).filter(Boolean);

/** The fields of a template's description; `t` fills them in when editing. */
function specFields(t) {
  const num = (name, label, value, min, max, hint) =>
    field(label, h("input", { name, type: "number", min, max, value: value ?? "", required: min > 0 }), hint);
  const protocols = t ? t.protocols : ["vnc"];
  return [
    field("Name", h("input", { name: "name", required: true, maxlength: 128, value: t ? t.name : "" })),
    field("Description", h("textarea", { name: "description", rows: 3, value: t ? t.description : "" })),
    field("Operating system", h("input", { name: "os", value: t ? t.os : "", placeholder: "debian-12" })),
    h(
      "div",
      { class: "row" },
      num("vcpus", "vCPUs", t ? t.vcpus : 2, 1, 64),
      num("memory_mb", "Memory (MiB)", t ? t.memory_mb : 4096, 128, 1048576),
      num("disk_gb", "Disk (GB)", t ? t.disk_gb : 20, 1, 4096),
    ),
    field("vGPU type", h("input", { name: "vgpu_type", value: t && t.vgpu_type ? t.vgpu_type : "", placeholder: "none" }), "An mdev type name, e.g. nvidia-35; empty for none."),
    h(
      "fieldset",
      {},
      h("legend", {}, "Display protocols"),
      ["vnc", "spice"].map((p) =>
        h(
          "label",
          { class: "check" },
          h("input", { type: "checkbox", name: "protocols", value: p, "data-multi": "1", checked: protocols.includes(p) }),
          p === "vnc" ? " Browser console (VNC)" : " Native client (SPICE)",
        ),
      ),
    ),
    field("Ready when", h("input", { name: "ready", value: t ? t.ready : "after:20" }), "marker:TEXT (the guest prints TEXT on its serial port) or after:SECONDS."),
    h(
      "div",
      { class: "row" },
      num("idle_timeout_min", "Idle timeout (min)", t ? t.idle_timeout_min : "", 0, 100000, "Empty or 0: none."),
      num("max_lifetime_min", "Maximum lifetime (min)", t ? t.max_lifetime_min : "", 0, 1000000, "Empty or 0: none."),
    ),
  ];
}

function specBody(v, creating) {
  const body = {
    name: v.name,
    description: v.description,
    os: v.os,
    vcpus: v.vcpus,
    memory_mb: v.memory_mb,
    disk_gb: v.disk_gb,
    protocols: v.protocols,
    ready: v.ready,
  };
  if (creating) {
    if (v.vgpu_type) body.vgpu_type = v.vgpu_type;
    if (v.idle_timeout_min) body.idle_timeout_min = v.idle_timeout_min;
    if (v.max_lifetime_min) body.max_lifetime_min = v.max_lifetime_min;
  } else {
    body.vgpu_type = v.vgpu_type || "";
    body.idle_timeout_min = v.idle_timeout_min || 0;
    body.max_lifetime_min = v.max_lifetime_min || 0;
  }
  return body;
}

export async function manageList(ctx) {
  const templates = (await get("/templates")).filter((t) => mine(ctx, t));
  const submit = h("button", { type: "submit" }, "Create template");
  const form = h(
    "form",
    { class: "card" },
    specFields(null),
    field(
      "Shared with",
      h(
        "select",
        { name: "visibility" },
        h("option", { value: "private" }, "Nobody else (private)"),
        h("option", { value: "groups" }, "Groups"),
        h("option", { value: "everyone" }, "Everyone"),
      ),
    ),
    field("Groups", h("input", { name: "groups", list: "group-names", placeholder: "physics, chemistry" }), "Comma-separated, for “Groups”."),
    groupsList("group-names"),
    submit,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.act(submit, async () => {
      const v = formValues(form);
      const body = { ...specBody(v, true), visibility: v.visibility, groups: splitList(v.groups) };
      const t = await post("/templates", body);
      ctx.notify(`Template “${t.name}” created; upload its image next.`);
      location.hash = `#/manage/${t.id}`;
    });
  });
  const rows = templates.map((t) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, h("a", { href: `#/manage/${t.id}` }, t.name)),
      h("td", {}, t.current_version === null ? "no image yet" : `v${t.current_version}`),
      h("td", {}, t.visibility === "groups" ? `groups: ${t.groups.join(", ")}` : t.visibility),
      h("td", {}, time(t.updated_at)),
    ),
  );
  replace(
    ctx.main,
    h("h1", {}, "Templates"),
    rows.length
      ? h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Name", "Image", "Shared with", "Changed"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, rows),
        )
      : h("p", { class: "empty" }, "You manage no templates yet."),
    h("details", {}, h("summary", {}, h("h2", { class: "inline" }, "New template")), form),
  );
}

function uploadSection(ctx, t, reload) {
  const file = h("input", { type: "file", name: "image", accept: ".qcow2,.img,.raw,application/octet-stream", required: true });
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
  const status = h("p", { class: "upload-status", role: "status", "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Upload");
  const cancel = h("button", { type: "button", hidden: true }, "Cancel");
  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, "Upload an image"),
    h("p", { class: "hint" }, "qcow2 or a raw disk (MBR or GPT). Each upload becomes a new version once it is checked."),
    field("Image file", file),
    progress,
    status,
    h("div", { class: "actions" }, submit, cancel),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) return;
    const abort = new AbortController();
    cancel.hidden = false;
    cancel.onclick = () => abort.abort();
    ctx.act(submit, async () => {
      try {
        replace(status, `Computing the checksum of ${f.name}…`);
        const sha256 = await sha256Base64(f);
        progress.hidden = false;
        progress.value = 0;
        replace(status, `Uploading ${f.name} (${size(f.size)})…`);
        const v = await uploadImage(t.id, f, {
          sha256,
          signal: abort.signal,
          onProgress: (p) => {
            progress.value = p;
            replace(status, p < 1 ? `Uploading ${f.name}: ${Math.floor(p * 100)} %` : "Checking the image…");
          },
        });
        replace(status, `Version ${v.version} is ready.`);
        ctx.notify(`Image uploaded: version ${v.version}`);
        await reload();
      } catch (err) {
        replace(status, "");
        throw err;
      } finally {
        cancel.hidden = true;
        progress.hidden = true;
      }
    });
  });
  return form;
}

function sharingSection(ctx, t, reload) {
  const submit = h("button", { type: "submit" }, "Save sharing");
  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, "Sharing"),
    field(
      "Shared with",
      h(
        "select",
        { name: "visibility" },
        ["private", "groups", "everyone"].map((v) =>
          h("option", { value: v, selected: t.visibility === v }, { private: "Nobody else (private)", groups: "Groups", everyone: "Everyone" }[v]),
        ),
      ),
    ),
    field("Groups", h("input", { name: "groups", list: "share-groups", value: t.groups.join(", ") }), "Comma-separated, for “Groups”."),
    groupsList("share-groups"),
    submit,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.act(submit, async () => {
      const v = formValues(form);
      await put(`/templates/${t.id}/sharing`, { visibility: v.visibility, groups: splitList(v.groups) });
      ctx.notify("Sharing saved");
      await reload();
    });
  });
  return form;
}

function versionsSection(ctx, t, versions, reload) {
  const rows = versions.map((v) => {
    const remove = h("button", { type: "button", class: "danger", "aria-label": `Delete version ${v.version}` }, "Delete");
    remove.addEventListener("click", () =>
      ctx.act(remove, async () => {
        if (!window.confirm(`Delete version ${v.version} of “${t.name}”?`)) return;
        await del(`/templates/${t.id}/versions/${v.version}`);
        await reload();
      }),
    );
    return h(
      "tr",
      {},
      h("th", { scope: "row" }, `v${v.version}`, v.version === t.current_version ? h("span", { class: "badge" }, "current") : null),
      h("td", {}, v.state),
      h("td", {}, v.format || "—"),
      h("td", { title: v.virtual_size ? `virtual size ${size(v.virtual_size)}` : null }, size(v.size_bytes)),
      h("td", {}, h("code", { title: v.sha256 }, v.sha256 ? `${v.sha256.slice(0, 12)}…` : "")),
      h("td", {}, time(v.created_at)),
      h("td", {}, remove),
    );
  });
  return h(
    "section",
    { class: "card" },
    h("h2", {}, "Versions"),
    rows.length
      ? h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Version", "State", "Format", "Size", "SHA-256", "Uploaded", ""].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, rows),
        )
      : h("p", { class: "empty" }, "No image yet."),
  );
}

export async function manageTemplate(ctx, id) {
  const reload = () => manageTemplate(ctx, id);
  const [t, versions] = await Promise.all([get(`/templates/${id}`), get(`/templates/${id}/versions`)]);
  ctx.setTitle(t.name);
  const save = h("button", { type: "submit" }, "Save");
  const edit = h("form", { class: "card" }, h("h2", {}, "Description"), specFields(t), save);
  edit.addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.act(save, async () => {
      await patch(`/templates/${t.id}`, specBody(formValues(edit), false));
      ctx.notify("Template saved");
      await reload();
    });
  });
  const remove = h("button", { type: "button", class: "danger" }, "Delete template");
  remove.addEventListener("click", () =>
    ctx.act(remove, async () => {
      if (!window.confirm(`Delete the template “${t.name}” and all its versions?`)) return;
      await del(`/templates/${t.id}`);
      ctx.notify(`Template “${t.name}” deleted`);
      location.hash = "#/manage";
    }),
  );
  replace(
    ctx.main,
    h("p", { class: "crumbs" }, h("a", { href: "#/manage" }, "Templates")),
    h("h1", {}, t.name),
    versionsSection(ctx, t, versions, reload),
    h("div", { class: "grid" }, uploadSection(ctx, t, reload), sharingSection(ctx, t, reload)),
    h("div", { class: "grid" }, edit, policySection(ctx, t, reload)),
    h("section", { class: "card danger-zone" }, h("h2", {}, "Delete"), h("p", {}, "A template in use by desktops cannot be deleted."), remove),
  );
}
