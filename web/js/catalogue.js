// The catalogue: the templates this person may launch, with what their access policy says.

import { get, post } from "./api.js";
import { h, replace } from "./dom.js";

function specs(t) {
  const parts = [`${t.vcpus} vCPU`, `${t.memory_mb >= 1024 ? `${t.memory_mb / 1024} GiB` : `${t.memory_mb} MiB`} memory`];
  if (t.vgpu_type) parts.push(`GPU ${t.vgpu_type}`);
  if (t.os) parts.push(t.os);
  return parts.join(" · ");
}

export async function catalogue(ctx) {
  const templates = (await get("/templates")).filter((t) => t.current_version !== null);
  const list = h("ul", { class: "cards", "aria-label": "Templates" });
  for (const t of templates) {
    // Fields of the access policy; a server without them has every template available.
    const available = t.available !== false;
    const launch = h("button", { type: "button", disabled: !available, "aria-describedby": `why-${t.id}` }, "Launch");
    launch.addEventListener("click", () =>
      ctx.act(launch, async () => {
        const s = await post("/sessions", { template_id: t.id });
        ctx.notify(s && s.reason ? `Starting “${t.name}”. ${s.reason}` : `Starting “${t.name}”…`);
        location.hash = s && s.id ? `#/desktops/${s.id}` : "#/desktops";
      }),
    );
    list.append(
      h(
        "li",
        { class: `card template${available ? "" : " unavailable"}`, "data-template": t.id },
        h("h2", {}, t.name),
        t.description ? h("p", { class: "description" }, t.description) : null,
        h("p", { class: "specs" }, specs(t)),
        t.tags && t.tags.length ? h("ul", { class: "tags", "aria-label": "Tags" }, t.tags.map((x) => h("li", {}, x))) : null,
        t.access ? h("p", { class: "access" }, `Access: ${t.access}`) : null,
        h(
          "p",
          { id: `why-${t.id}`, class: available ? "visually-hidden" : "denied" },
          available ? "" : t.denied_reason || "Not available now",
        ),
        h("div", { class: "actions" }, launch),
      ),
    );
  }
  replace(
    ctx.main,
    h("h1", {}, "Desktops to launch"),
    templates.length ? list : h("p", { class: "empty" }, "No desktop templates are shared with you yet."),
  );
}
