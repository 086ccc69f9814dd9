// messages.js: what the page tells the user when something fails, in plain words.
//
// The client library hands over the server's errors as they are (`code`, `message`,
// `details`, `status`): right for a developer, not for a user. This module turns them
// into sentences that name the field and say what to do, by error code and field. The
// server's own wording is never shown: an error this module does not know gets a
// generic sentence instead.

/** Field names as a user knows them (the server's `details[].field`). */
const FIELD_NAMES = {
  title: "title",
  description: "description",
  completed: "“done” mark",
  username: "username",
  password: "password",
};

/** One problem with one field, from the server's detail text (pydantic or the auth service's). */
function describeField(field, text) {
  const name = FIELD_NAMES[field];
  const the = name ? `The ${name}` : "One of the values";
  const message = String(text || "");
  const atMost = /at most (\d+)/.exec(message);
  const atLeast = /at least (\d+)/.exec(message);
  if (atMost) return `${the} is too long: at most ${atMost[1]} characters.`;
  if (atLeast && atLeast[1] === "1") return `${the} cannot be empty.`;
  if (atLeast) return `${the} is too short: at least ${atLeast[1]} characters.`;
  if (/required|missing/i.test(message)) return `${the} is missing.`;
  if (field === "username" && /letters|pattern|match/i.test(message)) {
    return "The username may contain only letters, digits and the characters _ . -";
  }
  return `${the} is not valid.`;
}

/** Sentences for a `validation_error` (WebSocket `details` or REST `errors`), one per field. */
function describeValidation(details) {
  const sentences = [];
  for (const detail of Array.isArray(details) ? details : []) {
    const sentence = describeField(detail && detail.field, detail && detail.message);
    if (!sentences.includes(sentence)) sentences.push(sentence);
  }
  return sentences.length ? sentences.join(" ") : "Something you entered is not valid.";
}

const SESSION_ENDED = "Your session has ended. Please log in again.";
const SESSION_CODES = new Set([
  "auth_failed",
  "token_expired",
  "session_expired",
  "invalid_refresh_token",
  "invalid_token",
]);

const BY_CODE = {
  // The todo service (WebSocket).
  not_found: () => "That todo no longer exists: it may have been deleted on another device.",
  conflict: () => "This todo was changed on another device, so your change was not saved.",
  rate_limited: () => "Too many changes at once. Wait a moment and try again.",
  limit_reached: (error) => {
    const limit = /(\d+)/.exec(String(error.message || ""));
    return limit
      ? `You have ${limit[1]} todos, the most allowed. Delete some to add more.`
      : "You have the most todos allowed. Delete some to add more.";
  },
  too_many_connections: () =>
    "This account is open in too many tabs or devices. Close some, then reload this page.",
  internal_error: () => "Something went wrong on the server, so this was not saved. Try again.",
  idempotency_key_reused: () => "This change could not be saved. Reload the page and try again.",
  invalid_message: () => "This change could not be saved. Reload the page and try again.",
  invalid_json: () => "This change could not be saved. Reload the page and try again.",
  // Sessions.
  auth_failed: () => SESSION_ENDED,
  token_expired: () => SESSION_ENDED,
  session_expired: () => SESSION_ENDED,
  invalid_refresh_token: () => SESSION_ENDED,
  invalid_token: () => SESSION_ENDED,
  // The auth service (REST).
  invalid_credentials: () => "Wrong username or password.",
  username_taken: (error, context) =>
    context.username
      ? `The username “${context.username}” is taken. Choose another one.`
      : "That username is taken. Choose another one.",
  too_many_attempts: () => "Too many attempts. Wait a few minutes, then try again.",
  busy: () => "The server is busy. Try again in a few seconds.",
  payload_too_large: () => "That is too long to send.",
  bad_gateway: () => "The server cannot be reached right now. Try again in a moment.",
  // The client library's own.
  network_error: () => "The server cannot be reached. Check your connection and try again.",
  timeout: () => "The server took too long to answer. Try again.",
  offline: () => "You are signed out, so this was not saved.",
};

/**
 * A sentence for the user about `error` (a TodoApiError, or anything with `code`,
 * `message`, `details`, `status`). `context.username` names the account for
 * `username_taken`.
 */
export function describeError(error, context = {}) {
  const code = error && error.code;
  if (code === "validation_error") return describeValidation(error.details);
  const known = code && Object.hasOwn(BY_CODE, code) ? BY_CODE[code] : null;
  if (known) return known(error, context);
  const status = Number(error && error.status);
  if (status === 429) return BY_CODE.too_many_attempts();
  if (status === 401 || status === 403) return SESSION_ENDED;
  if (status === 502 || status === 503 || status === 504) return BY_CODE.bad_gateway();
  if (status >= 500) return "Something went wrong on the server. Try again in a moment.";
  if (status >= 400) return "The server refused this request. Reload the page and try again.";
  return "Something went wrong. Try again.";
}

/** Codes that describe the connection rather than what the user did. */
const OUTAGE_CODES = new Set([
  "network_error",
  "bad_gateway",
  "busy",
  "timeout",
  "too_many_connections",
]);

/**
 * How long an error stays true, so the page can take it away when it no longer is:
 * - "outage": the server could not be reached; over once the connection is back.
 * - "session": the session ended; over once the user is signed in again.
 * - "action": one action was refused; over on the next successful one, or once the user
 *   changes what was refused.
 */
export function errorLifetime(error) {
  const code = error && error.code;
  const status = Number(error && error.status);
  if (OUTAGE_CODES.has(code) || status >= 500) return "outage";
  if (SESSION_CODES.has(code)) return "session";
  return "action";
}
