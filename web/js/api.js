// The REST API, from the browser: same-origin fetches with the login cookie (HttpOnly, set at
// login), JSON in and out, errors as exceptions carrying the API's message.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls `/api/v1${path}`; returns the parsed JSON (null when empty). */
export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`/api/v1${path}`, init);
  } catch {
    throw new ApiError(0, "network", "The server cannot be reached; check your connection");
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const e = data && data.error;
    throw new ApiError(res.status, e ? e.code : "error", e ? e.message : `${res.status} ${res.statusText}`);
  }
  return data;
}

/** As `api`, for the pages outside the portal (the consoles): a login that has expired sends
 * the browser back to the portal to log in again. */
export async function apiOrLogin(method, path, body) {
  try {
    return await api(method, path, body);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) location.href = "/";
    throw e;
  }
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
export const put = (path, body) => api("PUT", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

/** Uploads `file` as the next image of template `id` with progress reports (0..1), through
 * XMLHttpRequest (fetch cannot report upload progress). Sends the SHA-256 when given. */
export function uploadImage(id, file, { sha256, onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `/api/v1/templates/${encodeURIComponent(id)}/image`);
    xhr.setRequestHeader("content-type", "application/octet-stream");
    if (sha256) xhr.setRequestHeader("content-digest", `sha-256=:${sha256}:`);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else {
        const e = data && data.error;
        reject(new ApiError(xhr.status, e ? e.code : "error", e ? e.message : `Upload failed (${xhr.status})`));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", "The upload was interrupted")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "Upload cancelled")));
    if (signal) signal.addEventListener("abort", () => xhr.abort());
    xhr.send(file);
  });
}

/** Base64 of the SHA-256 of a file, or null when it is too big to hash in the browser. */
export async function sha256Base64(file, limit = 512 * 1024 * 1024) {
  if (!crypto.subtle || file.size > limit) return null;
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  let bin = "";
  for (const b of new Uint8Array(digest)) bin += String.fromCharCode(b);
  return btoa(bin);
}
