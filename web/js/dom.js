// Building the page from data without ever parsing it as HTML: every piece of text becomes a
// text node (textContent), so names and descriptions people type are shown, never run.

/** Creates an element. `props`: attributes, plus `on: {event: handler}`, `class`, and the
 * properties `value`, `checked`, `selected`; `children`: nodes, strings, numbers, arrays,
 * null/false (skipped). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "value" || key === "checked" || key === "selected") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends children as `h` takes them. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's content. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** "3 min ago" for an RFC 3339 time; the exact time goes in a tooltip. */
export function ago(rfc3339) {
  if (!rfc3339) return "";
  const secs = Math.round((Date.now() - Date.parse(rfc3339)) / 1000);
  if (secs < 10) return "just now";
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.round(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.round(secs / 3600)} h ago`;
  return new Date(rfc3339).toLocaleDateString();
}

/** A <time> element showing `ago`, with the full date as its title. */
export function time(rfc3339) {
  if (!rfc3339) return h("span", {}, "—");
  return h("time", { datetime: rfc3339, title: new Date(rfc3339).toLocaleString() }, ago(rfc3339));
}

/** Bytes for people. */
export function size(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** A labelled form field. `input` is the control (its id is set from `name`). */
export function field(label, input, hint) {
  const id = `f-${input.name || Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2, 6)}`;
  input.id = id;
  const hintEl = hint ? h("small", { id: `${id}-hint`, class: "hint" }, hint) : null;
  if (hintEl) input.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hintEl);
}

/** The values of a form's named controls (numbers for type=number, booleans for checkboxes,
 * arrays for repeated names). Empty strings stay empty. */
export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    let v;
    if (el.type === "checkbox") {
      if (el.dataset.multi) {
        out[el.name] ??= [];
        if (el.checked) out[el.name].push(el.value);
        continue;
      }
      v = el.checked;
    } else if (el.type === "number") {
      v = el.value === "" ? null : Number(el.value);
    } else {
      v = el.value;
    }
    out[el.name] = v;
  }
  return out;
}
