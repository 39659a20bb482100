// The person's account: who they are, their groups, a new password.

import { post } from "./api.js";
import { field, h, replace } from "./dom.js";

export async function account(ctx) {
  const current = h("input", { name: "current_password", type: "password", required: true, autocomplete: "current-password" });
  const next = h("input", { name: "new_password", type: "password", required: true, minlength: 10, autocomplete: "new-password" });
  const again = h("input", { name: "again", type: "password", required: true, minlength: 10, autocomplete: "new-password" });
  const submit = h("button", { type: "submit" }, "Change password");
  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, "Change password"),
    field("Current password", current),
    field("New password", next, "At least 10 characters. Your other logins are ended."),
    field("New password again", again),
    submit,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (next.value !== again.value) {
      ctx.notify("The two new passwords differ", "error");
      again.focus();
      return;
    }
    ctx.act(submit, async () => {
      await post("/auth/password", { current_password: current.value, new_password: next.value });
      form.reset();
      ctx.notify("Password changed");
    });
  });
  const me = ctx.me;
  replace(
    ctx.main,
    h("h1", {}, "Account"),
    h(
      "dl",
      { class: "card facts" },
      h("dt", {}, "User name"),
      h("dd", {}, me.name),
      h("dt", {}, "Role"),
      h("dd", {}, me.role),
      h("dt", {}, "Groups"),
      h("dd", {}, me.groups && me.groups.length ? me.groups.join(", ") : "none"),
    ),
    form,
  );
}
