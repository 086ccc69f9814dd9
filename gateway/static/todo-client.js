// todo-client.js: a dependency-free client for the todo backend (see docs/web-client.md).
//
//   import { AuthApi, TodoClient } from "./todo-client.js";
//   const client = new TodoClient({ auth: new AuthApi() });
//   client.addEventListener("change", (e) => render(e.detail.todos));
//   client.addEventListener("statechange", (e) => showState(e.detail.state));
//   await client.login("alice", "correct horse");   // or: await client.resume();
//   const todo = await client.createTodo({ title: "Buy milk" });
//
// The wire format is CONTRACT.md sections 3 (REST under /auth) and 4 (WebSocket /ws_ep/ws).

/** Connection states, as reported by `TodoClient.state` and the "statechange" event. */
export const ConnectionState = Object.freeze({
  CONNECTING: "connecting", // first connection after login/resume
  OPEN: "open", // authenticated and in sync (the todos_list has arrived)
  RECONNECTING: "reconnecting", // lost the socket; retrying with backoff
  OFFLINE: "offline", // not logged in, logged out, or the session could not be renewed
});

/** Where the refresh token is kept (sessionStorage: survives a reload of this tab only). */
export const REFRESH_TOKEN_KEY = "todo.refresh_token";

/** An error from the server (REST or WebSocket) or from the client itself. */
export class TodoApiError extends Error {
  /**
   * @param {string} code machine code, e.g. "validation_error", "not_found", "disconnected"
   * @param {string} message human text, safe to show
   * @param {{status?: number, details?: Array<{field?: string, message?: string}>}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "TodoApiError";
    this.code = code;
    this.status = extra.status;
    this.details = extra.details;
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
 * Apply one server message to the todo state (a Map of id -> Todo), in place.
 * Returns true when the state changed. Pure apart from mutating `todos`.
 */
export function applyServerMessage(todos, message) {
  switch (message && message.type) {
    case "todos_list":
      todos.clear();
      for (const todo of message.data || []) todos.set(todo.id, todo);
      return true;
    case "todo_created":
    case "todo_updated": {
      const todo = message.data;
      const known = todos.get(todo.id);
      // Never let an older copy overwrite a newer one (ISO 8601 UTC strings sort by time).
      if (known && known.updated_at && todo.updated_at && known.updated_at > todo.updated_at) {
        return false;
      }
      todos.set(todo.id, todo);
      return true;
    }
    case "todo_deleted":
      return todos.delete(message.data && message.data.todo_id);
    case "todos_delta": {
      // Protocol 1.1: the server fills a gap in its events (e.g. after a Redis outage)
      // with the todos changed since, and the ids deleted since.
      const data = message.data || {};
      for (const todo of data.upserted || []) todos.set(todo.id, todo);
      for (const id of data.deleted || []) todos.delete(id);
      return true;
    }
    default:
      return false;
  }
}

/** The todos of a state Map as an array in id order (the server's order). */
export function sortedTodos(todos) {
  return [...todos.values()].sort((a, b) => a.id - b.id);
}

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

const AUTH_CLOSE_CODES = new Set(["auth_failed", "token_expired"]);

/**
 * A live todo list over the WebSocket, with login, token refresh and reconnection.
 *
 * Events (all CustomEvent):
 * - "change"      detail {todos, reason}: the todo list changed (reason: the message type)
 * - "statechange" detail {state, previous}: one of ConnectionState
 * - "session"     detail {user}: logged in or resumed ({id, username} from the token)
 * - "loggedout"   detail {reason, error}: reason "logout" or "session_expired"
 * - "servererror" detail {error}: an error message no pending request was waiting for
 */
export class TodoClient extends EventTarget {
  /**
   * @param {object} [options]
   * @param {AuthApi} [options.auth] the REST client (default: same origin)
   * @param {string} [options.wsUrl] default: ws(s)://<this host>/ws_ep/ws
   * @param {Storage|null} [options.storage] where the refresh token lives (default sessionStorage)
   * @param {number} [options.requestTimeoutMs] how long a call may wait for its reply
   * @param {number} [options.backoffBaseMs] first reconnect delay ceiling
   * @param {number} [options.backoffCapMs] largest reconnect delay ceiling
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

    this._state = ConnectionState.OFFLINE;
    this._todos = new Map();
    this._user = null;
    this._accessToken = null;
    this._accessExp = 0; // seconds since the epoch
    this._socket = null;
    this._attempt = 0; // consecutive failed connection attempts
    this._authFailures = 0; // consecutive auth_failed answers despite a fresh token
    this._reconnectTimer = null;
    this._refreshTimer = null;
    this._refreshing = null; // the one refresh in flight (refresh tokens rotate: never two)
    this._sessionEpoch = 0; // bumped on logout, so a late refresh cannot revive the session
    this._pending = new Map(); // request_id -> {resolve, reject, timer, socket, frame}
    this._queue = []; // request ids waiting for an open connection
    this._nextId = 1;
    this._idPrefix = Math.random().toString(36).slice(2, 8);
    this._onOnline = () => this._reconnectNow();
    if (globalThis.addEventListener) globalThis.addEventListener("online", this._onOnline);
  }

  /** One of ConnectionState. */
  get state() {
    return this._state;
  }

  /** The todos, in id order (a fresh array each time). */
  get todos() {
    return sortedTodos(this._todos);
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

  /** Revoke the refresh token, close the socket and forget the session. */
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

  /** Create a todo: resolves to the Todo the server stored. */
  createTodo({ title, description, completed } = {}) {
    const payload = { title };
    if (description !== undefined) payload.description = description;
    if (completed !== undefined) payload.completed = completed;
    return this._request({ action: "create_todo", payload }).then((m) => m.data);
  }

  /** Change some fields of a todo: resolves to the updated Todo. */
  updateTodo(todoId, changes) {
    return this._request({ action: "update_todo", todo_id: todoId, payload: changes }).then(
      (m) => m.data,
    );
  }

  /** Delete a todo: resolves to `{todo_id}`. */
  deleteTodo(todoId) {
    return this._request({ action: "delete_todo", todo_id: todoId }).then((m) => m.data);
  }

  /** Ask for the whole list again: resolves to the todos (the state is replaced too). */
  refresh() {
    return this._request({ action: "get_all_todos", payload: null }).then(() => this.todos);
  }

  /** Stop everything (timers, socket, listeners) without revoking the session. */
  dispose() {
    this._stopConnection(new TodoApiError("offline", "The client was closed."));
    if (globalThis.removeEventListener) globalThis.removeEventListener("online", this._onOnline);
    this._setState(ConnectionState.OFFLINE);
  }

  // ---- session and tokens ----

  _startSession() {
    this._user = userFromToken(this._accessToken);
    this._emit("session", { user: this._user });
    this._attempt = 0;
    this._authFailures = 0;
    this._connect(ConnectionState.CONNECTING);
  }

  _endSession(reason, error) {
    this._sessionEpoch += 1;
    this._stopConnection(
      new TodoApiError("offline", reason === "logout" ? "You logged out." : "You are offline."),
    );
    this._accessToken = null;
    this._accessExp = 0;
    this._user = null;
    this._writeRefreshToken(null);
    if (this._todos.size) {
      this._todos.clear();
      this._emit("change", { todos: [], reason });
    }
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

  // ---- the socket ----

  _connect(state) {
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    if (!this._accessToken) return;
    this._setState(state);
    const url = `${this.wsUrl}?token=${encodeURIComponent(this._accessToken)}`;
    let socket;
    try {
      socket = new this._WebSocket(url);
    } catch {
      this._scheduleReconnect();
      return;
    }
    const ctx = { socket, closeCode: null, synced: false };
    this._socket = ctx;
    socket.onopen = () => {
      // Not "open" yet: the server first checks the token, then sends the todos_list.
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
    if (message.type === "error" && AUTH_CLOSE_CODES.has(message.code)) {
      ctx.closeCode = message.code; // the server closes with 1008 right after this
      return;
    }
    if (message.type === "todos_list" && !ctx.synced) {
      ctx.synced = true;
      this._attempt = 0;
      this._authFailures = 0;
      this._setState(ConnectionState.OPEN);
    }
    if (applyServerMessage(this._todos, message)) {
      this._emit("change", { todos: this.todos, reason: message.type });
    }
    const pending = message.request_id && this._pending.get(message.request_id);
    if (pending) {
      this._settle(message.request_id);
      if (message.type === "error") {
        pending.reject(
          new TodoApiError(message.code, message.message, { details: message.details }),
        );
      } else {
        pending.resolve(message);
      }
    } else if (message.type === "error") {
      const error = new TodoApiError(message.code, message.message, { details: message.details });
      this._emit("servererror", { error });
    }
    // Requests queued while disconnected go out once the list is in sync.
    if (ctx.synced) this._flushQueue();
  }

  _onClose(ctx, event) {
    if (ctx !== this._socket) return;
    this._socket = null;
    if (AUTH_CLOSE_CODES.has(ctx.closeCode)) {
      // Replies come in request order and the auth error came last, so the server handled
      // none of the unanswered requests: send them again on the next connection.
      this._requeueSent(ctx);
    } else {
      const lost = new TodoApiError(
        "disconnected",
        "The connection was lost before the server answered. Please check and try again.",
      );
      this._failSent(ctx, lost);
    }
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

  _reconnectNow() {
    // The browser says the network is back: skip the rest of the backoff wait.
    if (this._reconnectTimer && this._accessToken) {
      clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
      this._renewThenConnect();
    }
  }

  _stopConnection(reason) {
    clearTimeout(this._reconnectTimer);
    clearTimeout(this._refreshTimer);
    this._reconnectTimer = null;
    this._refreshTimer = null;
    const ctx = this._socket;
    this._socket = null;
    if (ctx) {
      try {
        ctx.socket.close(1000, "client closed");
      } catch {
        // already closing
      }
    }
    for (const id of [...this._pending.keys()]) {
      const pending = this._pending.get(id);
      this._settle(id);
      pending.reject(reason);
    }
  }

  // ---- requests ----

  _request(message) {
    if (!this._accessToken) {
      return Promise.reject(new TodoApiError("offline", "You are not logged in."));
    }
    const requestId = `${this._idPrefix}-${this._nextId++}`;
    const frame = JSON.stringify({ ...message, request_id: requestId });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this._pending.has(requestId)) return;
        this._settle(requestId);
        reject(new TodoApiError("timeout", "The server did not answer in time. Try again."));
      }, this.requestTimeoutMs);
      this._pending.set(requestId, { resolve, reject, timer, socket: null, frame });
      this._queue.push(requestId);
      this._flushQueue();
    });
  }

  _flushQueue() {
    const ctx = this._socket;
    if (!ctx || !ctx.synced || ctx.socket.readyState !== 1) return;
    while (this._queue.length) {
      const id = this._queue.shift();
      const pending = this._pending.get(id);
      if (!pending) continue; // timed out while waiting
      pending.socket = ctx;
      ctx.socket.send(pending.frame);
    }
  }

  _failSent(ctx, error) {
    // Requests sent on a lost socket may or may not have been applied: reject them (the
    // todos_list after the reconnect shows the truth). Queued, unsent ones wait.
    for (const [id, pending] of [...this._pending]) {
      if (pending.socket === ctx) {
        this._settle(id);
        pending.reject(error);
      }
    }
  }

  _requeueSent(ctx) {
    const resend = [];
    for (const [id, pending] of this._pending) {
      if (pending.socket === ctx) {
        pending.socket = null;
        resend.push(id);
      }
    }
    this._queue = [...resend, ...this._queue];
  }

  _settle(requestId) {
    const pending = this._pending.get(requestId);
    if (pending) clearTimeout(pending.timer);
    this._pending.delete(requestId);
    this._queue = this._queue.filter((id) => id !== requestId);
  }

  // ---- events ----

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
