// Type declarations for todo-client.js (protocol 1.1). See docs/web-client.md.
// Checked by `tsc --strict --noEmit` over tests/web/ts/usage.ts.

// ---- wire shapes ----

/** A todo as the server stores it (CONTRACT.md sections 4 and 6). */
export interface Todo {
  id: number;
  title: string;
  description: string | null;
  completed: boolean;
  owner_id: number;
  /** ISO 8601, UTC. */
  created_at: string;
  /** ISO 8601, UTC. */
  updated_at: string;
  /** 1 when created, +1 on every update. */
  version: number;
}

/** `create_todo`'s payload: `title` 1-200 chars after trimming, `description` up to 2000. */
export interface TodoCreate {
  title: string;
  description?: string | null;
  completed?: boolean;
}

/** `update_todo`'s payload: a non-empty subset of the fields. */
export interface TodoUpdate {
  title?: string;
  description?: string | null;
  completed?: boolean;
}

export interface TodosListMessage {
  type: "todos_list";
  data: Todo[];
  rev?: number;
  request_id?: string;
}

export interface TodosDeltaMessage {
  type: "todos_delta";
  since: number;
  rev: number;
  data: { upserted: Todo[]; deleted: number[] };
  request_id?: string;
}

export interface TodoCreatedMessage {
  type: "todo_created";
  data: Todo;
  rev?: number;
  request_id?: string;
}

export interface TodoUpdatedMessage {
  type: "todo_updated";
  data: Todo;
  rev?: number;
  request_id?: string;
}

export interface TodoDeletedMessage {
  type: "todo_deleted";
  data: { todo_id: number };
  rev?: number;
  request_id?: string;
}

export interface TokenRefreshedMessage {
  type: "token_refreshed";
  expires_at: string;
  request_id?: string;
}

export interface ErrorMessage {
  type: "error";
  code: ServerErrorCode;
  message: string;
  details?: ErrorDetail[];
  /** With `conflict`: the todo as it is now. */
  data?: Todo;
  request_id?: string;
}

/** Every message the todo service sends. */
export type ServerMessage =
  | TodosListMessage
  | TodosDeltaMessage
  | TodoCreatedMessage
  | TodoUpdatedMessage
  | TodoDeletedMessage
  | TokenRefreshedMessage
  | ErrorMessage;

// ---- errors ----

/** Error codes of the WebSocket protocol (`{"type": "error", "code": ...}`). */
export type ServerErrorCode =
  | "invalid_json"
  | "invalid_message"
  | "validation_error"
  | "not_found"
  | "rate_limited"
  | "auth_failed"
  | "token_expired"
  | "internal_error"
  | "conflict"
  | "idempotency_key_reused"
  | "too_many_connections"
  | "limit_reached";

/** Error codes of the REST API (`{"detail", "code"}`); `http_<status>` when the body had none. */
export type RestErrorCode =
  | "username_taken"
  | "validation_error"
  | "invalid_credentials"
  | "too_many_attempts"
  | "invalid_refresh_token"
  | "invalid_token"
  | "payload_too_large"
  | "busy"
  | "bad_request"
  | "bad_gateway"
  | "gateway_timeout"
  | `http_${number}`;

/**
 * The client's own codes: `offline` (not logged in, logged out, or the client was
 * disposed), `timeout` (a read got no answer in time), `network_error` (REST call could
 * not reach the server), `session_expired` (the refresh token was refused).
 */
export type ClientErrorCode = "offline" | "timeout" | "network_error" | "session_expired";

export type TodoErrorCode = ServerErrorCode | RestErrorCode | ClientErrorCode;

export interface ErrorDetail {
  field?: string;
  message?: string;
}

/** An error from the server (REST or WebSocket) or from the client itself. */
export class TodoApiError extends Error {
  constructor(
    code: TodoErrorCode,
    message: string,
    extra?: { status?: number; details?: ErrorDetail[]; todo?: Todo },
  );
  readonly name: "TodoApiError";
  code: TodoErrorCode;
  /** The HTTP status, for REST errors. */
  status: number | undefined;
  /** Per-field problems, for `validation_error`. */
  details: ErrorDetail[] | undefined;
  /** For `conflict`: the server's current copy of the todo. */
  todo: Todo | undefined;
}

// ---- helpers ----

export declare const ConnectionState: Readonly<{
  CONNECTING: "connecting";
  OPEN: "open";
  RECONNECTING: "reconnecting";
  OFFLINE: "offline";
}>;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

/** The sessionStorage key of the refresh token. */
export declare const REFRESH_TOKEN_KEY: "todo.refresh_token";
/** Prefix of the storage key of a user's unsent writes (`todo.outbox.<user id>`). */
export declare const OUTBOX_KEY_PREFIX: "todo.outbox.";

/** Claims of a JWT, decoded without verification; null when it is not a JWT. */
export function decodeJwtPayload(token: string): Record<string, unknown> | null;

/** Full-jitter backoff: a uniform delay in [0, min(capMs, baseMs * 2^attempt)). */
export function backoffDelay(
  attempt: number,
  options?: { baseMs?: number; capMs?: number; random?: () => number },
): number;

/** A random UUID v4 (works outside secure contexts too). */
export function newIdempotencyKey(): string;

/** The server's state: todos by id, and the revision they reflect (null before a list). */
export interface SyncState {
  todos: Map<number, Todo>;
  rev: number | null;
}

export function createSyncState(): SyncState;

/**
 * Apply one server message in place. `gap: true` means an event or delta was beyond the
 * held revision and was not applied: ask `sync` from `state.rev`.
 */
export function applyServerMessage(
  state: SyncState,
  message: ServerMessage | { type: string },
): { changed: boolean; gap: boolean };

/** Store `todo` unless the held copy has a higher `version`; true when something changed. */
export function upsertByVersion(todos: Map<number, Todo>, todo: Todo): boolean;

/** The list to show: server todos with pending writes laid over (see `TodoItem`). */
export function viewTodos(
  todos: Map<number, Todo>,
  writes?: readonly PendingWrite[],
  conflicts?: ReadonlyMap<number, TodoConflict>,
  ownerId?: number | null,
): TodoItem[];

// ---- the client's state ----

export type WriteAction = "create_todo" | "update_todo" | "delete_todo";

/** A write not yet answered by the server (kept in storage across reloads). */
export interface PendingWrite {
  /** The idempotency key: the same on every resend. */
  key: string;
  action: WriteAction;
  /** For a create: its temporary (negative) id until the server answers. */
  todoId: number;
  payload?: TodoCreate | TodoUpdate;
  ifVersion?: number;
  /** When it was made (ms since the epoch). */
  at: number;
}

/** An edit the server refused with `conflict`; the server's copy has been applied. */
export interface TodoConflict {
  todoId: number;
  action: "update_todo" | "delete_todo";
  /** What this client tried to change (null for a delete). */
  changes: TodoUpdate | null;
  /** The server's copy when it refused. */
  theirs: Todo;
  /** The error as the server sent it (absent for a conflict restored after a reload). */
  error?: TodoApiError;
}

/**
 * A todo as the page should show it. `pending` is "create" for a create the server has
 * not confirmed (temporary negative `id`, `version` 0) and "update" for a todo with
 * unconfirmed changes (shown with them, and the `version` they will give it). Pending
 * deletes are left out of the list. `conflict` is set after a refused `ifVersion` write.
 */
export interface TodoItem extends Todo {
  pending: "create" | "update" | null;
  conflict: TodoConflict | null;
}

export interface User {
  /** The JWT `sub`. */
  id: string | null;
  username: string | null;
}

export interface TokenPair {
  access_token: string;
  token_type: "bearer";
  expires_in: number;
  refresh_token: string;
}

export interface Account {
  id: number;
  username: string;
  created_at: string;
}

// ---- REST ----

export interface AuthApiOptions {
  /** "" (the default) means this origin. */
  baseUrl?: string;
  fetch?: typeof fetch;
}

/** The auth service's REST calls; each rejects with a TodoApiError. */
export class AuthApi {
  constructor(options?: AuthApiOptions);
  readonly baseUrl: string;
  register(username: string, password: string): Promise<Account>;
  login(username: string, password: string): Promise<TokenPair>;
  refresh(refreshToken: string): Promise<TokenPair>;
  logout(refreshToken: string): Promise<null>;
  me(accessToken: string): Promise<Account>;
}

// ---- the live client ----

export interface TodoClientOptions {
  auth?: AuthApi;
  /** Default: ws(s)://<this host>/ws_ep/ws. */
  wsUrl?: string;
  /** Refresh token and unsent writes; default sessionStorage, null = memory only. */
  storage?: Storage | null;
  /** How long a read (`refresh()`) may wait for its reply; writes wait as long as it takes. */
  requestTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Pace of queued frames (default 20, below the server's default rate limit). */
  maxFramesPerSecond?: number;
  /** A WebSocket class (e.g. the `ws` package under Node 20). */
  WebSocket?: typeof WebSocket;
}

export type ChangeReason =
  | "session"
  | "write"
  | "conflict"
  | "logout"
  | "session_expired"
  | ServerMessage["type"];

export interface ChangeDetail {
  todos: TodoItem[];
  reason: ChangeReason;
}

export interface StateChangeDetail {
  state: ConnectionState;
  previous: ConnectionState;
}

export interface SessionDetail {
  user: User;
}

export interface LoggedOutDetail {
  reason: "logout" | "session_expired";
  error?: TodoApiError;
}

export type WriteOutcome = "confirmed" | "refused" | "conflict";

export interface WriteSettledDetail {
  write: PendingWrite;
  outcome: WriteOutcome;
  /** The server's todo: the stored one when confirmed (null for a delete), theirs on conflict. */
  todo: Todo | null | undefined;
  error: TodoApiError | null;
}

export interface ServerErrorDetail {
  error: TodoApiError;
}

export interface TodoClientEventMap {
  change: CustomEvent<ChangeDetail>;
  statechange: CustomEvent<StateChangeDetail>;
  session: CustomEvent<SessionDetail>;
  loggedout: CustomEvent<LoggedOutDetail>;
  writesettled: CustomEvent<WriteSettledDetail>;
  servererror: CustomEvent<ServerErrorDetail>;
}

export class TodoClient extends EventTarget {
  constructor(options?: TodoClientOptions);

  readonly auth: AuthApi;
  readonly wsUrl: string;
  readonly storage: Storage | null;

  readonly state: ConnectionState;
  /** Server todos with pending writes laid over, in id order (pending creates last). */
  readonly todos: TodoItem[];
  /** The server's todos only, in id order. */
  readonly confirmedTodos: Todo[];
  /** The revision `confirmedTodos` reflect (null before the first list). */
  readonly rev: number | null;
  readonly pendingWrites: PendingWrite[];
  readonly conflicts: TodoConflict[];
  readonly user: User | null;
  readonly hasStoredSession: boolean;

  login(username: string, password: string): Promise<void>;
  register(username: string, password: string): Promise<Account>;
  /** Resolves false when there was no session to resume or the server refused it. */
  resume(): Promise<boolean>;
  logout(): Promise<void>;

  /** Shown at once (pending); resolves to the stored Todo once the server answers. */
  createTodo(todo: TodoCreate): Promise<Todo>;
  /** With `ifVersion`, rejects with code "conflict" if the todo moved on. */
  updateTodo(todoId: number, changes: TodoUpdate, options?: { ifVersion?: number }): Promise<Todo>;
  deleteTodo(todoId: number, options?: { ifVersion?: number }): Promise<{ todo_id: number }>;
  /** Send a conflict's change again on top of the server's current version. */
  reapplyConflict(todoId: number): Promise<Todo | { todo_id: number }>;
  /** Keep the server's copy. */
  dismissConflict(todoId: number): void;
  /** `get_all_todos`: replaces the state; resolves to `todos`. */
  refresh(): Promise<TodoItem[]>;
  /**
   * Skip the rest of the reconnect wait and try at once ("Retry now"). True when a new
   * attempt started; false when no wait was running (connected, already trying, logged out).
   */
  reconnectNow(): boolean;
  dispose(): void;

  addEventListener<K extends keyof TodoClientEventMap>(
    type: K,
    listener: (this: TodoClient, event: TodoClientEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof TodoClientEventMap>(
    type: K,
    listener: (this: TodoClient, event: TodoClientEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}
