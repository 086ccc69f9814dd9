// todo-client.js: a dependency-free client for the todo backend (see docs/web-client.md).
//
//   import { AuthApi, TodoClient } from "./todo-client.js";
//   const client = new TodoClient({ auth: new AuthApi() });
//   client.addEventListener("change", (e) => render(e.detail.todos));
//   client.addEventListener("statechange", (e) => showState(e.detail.state));
//   await client.login("alice", "correct horse");   // or: await client.resume();
//   const todo = await client.createTodo({ title: "Buy milk" });
//
// The wire format is CONTRACT.md sections 3 (REST under /auth), 4 (WebSocket /ws_ep/ws)
// and 6 (protocol 1.1: revisions, resume, if_version, idempotency keys, in-band refresh).
// Types: todo-client.d.ts, next to this file.

/** Connection states, as reported by `TodoClient.state` and the "statechange" event. */
export const ConnectionState = Object.freeze({
  CONNECTING: "connecting", // first connection after login/resume
  OPEN: "open", // authenticated and in sync (the first todos_list or todos_delta has arrived)
  RECONNECTING: "reconnecting", // lost the socket; retrying with backoff
  OFFLINE: "offline", // not logged in, logged out, or the session could not be renewed
});

/** Where the refresh token is kept (sessionStorage: survives a reload of this tab only). */
export const REFRESH_TOKEN_KEY = "todo.refresh_token";

/** Prefix of the storage key of a user's unsent writes: `todo.outbox.<user id>`. */
export const OUTBOX_KEY_PREFIX = "todo.outbox.";

/** An error from the server (REST or WebSocket) or from the client itself. */
export class TodoApiError extends Error {
  /**
   * @param {string} code machine code, e.g. "validation_error", "conflict", "offline"
   * @param {string} message human text, safe to show
   * @param {{status?: number, details?: Array<{field?: string, message?: string}>, todo?: object}} [extra]
   *   `todo`: for "conflict", the server's current copy of the todo
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "TodoApiError";
    this.code = code;
    this.status = extra.status;
    this.details = extra.details;
    this.todo = extra.todo;
  }
}

/**
 * Decode a JWT's payload without verifying it (the server verifies; the client only
 * needs `exp` to know when to refresh). Returns null when the token is not a JWT.
 */
export function decodeJwtPayload(token) {
  try {
    const part = String(token).split(".")[1];
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** Exponential backoff with full jitter: a uniform delay in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(attempt, { baseMs = 500, capMs = 20000, random = Math.random } = {}) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

/**
 * A random UUID (v4) for idempotency keys. `crypto.randomUUID` exists only in secure
 * contexts (https, localhost); `getRandomValues` works everywhere.
 */
export function newIdempotencyKey() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") {
    try {
      return c.randomUUID();
    } catch {
      // not a secure context: fall through
    }
  }
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; // version 4
  b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---- the server's state: a pure reducer ----

/** An empty copy of the server's state: todos by id and the revision they reflect. */
export function createSyncState() {
  return { todos: new Map(), rev: null };
}

/**
 * Apply one server message to a sync state (`{todos: Map<id, Todo>, rev}`), in place.
 *
 * - `todos_list` replaces everything and takes its `rev`.
 * - `todos_delta` upserts and removes, and takes its `rev`, when it starts at or below the
 *   held `rev`; one that ends at or below it is stale and ignored.
 * - `todo_created`/`todo_updated`/`todo_deleted`: a `rev` at or below the held one is
 *   already covered (ignored); `rev + 1` is applied; anything later is a gap: not
 *   applied, and `gap: true` tells the caller to ask `sync` from the held `rev`.
 * - A copy of a todo never replaces one with a higher `version` (never `updated_at`).
 * - Messages without `rev` (protocol 1.0) are applied by `version` alone.
 *
 * @returns {{changed: boolean, gap: boolean}}
 */
export function applyServerMessage(state, message) {
  const none = { changed: false, gap: false };
  const type = message && message.type;
  const rev = typeof message?.rev === "number" ? message.rev : null;
  switch (type) {
    case "todos_list":
      state.todos.clear();
      for (const todo of message.data || []) state.todos.set(todo.id, todo);
      state.rev = rev;
      return { changed: true, gap: false };
    case "todos_delta": {
      if (state.rev !== null && rev !== null && rev <= state.rev) return none;
      if (state.rev === null || message.since > state.rev) return { changed: false, gap: true };
      const data = message.data || {};
      let changed = false;
      for (const todo of data.upserted || []) changed = upsertByVersion(state.todos, todo) || changed;
      for (const id of data.deleted || []) changed = state.todos.delete(id) || changed;
      state.rev = rev;
      return { changed, gap: false };
    }
    case "todo_created":
    case "todo_updated":
    case "todo_deleted": {
      if (rev !== null && state.rev !== null) {
        if (rev <= state.rev) return none; // covered already (e.g. by a delta)
        if (rev > state.rev + 1) return { changed: false, gap: true };
        state.rev = rev;
      }
      const changed =
        type === "todo_deleted"
          ? state.todos.delete(message.data && message.data.todo_id)
          : upsertByVersion(state.todos, message.data);
      return { changed, gap: false };
    }
    default:
      return none;
  }
}

/** Store `todo` unless the held copy has a higher `version`. True when something changed. */
export function upsertByVersion(todos, todo) {
  if (!todo || typeof todo.id !== "number") return false;
  const known = todos.get(todo.id);
  if (known && typeof known.version === "number" && typeof todo.version === "number") {
    if (known.version > todo.version) return false;
    if (known.version === todo.version && sameTodo(known, todo)) return false;
  }
  todos.set(todo.id, todo);
  return true;
}

function sameTodo(a, b) {
  return (
    a.title === b.title &&
    a.description === b.description &&
    a.completed === b.completed &&
    a.updated_at === b.updated_at
  );
}

/**
 * The list a page shows: the server's todos with this client's unsent or unconfirmed
 * writes laid over them, in id order (creates not yet confirmed last, in order).
 *
 * Each item is a Todo plus `pending` ("create", "update" or null) and `conflict` (or null).
 * A pending create has a temporary negative `id` and `version` 0; a todo with pending
 * updates has the `version` it will have once they are applied. Pending deletes are
 * left out of the list.
 */
export function viewTodos(todos, writes = [], conflicts = new Map(), ownerId = null) {
  const view = new Map();
  for (const todo of todos.values()) {
    view.set(todo.id, { ...todo, pending: null, conflict: conflicts.get(todo.id) || null });
  }
  for (const write of writes) {
    const current = view.get(write.todoId);
    if (write.action === "create_todo") {
      const at = new Date(write.at || Date.now()).toISOString();
      view.set(write.todoId, {
        id: write.todoId,
        title: write.payload.title,
        description: write.payload.description ?? null,
        completed: write.payload.completed ?? false,
        owner_id: ownerId,
        created_at: at,
        updated_at: at,
        version: 0,
        pending: "create",
        conflict: null,
      });
    } else if (write.action === "update_todo" && current) {
      view.set(write.todoId, {
        ...current,
        ...write.payload,
        version: current.pending === "create" ? 0 : current.version + 1,
        pending: current.pending === "create" ? "create" : "update",
      });
    } else if (write.action === "delete_todo") {
      view.delete(write.todoId);
    }
  }
  return [...view.values()].sort(byListOrder);
}

function byListOrder(a, b) {
  if (a.id > 0 && b.id > 0) return a.id - b.id;
  if (a.id > 0) return -1;
  if (b.id > 0) return 1;
  return b.id - a.id; // temporary ids count down: -1 was created before -2
}

// ---- REST ----

/** The REST calls of the auth service (paths as seen through the gateway). */
export class AuthApi {
  /** @param {{baseUrl?: string, fetch?: typeof fetch}} [options] baseUrl "" means this origin */
  constructor({ baseUrl = "", fetch: fetchImpl } = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this._fetch = fetchImpl || globalThis.fetch.bind(globalThis);
  }

  /** Create an account: resolves to `{id, username, created_at}`. */
  register(username, password) {
    return this._call("POST", "/auth/register", { json: { username, password } });
  }

  /** Log in: resolves to `{access_token, token_type, expires_in, refresh_token}`. */
  login(username, password) {
    return this._call("POST", "/auth/login", { json: { username, password } });
  }

  /** Trade a refresh token for a new pair (the old refresh token is spent). */
  refresh(refreshToken) {
    return this._call("POST", "/auth/refresh", { json: { refresh_token: refreshToken } });
  }

  /** Revoke a refresh token. */
  logout(refreshToken) {
    return this._call("POST", "/auth/logout", { json: { refresh_token: refreshToken } });
  }

  /** The user an access token belongs to: `{id, username, created_at}`. */
  me(accessToken) {
    return this._call("GET", "/auth/me", { bearer: accessToken });
  }

  async _call(method, path, { json, bearer } = {}) {
    const headers = { Accept: "application/json" };
    if (json !== undefined) headers["Content-Type"] = "application/json";
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    let response;
    try {
      response = await this._fetch(this.baseUrl + path, {
        method,
        headers,
        body: json === undefined ? undefined : JSON.stringify(json),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch {
      throw new TodoApiError("network_error", "Could not reach the server. Check your connection.");
    }
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!response.ok) {
      const code = (body && body.code) || `http_${response.status}`;
      const message = (body && body.detail) || `The server answered ${response.status}.`;
      throw new TodoApiError(code, message, { status: response.status, details: body && body.errors });
    }
    return body;
  }
}

// ---- the live client ----

/** Closing errors: sent without request_id, right before the server closes with 1008. */
const AUTH_CLOSE_CODES = new Set(["auth_failed", "token_expired"]);
const WRITE_ACTIONS = new Set(["create_todo", "update_todo", "delete_todo"]);
const EVENT_TYPES = new Set(["todo_created", "todo_updated", "todo_deleted", "todos_delta"]);
const OPEN = 1; // WebSocket.OPEN, without needing the class

/**
 * A live todo list over the WebSocket: login and token refresh, resume with `since`,
 * optimistic writes with idempotency keys that survive reconnects and reloads.
 *
 * Events (all CustomEvent):
 * - "change"       detail {todos, reason}: the list (with pending writes laid over) changed
 * - "statechange"  detail {state, previous}: one of ConnectionState
 * - "session"      detail {user}: logged in or resumed ({id, username} from the token)
 * - "loggedout"    detail {reason, error}: reason "logout" or "session_expired"
 * - "writesettled" detail {write, outcome, todo, error}: a write was confirmed, refused
 *                  or hit a conflict (also for writes restored after a reload)
 * - "servererror"  detail {error}: an error message no request was waiting for
 */
export class TodoClient extends EventTarget {
  /**
   * @param {object} [options]
   * @param {AuthApi} [options.auth] the REST client (default: same origin)
   * @param {string} [options.wsUrl] default: ws(s)://<this host>/ws_ep/ws
   * @param {Storage|null} [options.storage] refresh token and unsent writes (default sessionStorage)
   * @param {number} [options.requestTimeoutMs] how long a read (refresh()) may wait for its reply
   * @param {number} [options.backoffBaseMs] first reconnect delay ceiling
   * @param {number} [options.backoffCapMs] largest reconnect delay ceiling
   * @param {number} [options.maxFramesPerSecond] pace of queued frames (the server rate-limits)
   * @param {typeof WebSocket} [options.WebSocket]
   */
  constructor(options = {}) {
    super();
    this.auth = options.auth || new AuthApi();
    this.wsUrl = options.wsUrl || defaultWsUrl();
    this.storage = options.storage === undefined ? safeSessionStorage() : options.storage;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 15000;
    this.backoff = { baseMs: options.backoffBaseMs ?? 500, capMs: options.backoffCapMs ?? 20000 };
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    // Below the server's default limit (30 a second, bursts of 60), so flushing a long
    // offline queue is not answered with rate_limited.
    const rate = options.maxFramesPerSecond ?? 20;
    this._budget = { rate, burst: rate * 2, tokens: rate * 2, at: Date.now() };

    this._state = ConnectionState.OFFLINE;
    this._sync = createSyncState(); // the server's todos and the rev they reflect
    this._user = null;
    this._accessToken = null;
    this._accessExp = 0; // seconds since the epoch
    this._socket = null; // {socket, token, synced, closeCode, syncId, seenRev}
    this._attempt = 0; // consecutive failed connection attempts
    this._authFailures = 0; // consecutive auth_failed answers despite a fresh token
    this._reconnectTimer = null;
    this._refreshTimer = null;
    this._pumpTimer = null;
    this._refreshing = null; // the one refresh in flight (refresh tokens rotate: never two)
    this._sessionEpoch = 0; // bumped on logout, so a late refresh cannot revive the session

    // Writes, in the order they were made, until the server answers them: persisted.
    this._outboxUser = null; // whose writes these are
    this._writes = []; // {key, action, todoId, payload?, ifVersion?, at, sentOn?}
    this._conflicts = new Map(); // todo id -> {todoId, action, changes, theirs, error}
    this._nextTempId = -1;
    this._waiters = new Map(); // write key -> {resolve, reject}: the promises of this page

    this._inflight = new Map(); // request_id -> {ctx, key} | {ctx, read} | {ctx, control}
    this._reads = []; // reads waiting for a synced socket: {resolve, reject, timer, message}
    this._nextId = 1;
    this._idPrefix = Math.random().toString(36).slice(2, 8);
    this._onOnline = () => this.reconnectNow(); // the network is back: skip the wait
    if (globalThis.addEventListener) globalThis.addEventListener("online", this._onOnline);
  }

  /** One of ConnectionState. */
  get state() {
    return this._state;
  }

  /** The todos as the user should see them: the server's, with pending writes laid over. */
  get todos() {
    return viewTodos(this._sync.todos, this._writes, this._conflicts, this._ownerId());
  }

  /** The server's todos only, as last received (no pending writes), in id order. */
  get confirmedTodos() {
    return [...this._sync.todos.values()].sort((a, b) => a.id - b.id);
  }

  /** The revision the todos reflect (null before the first list). */
  get rev() {
    return this._sync.rev;
  }

  /** Writes not yet answered by the server, oldest first (copies). */
  get pendingWrites() {
    return this._writes.map(publicWrite);
  }

  /** Edits the server refused with `conflict`, not yet re-applied or dismissed. */
  get conflicts() {
    return [...this._conflicts.values()];
  }

  /** `{id, username}` of the logged-in user, or null. */
  get user() {
    return this._user;
  }

  /** True when a refresh token is stored, so `resume()` may log in without a password. */
  get hasStoredSession() {
    return Boolean(this._readRefreshToken());
  }

  /** Log in with a password, then connect. Rejects with TodoApiError (e.g. invalid_credentials). */
  async login(username, password) {
    const pair = await this.auth.login(username, password);
    this._useTokens(pair);
    this._startSession();
  }

  /** Create an account (does not log in). */
  register(username, password) {
    return this.auth.register(username, password);
  }

  /**
   * Log in again from the stored refresh token (after a reload). Resolves true when that
   * worked, false when there was no session to resume or the server refused it.
   */
  async resume() {
    if (!this._readRefreshToken()) return false;
    try {
      await this._refreshTokens();
    } catch (error) {
      if (isRefusal(error)) {
        this._writeRefreshToken(null); // spent or revoked: forget it
        return false;
      }
      throw error;
    }
    this._startSession();
    return true;
  }

  /** Revoke the refresh token, close the socket, forget the session and its unsent writes. */
  async logout() {
    const refreshToken = this._readRefreshToken();
    this._endSession("logout");
    if (refreshToken) {
      try {
        await this.auth.logout(refreshToken);
      } catch {
        // Best effort: the token is forgotten here either way and expires on its own.
      }
    }
  }

  /**
   * Create a todo. It shows in `todos` at once (`pending: "create"`, a temporary negative
   * id); resolves to the Todo the server stored, once it has answered, however many
   * reconnects that takes.
   */
  createTodo({ title, description, completed } = {}) {
    const payload = { title };
    if (description !== undefined) payload.description = description;
    if (completed !== undefined) payload.completed = completed;
    return this._write({ action: "create_todo", todoId: this._nextTempId, payload }, () => {
      this._nextTempId -= 1;
    });
  }

  /**
   * Change some fields of a todo: resolves to the updated Todo. With `ifVersion`, the
   * server applies it only to that version, and rejects with code "conflict" otherwise
   * (`error.todo` is its copy; the conflict is also kept in `conflicts`).
   */
  updateTodo(todoId, changes, { ifVersion } = {}) {
    return this._write({ action: "update_todo", todoId, payload: { ...changes }, ifVersion });
  }

  /** Delete a todo: resolves to `{todo_id}`. `ifVersion` as for `updateTodo`. */
  deleteTodo(todoId, { ifVersion } = {}) {
    return this._write({ action: "delete_todo", todoId, ifVersion });
  }

  /**
   * Send the change a conflict refused again, on top of the server's current copy (its
   * version as `ifVersion`). Resolves like `updateTodo`/`deleteTodo`.
   */
  reapplyConflict(todoId) {
    const conflict = this._conflicts.get(todoId);
    if (!conflict) {
      return Promise.reject(new TodoApiError("not_found", "There is no conflict for this todo."));
    }
    this._conflicts.delete(todoId);
    this._saveOutbox();
    const current = this._sync.todos.get(todoId);
    if (!current) {
      this._changed("conflict");
      return Promise.reject(new TodoApiError("not_found", "This todo was deleted meanwhile."));
    }
    const options = { ifVersion: current.version };
    return conflict.action === "delete_todo"
      ? this.deleteTodo(todoId, options)
      : this.updateTodo(todoId, conflict.changes, options);
  }

  /** Keep the server's copy: forget the conflict of this todo. */
  dismissConflict(todoId) {
    if (this._conflicts.delete(todoId)) {
      this._saveOutbox();
      this._changed("conflict");
    }
  }

  /** Ask for the whole list again: resolves to the todos (the state is replaced too). */
  refresh() {
    return this._read({ action: "get_all_todos", payload: null }).then(() => this.todos);
  }

  /**
   * Skip the rest of the reconnect wait and try at once (a "Retry now" button; the
   * browser's `online` event does the same). Returns true when a new
   * attempt started, false when no wait was running (connected, an attempt already under
   * way, or logged out).
   */
  reconnectNow() {
    if (!this._reconnectTimer || !this._accessToken) return false;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._renewThenConnect();
    return true;
  }

  /** Stop everything (timers, socket, listeners) without revoking the session. */
  dispose() {
    this._stopConnection();
    this._rejectWaiters(new TodoApiError("offline", "The client was closed."));
    if (globalThis.removeEventListener) globalThis.removeEventListener("online", this._onOnline);
    this._setState(ConnectionState.OFFLINE);
  }

  // ---- session and tokens ----

  _startSession() {
    this._user = userFromToken(this._accessToken);
    this._adoptOutbox(this._user.id);
    this._emit("session", { user: this._user });
    this._changed("session");
    this._attempt = 0;
    this._authFailures = 0;
    this._connect(ConnectionState.CONNECTING);
  }

  _endSession(reason, error) {
    this._sessionEpoch += 1;
    this._stopConnection();
    if (reason === "logout") {
      // Logging out discards what was not sent (it would be sent as nobody).
      this._rejectWaiters(new TodoApiError("offline", "You logged out before this was saved."));
      this._removeOutbox();
    }
    // After "session_expired" the writes stay stored (and their promises pending): they
    // are sent when the same user logs in again in this tab.
    this._accessToken = null;
    this._accessExp = 0;
    this._user = null;
    this._writeRefreshToken(null);
    this._sync = createSyncState();
    this._emit("change", { todos: [], reason });
    this._setState(ConnectionState.OFFLINE);
    this._emit("loggedout", { reason, error });
  }

  _useTokens(pair) {
    this._accessToken = pair.access_token;
    // The lifetime comes from the token (exp - iat, both on the server's clock) and is
    // counted from now on ours, so a browser clock that is off does not matter.
    const claims = decodeJwtPayload(pair.access_token) || {};
    const lifetime =
      claims.exp && claims.iat ? claims.exp - claims.iat : Number(pair.expires_in) || 0;
    this._accessExp = Date.now() / 1000 + lifetime;
    // Refresh tokens rotate: the old one is spent now, so keep the new one at once.
    this._writeRefreshToken(pair.refresh_token);
    this._scheduleProactiveRefresh(lifetime);
    // The open socket takes the new token in band, so it is not closed at the old `exp`.
    this._sendTokenInBand(this._socket);
  }

  _scheduleProactiveRefresh(lifetime) {
    clearTimeout(this._refreshTimer);
    // Refresh a little before `exp`: a quarter of the lifetime early, at most a minute.
    const lead = Math.min(60, lifetime / 4);
    const delayMs = Math.max(1000, (lifetime - lead) * 1000);
    this._refreshTimer = setTimeout(() => this._proactiveRefresh(0), delayMs);
  }

  _proactiveRefresh(failures) {
    this._refreshTokens().catch((error) => {
      if (isRefusal(error)) {
        this._onRefreshFailure(error);
        return;
      }
      // Auth service unreachable: the socket may still be fine, so just try again later.
      const delay = backoffDelay(failures + 2, this.backoff);
      this._refreshTimer = setTimeout(() => this._proactiveRefresh(failures + 1), delay);
    });
  }

  /** The one refresh in flight, shared by every caller. */
  _refreshTokens() {
    if (!this._refreshing) {
      const refreshToken = this._readRefreshToken();
      const epoch = this._sessionEpoch;
      const attempt = refreshToken
        ? this.auth.refresh(refreshToken).then((pair) => {
            if (epoch !== this._sessionEpoch) throw new TodoApiError("offline", "Logged out.");
            this._useTokens(pair);
          })
        : Promise.reject(new TodoApiError("invalid_refresh_token", "There is no session to renew."));
      this._refreshing = attempt.finally(() => {
        this._refreshing = null;
      });
    }
    return this._refreshing;
  }

  _onRefreshFailure(error) {
    if (isRefusal(error)) {
      const ended = new TodoApiError(
        "session_expired",
        "Your session has ended. Please log in again.",
      );
      this._endSession("session_expired", ended);
      return;
    }
    // The auth service is unreachable for now: keep the session, try again with backoff.
    this._scheduleReconnect();
  }

  _accessTokenFresh(marginSeconds = 2) {
    return Boolean(this._accessToken) && this._accessExp - marginSeconds > Date.now() / 1000;
  }

  _readRefreshToken() {
    try {
      return this.storage ? this.storage.getItem(REFRESH_TOKEN_KEY) : this._memoryRefresh || null;
    } catch {
      return this._memoryRefresh || null;
    }
  }

  _writeRefreshToken(token) {
    this._memoryRefresh = token || null;
    try {
      if (!this.storage) return;
      if (token) this.storage.setItem(REFRESH_TOKEN_KEY, token);
      else this.storage.removeItem(REFRESH_TOKEN_KEY);
    } catch {
      // Storage may be disabled (privacy mode): the token then lives in memory only.
    }
  }

  // ---- the outbox: writes until the server answers them ----

  _write(write, onQueued) {
    if (!this._accessToken || !this._user) {
      return Promise.reject(new TodoApiError("offline", "You are not logged in."));
    }
    const creates = write.action === "create_todo";
    if (!creates && write.todoId < 0 && !this._writes.some((w) => w.todoId === write.todoId)) {
      // A temporary id whose create is gone (refused, or never made here).
      return Promise.reject(new TodoApiError("not_found", "This todo was never created."));
    }
    const record = { ...write, key: newIdempotencyKey(), at: Date.now(), sentOn: null };
    if (record.ifVersion === undefined || record.ifVersion === null) delete record.ifVersion;
    if (record.payload === undefined) delete record.payload;
    if (onQueued) onQueued();
    return new Promise((resolve, reject) => {
      this._waiters.set(record.key, { resolve, reject });
      this._writes.push(record);
      this._saveOutbox();
      this._changed("write");
      this._pump();
    });
  }

  _outboxKey(userId) {
    return OUTBOX_KEY_PREFIX + userId;
  }

  /** Take over the stored writes of `userId` (a reload, or another user logging in). */
  _adoptOutbox(userId) {
    if (this._outboxUser === userId) return;
    this._rejectWaiters(new TodoApiError("offline", "Another user logged in."));
    this._outboxUser = userId;
    this._writes = [];
    this._conflicts = new Map();
    this._nextTempId = -1;
    let stored = null;
    try {
      stored = this.storage && JSON.parse(this.storage.getItem(this._outboxKey(userId)) || "null");
    } catch {
      stored = null; // unreadable: nothing to resume
    }
    if (stored && Array.isArray(stored.writes)) {
      this._writes = stored.writes
        .filter((w) => w && typeof w.key === "string" && WRITE_ACTIONS.has(w.action))
        .map((w) => ({ ...w, sentOn: null }));
      for (const c of stored.conflicts || []) this._conflicts.set(c.todoId, c);
      const lowest = Math.min(-1, ...this._writes.map((w) => w.todoId));
      this._nextTempId = Math.min(Number(stored.nextTempId) || -1, lowest - 1);
    }
  }

  _saveOutbox() {
    if (!this.storage || this._outboxUser === null) return;
    const key = this._outboxKey(this._outboxUser);
    try {
      if (!this._writes.length && !this._conflicts.size) {
        this.storage.removeItem(key);
        return;
      }
      const conflicts = [...this._conflicts.values()].map(({ error, ...rest }) => rest);
      this.storage.setItem(
        key,
        JSON.stringify({
          v: 1,
          nextTempId: this._nextTempId,
          writes: this._writes.map(({ sentOn, ...rest }) => rest),
          conflicts,
        }),
      );
    } catch {
      // Storage full or disabled: the writes still live in memory until answered.
    }
  }

  _removeOutbox() {
    if (this.storage && this._outboxUser !== null) {
      try {
        this.storage.removeItem(this._outboxKey(this._outboxUser));
      } catch {
        // disabled storage: nothing was stored
      }
    }
    this._writes = [];
    this._conflicts = new Map();
    this._outboxUser = null;
  }

  _rejectWaiters(error) {
    const waiters = [...this._waiters.values()];
    this._waiters.clear();
    for (const waiter of waiters) waiter.reject(error);
  }

  /** Send what can be sent, in order, at the paced rate. */
  _pump() {
    clearTimeout(this._pumpTimer);
    this._pumpTimer = null;
    const ctx = this._socket;
    if (!ctx || !ctx.synced || ctx.socket.readyState !== OPEN) return;
    for (const write of this._writes) {
      if (write.sentOn === ctx) continue;
      // A change to a todo whose create is unanswered waits for its real id (and so do
      // the writes after it: order is kept).
      if (write.todoId < 0 && write.action !== "create_todo") break;
      if (!this._takeBudget()) return;
      const frame = { action: write.action, idempotency_key: write.key };
      if (write.action !== "create_todo") frame.todo_id = write.todoId;
      if (write.payload !== undefined) frame.payload = write.payload;
      if (write.ifVersion !== undefined) frame.if_version = write.ifVersion;
      write.sentOn = ctx;
      this._send(ctx, frame, { key: write.key });
    }
    while (this._reads.length) {
      if (!this._takeBudget()) return;
      const read = this._reads.shift();
      this._send(ctx, read.message, { read });
    }
  }

  /** One frame's worth of the send budget, or false (and a later pump) when it is spent. */
  _takeBudget() {
    const b = this._budget;
    const now = Date.now();
    b.tokens = Math.min(b.burst, b.tokens + ((now - b.at) / 1000) * b.rate);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    const waitMs = Math.max(10, ((1 - b.tokens) / b.rate) * 1000);
    this._pumpTimer = setTimeout(() => this._pump(), waitMs);
    return false;
  }

  _send(ctx, message, entry) {
    const requestId = `${this._idPrefix}-${this._nextId++}`;
    this._inflight.set(requestId, { ctx, ...entry });
    ctx.socket.send(JSON.stringify({ ...message, request_id: requestId }));
    return requestId;
  }

  /** The server answered a write: confirmed, refused or conflict. */
  _settleWrite(key, message) {
    const index = this._writes.findIndex((w) => w.key === key);
    if (index === -1) return; // answered already (a repeat after a reconnect)
    const write = this._writes[index];
    if (message.type === "error" && message.code === "rate_limited") {
      // Not handled by the server: send it again (same key) after a pause.
      write.sentOn = null;
      this._budget.tokens = -this._budget.rate; // a second's pause
      this._pump();
      return;
    }
    this._writes.splice(index, 1);
    const waiter = this._waiters.get(key);
    this._waiters.delete(key);
    if (message.type === "error") {
      const error = new TodoApiError(message.code, message.message, {
        details: message.details,
        todo: message.data,
      });
      let outcome = "refused";
      if (message.code === "conflict" && message.data) {
        outcome = "conflict";
        const earlier = this._conflicts.get(write.todoId);
        const changes = { ...(earlier && earlier.changes), ...(write.payload || {}) };
        this._conflicts.set(write.todoId, {
          todoId: write.todoId,
          action: write.action,
          changes: write.action === "update_todo" ? changes : null,
          theirs: message.data,
          error,
        });
      }
      if (write.action === "create_todo") this._dropDependents(write.todoId, error);
      this._saveOutbox();
      this._emit("writesettled", { write: publicWrite(write), outcome, todo: message.data, error });
      if (waiter) waiter.reject(error);
    } else {
      if (write.action === "create_todo" && message.data) {
        for (const later of this._writes) {
          if (later.todoId === write.todoId) later.todoId = message.data.id;
        }
      }
      this._saveOutbox();
      const todo = write.action === "delete_todo" ? null : message.data;
      this._emit("writesettled", { write: publicWrite(write), outcome: "confirmed", todo, error: null });
      if (waiter) waiter.resolve(message.data);
    }
  }

  /** A create was refused: the writes waiting for its id can never be sent. */
  _dropDependents(tempId, cause) {
    const dependents = this._writes.filter((w) => w.todoId === tempId);
    this._writes = this._writes.filter((w) => w.todoId !== tempId);
    for (const write of dependents) {
      const error = new TodoApiError("not_found", `The todo was not created: ${cause.message}`);
      const waiter = this._waiters.get(write.key);
      this._waiters.delete(write.key);
      this._emit("writesettled", { write: publicWrite(write), outcome: "refused", todo: null, error });
      if (waiter) waiter.reject(error);
    }
  }

  // ---- reads ----

  _read(message) {
    if (!this._accessToken) {
      return Promise.reject(new TodoApiError("offline", "You are not logged in."));
    }
    return new Promise((resolve, reject) => {
      const read = { message, resolve, reject, timer: null };
      read.timer = setTimeout(() => {
        this._reads = this._reads.filter((r) => r !== read);
        for (const [id, entry] of this._inflight) if (entry.read === read) this._inflight.delete(id);
        reject(new TodoApiError("timeout", "The server did not answer in time. Try again."));
      }, this.requestTimeoutMs);
      this._reads.push(read);
      this._pump();
    });
  }

  // ---- the socket ----

  _connect(state) {
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    if (!this._accessToken) return;
    const previous = this._socket;
    if (previous) {
      // A new login while connected: the old socket's unanswered writes go on the new one.
      this._socket = null;
      this._forgetSocket(previous);
      try {
        previous.socket.close(1000, "replaced");
      } catch {
        // already closing
      }
    }
    this._setState(state);
    const token = this._accessToken;
    let url = `${this.wsUrl}?token=${encodeURIComponent(token)}`;
    // Resume: the server sends only what changed after the revision held.
    if (this._sync.rev !== null) url += `&since=${this._sync.rev}`;
    let socket;
    try {
      socket = new this._WebSocket(url);
    } catch {
      this._scheduleReconnect();
      return;
    }
    // seenRev: the highest revision this socket announced; above the held one means a gap.
    const ctx = { socket, token, synced: false, closeCode: null, syncId: null, seenRev: -1 };
    this._socket = ctx;
    socket.onopen = () => {
      // Not "open" yet: the server first checks the token, then sends the list or delta.
    };
    socket.onmessage = (event) => this._onMessage(ctx, event);
    socket.onerror = () => {
      // Always followed by a close event, which decides what to do next.
    };
    socket.onclose = (event) => this._onClose(ctx, event);
  }

  _onMessage(ctx, event) {
    if (ctx !== this._socket) return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return; // the contract promises JSON; ignore anything else
    }
    if (!message || typeof message !== "object") return;
    if (message.type === "error" && !message.request_id && AUTH_CLOSE_CODES.has(message.code)) {
      ctx.closeCode = message.code; // the server closes with 1008 right after this
      return;
    }
    const entry = message.request_id ? this._inflight.get(message.request_id) : undefined;
    if (entry) this._inflight.delete(message.request_id);
    if (entry && message.request_id === ctx.syncId) ctx.syncId = null;
    if (EVENT_TYPES.has(message.type) && typeof message.rev === "number") {
      ctx.seenRev = Math.max(ctx.seenRev, message.rev);
    }

    const result = applyServerMessage(this._sync, message);
    let changed = result.changed;
    if (message.type === "error" && message.code === "conflict" && message.data) {
      changed = upsertByVersion(this._sync.todos, message.data) || changed; // theirs wins
    }
    if (!ctx.synced && (message.type === "todos_list" || message.type === "todos_delta")) {
      ctx.synced = true;
      this._attempt = 0;
      this._authFailures = 0;
      this._setState(ConnectionState.OPEN);
      // A token renewed while this socket was connecting: hand it over in band.
      this._sendTokenInBand(ctx);
    }
    // Defence in depth (the server promises gap-free delivery): a revision announced
    // beyond the one held, or a delta that starts after it, means something was missed.
    const behind = this._sync.rev !== null && ctx.seenRev > this._sync.rev;
    if (ctx.synced && (result.gap || behind)) this._askSync(ctx);

    if (entry && entry.key) this._settleWrite(entry.key, message);
    else if (entry && entry.read) this._settleRead(entry.read, message);
    else if (entry && entry.control) {
      // refresh_token: an auth_failed answer leaves the socket open until its current
      // token expires; the reconnect then uses a fresh token.
    } else if (message.type === "error") {
      const error = new TodoApiError(message.code, message.message, { details: message.details });
      this._emit("servererror", { error });
    }
    if (changed || (entry && entry.key)) this._changed(message.type);
    this._pump();
  }

  _settleRead(read, message) {
    clearTimeout(read.timer);
    if (message.type === "error") {
      read.reject(new TodoApiError(message.code, message.message, { details: message.details }));
    } else {
      read.resolve(message);
    }
  }

  /** Ask for the changes after the held revision (a gap, or a delta we could not place). */
  _askSync(ctx) {
    if (ctx.syncId || ctx.socket.readyState !== OPEN) return;
    const message = { action: "sync" };
    if (this._sync.rev !== null) message.since = this._sync.rev;
    ctx.syncId = this._send(ctx, message, { control: true });
  }

  /** Move the socket's expiry to the current token's, without reconnecting. */
  _sendTokenInBand(ctx) {
    if (!ctx || !ctx.synced || ctx.token === this._accessToken) return;
    if (ctx.socket.readyState !== OPEN || !this._accessToken) return;
    ctx.token = this._accessToken;
    this._send(ctx, { action: "refresh_token", payload: { token: ctx.token } }, { control: true });
  }

  _onClose(ctx, event) {
    if (ctx !== this._socket) return;
    this._socket = null;
    this._forgetSocket(ctx);
    if (!this._accessToken) return; // logged out meanwhile
    if (ctx.closeCode === "token_expired") {
      // Usually the proactive refresh already got a new token: reconnect at once.
      this._renewThenConnect();
    } else if (ctx.closeCode === "auth_failed" || event.code === 1008) {
      this._authFailures += 1;
      if (this._authFailures > 2) {
        this._endSession(
          "session_expired",
          new TodoApiError("auth_failed", "The server refused this session. Please log in again."),
        );
        return;
      }
      // The token was refused: never retry it, get a new one first.
      this._accessExp = 0;
      this._renewThenConnect();
    } else {
      this._scheduleReconnect();
    }
  }

  /**
   * A socket is gone. Its unanswered writes are sent again, with the same idempotency
   * keys, on the next connection: the server applies each once and answers the repeat.
   */
  _forgetSocket(ctx) {
    for (const write of this._writes) if (write.sentOn === ctx) write.sentOn = null;
    const resend = [];
    for (const [id, entry] of this._inflight) {
      if (entry.ctx !== ctx) continue;
      this._inflight.delete(id);
      if (entry.read) resend.push(entry.read); // reads are safe to repeat
    }
    this._reads = [...resend, ...this._reads];
  }

  _renewThenConnect() {
    this._setState(ConnectionState.RECONNECTING);
    if (this._accessTokenFresh()) {
      this._connect(ConnectionState.RECONNECTING);
      return;
    }
    this._refreshTokens().then(
      () => this._connect(ConnectionState.RECONNECTING),
      (error) => this._onRefreshFailure(error),
    );
  }

  _scheduleReconnect() {
    if (!this._accessToken) return;
    this._setState(ConnectionState.RECONNECTING);
    clearTimeout(this._reconnectTimer);
    const delay = backoffDelay(this._attempt, this.backoff);
    this._attempt += 1;
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      this._renewThenConnect();
    }, delay);
  }

  _stopConnection() {
    clearTimeout(this._reconnectTimer);
    clearTimeout(this._refreshTimer);
    clearTimeout(this._pumpTimer);
    this._reconnectTimer = null;
    this._refreshTimer = null;
    this._pumpTimer = null;
    const ctx = this._socket;
    this._socket = null;
    if (ctx) {
      this._forgetSocket(ctx);
      try {
        ctx.socket.close(1000, "client closed");
      } catch {
        // already closing
      }
    }
    const reads = this._reads;
    this._reads = [];
    for (const read of reads) {
      clearTimeout(read.timer);
      read.reject(new TodoApiError("offline", "You are offline."));
    }
  }

  // ---- events ----

  _ownerId() {
    const id = this._user && Number(this._user.id);
    return Number.isFinite(id) ? id : null;
  }

  _changed(reason) {
    // Conflicts about todos that are gone are moot.
    let pruned = false;
    for (const id of [...this._conflicts.keys()]) {
      if (this._sync.rev !== null && !this._sync.todos.has(id)) {
        pruned = this._conflicts.delete(id) || pruned;
      }
    }
    if (pruned) this._saveOutbox();
    this._emit("change", { todos: this.todos, reason });
  }

  _setState(state) {
    if (state === this._state) return;
    const previous = this._state;
    this._state = state;
    this._emit("statechange", { state, previous });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** A write as callers see it: no socket bookkeeping. */
function publicWrite(write) {
  const out = { key: write.key, action: write.action, todoId: write.todoId, at: write.at };
  if (write.payload !== undefined) out.payload = { ...write.payload };
  if (write.ifVersion !== undefined) out.ifVersion = write.ifVersion;
  return out;
}

function isRefusal(error) {
  // The auth service answered and said no (as opposed to being unreachable or failing).
  return Boolean(error && error.status && error.status >= 400 && error.status < 500);
}

function userFromToken(token) {
  const claims = decodeJwtPayload(token) || {};
  return { id: claims.sub == null ? null : String(claims.sub), username: claims.username || null };
}

function defaultWsUrl() {
  const loc = globalThis.location;
  if (!loc) return "ws://localhost:8000/ws_ep/ws";
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/ws_ep/ws`;
}

function safeSessionStorage() {
  try {
    return globalThis.sessionStorage || null;
  } catch {
    return null; // some privacy modes throw on access
  }
}
