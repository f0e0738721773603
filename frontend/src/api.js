// Calls to the platform's API from the pages: the session cookie signs them in, and every
// state change carries the CSRF token the sign-in gave (read back from its cookie).
import { t } from "./i18n.js";

export const API = "/api/v1";

/** An error answer of the API: its status, its type and its words for a person. */
export class ApiError extends Error {
  constructor(status, type, detail, body = null) {
    super(detail || t("requestFailed", { status }));
    this.status = status;
    this.type = type;
    this.body = body;
  }
}

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)bidding_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : null;
}

/** The {detail} of an error answer as one line; a validation error names every field. */
export function describe(status, body) {
  if (body && Array.isArray(body.errors) && body.errors.length > 1) {
    return body.errors.map((item) => `${item.field}: ${item.message}`).join("; ");
  }
  return (typeof body?.detail === "string" && body.detail) || t("requestFailed", { status });
}

/**
 * A 422's problems by field, without the "body." prefix: {"floor_price": "must not be …"}.
 * The API lists them as errors: [{field: "body.floor_price", message}].
 */
export function fieldErrors(error) {
  const problems = {};
  for (const item of error?.body?.errors ?? []) {
    const name = String(item.field ?? "").replace(/^body\./, "");
    problems[name] ??= item.message;
  }
  if (error?.body?.field && !Object.keys(problems).length) problems[error.body.field] = error.message;
  return problems;
}

/** Call the API; JSON in (json) or any body (body), JSON out; throws ApiError on refusal. */
export async function api(path, { method = "GET", json, body, headers = {} } = {}) {
  const sent = { ...headers };
  if (method !== "GET" && method !== "HEAD") {
    const token = csrfToken();
    if (token) sent["X-CSRF-Token"] = token;
  }
  if (json !== undefined) {
    sent["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(`${API}${path}`, { method, body, headers: sent, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "network", t("networkFailed"));
  }
  const text = await response.text();
  let answer = null;
  try {
    answer = text ? JSON.parse(text) : null;
  } catch {
    answer = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, answer?.type ?? "http_error", describe(response.status, answer), answer);
  }
  return answer;
}

/**
 * Send a body with upload progress (fetch reports none): onProgress(sent, total) as it goes.
 * Resolves to {status, body}; an error answer throws ApiError like api().
 */
export function upload(path, blob, { headers = {}, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", `${API}${path}`);
    request.withCredentials = true;
    for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
    const token = csrfToken();
    if (token) request.setRequestHeader("X-CSRF-Token", token);
    request.upload.onprogress = (event) => onProgress?.(event.loaded, event.total || blob.size);
    request.onerror = () => reject(new ApiError(0, "network", t("networkFailed")));
    request.onabort = () => reject(new ApiError(0, "aborted", t("uploadAborted")));
    request.onload = () => {
      let answer = null;
      try {
        answer = request.responseText ? JSON.parse(request.responseText) : null;
      } catch {
        answer = null;
      }
      if (request.status >= 200 && request.status < 300) {
        resolve({ status: request.status, body: answer });
      } else {
        reject(new ApiError(request.status, answer?.type ?? "http_error", describe(request.status, answer), answer));
      }
    };
    request.send(blob);
  });
}

let who;

/** The signed-in user (GET /me), or null; asked once per page load and after sign-in/out. */
export async function me({ fresh = false } = {}) {
  if (fresh || who === undefined) {
    try {
      who = await api("/me");
    } catch (error) {
      if (error.status !== 401) throw error;
      who = null;
    }
  }
  return who;
}

export function forgetMe() {
  who = undefined;
}

/**
 * The server's clock as this page sees it: the offset is measured from an answer's
 * server_time when it arrives, so countdowns follow the server, not the viewer's clock.
 */
let offset = 0;

export function syncClock(serverTime, receivedAt = Date.now()) {
  const server = Date.parse(serverTime);
  if (!Number.isNaN(server)) offset = server - receivedAt;
}

export function serverNow() {
  return Date.now() + offset;
}
