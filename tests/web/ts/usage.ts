// Exercises the documented API of todo-client.js through its declarations (docs/web-client.md).
// Never run: `tsc --strict --noEmit` only. Each `@ts-expect-error` proves a type is precise.

import {
  applyServerMessage,
  AuthApi,
  backoffDelay,
  ConnectionState,
  createSyncState,
  decodeJwtPayload,
  newIdempotencyKey,
  OUTBOX_KEY_PREFIX,
  REFRESH_TOKEN_KEY,
  TodoApiError,
  TodoClient,
  upsertByVersion,
  viewTodos,
} from "../../../gateway/static/todo-client.js";
import type {
  ClientErrorCode,
  PendingWrite,
  ServerMessage,
  Todo,
  TodoConflict,
  TodoErrorCode,
  TodoItem,
  WriteOutcome,
} from "../../../gateway/static/todo-client.js";

const auth = new AuthApi({ baseUrl: "https://todo.example", fetch: globalThis.fetch });
const client = new TodoClient({
  auth,
  wsUrl: "wss://todo.example/ws_ep/ws",
  storage: sessionStorage,
  requestTimeoutMs: 10_000,
  backoffBaseMs: 250,
  backoffCapMs: 10_000,
  maxFramesPerSecond: 10,
  WebSocket,
});
new TodoClient({ storage: null });
// @ts-expect-error storage is a Storage or null
new TodoClient({ storage: "session" });

function render(todos: TodoItem[]): void {
  for (const todo of todos) {
    const id: number = todo.id;
    const title: string = todo.title;
    const description: string | null = todo.description;
    const version: number = todo.version;
    const pending: "create" | "update" | null = todo.pending;
    const theirs: Todo | undefined = todo.conflict?.theirs;
    void [id, title, description, version, pending, theirs];
  }
}

client.addEventListener("change", (event) => {
  render(event.detail.todos);
  const reason: string = event.detail.reason;
  void reason;
});
client.addEventListener("statechange", (event) => {
  const state: ConnectionState = event.detail.state;
  if (state === ConnectionState.OPEN || event.detail.previous === "reconnecting") return;
  // @ts-expect-error not a connection state
  const wrong: ConnectionState = "closed";
  void wrong;
});
client.addEventListener("session", (event) => {
  const name: string | null = event.detail.user.username;
  void name;
});
client.addEventListener("loggedout", (event) => {
  if (event.detail.reason === "session_expired") console.log(event.detail.error?.message);
});
client.addEventListener("writesettled", (event) => {
  const { write, outcome, todo, error } = event.detail;
  const key: string = write.key;
  const kinds: WriteOutcome[] = ["confirmed", "refused", "conflict"];
  if (outcome === "conflict" && todo) console.log(key, todo.version, kinds);
  if (error) console.log(error.code, error.details?.map((d) => d.field));
});
client.addEventListener("servererror", (event) => console.log(event.detail.error.code));
// Any other event name is still an EventTarget event.
client.addEventListener("custom", (event: Event) => console.log(event.type));

async function session(): Promise<void> {
  if (!(await client.resume())) {
    const account = await client.register("alice", "correct horse");
    const accountId: number = account.id;
    void accountId;
    await client.login("alice", "correct horse");
  }
  const user = client.user;
  if (user) console.log(user.id, user.username);
  const stored: boolean = client.hasStoredSession;
  void stored;
}

async function writes(): Promise<void> {
  const todo: Todo = await client.createTodo({ title: "Buy milk" });
  await client.createTodo({ title: "Call mum", description: null, completed: false });
  // @ts-expect-error title is required
  await client.createTodo({ description: "no title" });

  const updated: Todo = await client.updateTodo(todo.id, { completed: true });
  await client.updateTodo(todo.id, { title: "Buy oat milk" }, { ifVersion: updated.version });
  // @ts-expect-error unknown field
  await client.updateTodo(todo.id, { colour: "red" });
  // @ts-expect-error ids are numbers
  await client.updateTodo("1", { completed: true });

  const deleted: { todo_id: number } = await client.deleteTodo(todo.id, { ifVersion: 3 });
  void deleted;

  try {
    await client.updateTodo(todo.id, { title: "x" }, { ifVersion: 1 });
  } catch (error) {
    if (error instanceof TodoApiError && error.code === "conflict" && error.todo) {
      const theirs: Todo = error.todo;
      const conflicts: TodoConflict[] = client.conflicts;
      if (conflicts.some((c) => c.todoId === theirs.id)) {
        await client.reapplyConflict(theirs.id); // or:
        client.dismissConflict(theirs.id);
      }
    }
  }

  const pending: PendingWrite[] = client.pendingWrites;
  for (const write of pending) console.log(write.key, write.action, write.todoId, write.payload);
  const all: TodoItem[] = await client.refresh();
  const confirmed: Todo[] = client.confirmedTodos;
  const rev: number | null = client.rev;
  const retried: boolean = client.reconnectNow(); // "Retry now" while reconnecting
  void [all, confirmed, rev, retried];
}

function errors(error: TodoApiError): string {
  const code: TodoErrorCode = error.code;
  const clientCodes: ClientErrorCode[] = ["offline", "timeout", "network_error", "session_expired"];
  const httpCode: TodoErrorCode = "http_503";
  // @ts-expect-error not an error code
  const unknown: TodoErrorCode = "disconnected";
  void [clientCodes, httpCode, unknown];
  switch (code) {
    case "validation_error":
      return (error.details ?? []).map((d) => `${d.field}: ${d.message}`).join("; ");
    case "offline":
    case "timeout":
      return "Try again later.";
    default:
      return `${error.status ?? ""} ${error.message}`;
  }
}

function pureHelpers(): void {
  const state = createSyncState();
  const message: ServerMessage = { type: "todos_list", data: [], rev: 0 };
  const { changed, gap } = applyServerMessage(state, message);
  const delta: ServerMessage = {
    type: "todos_delta",
    since: 0,
    rev: 1,
    data: { upserted: [], deleted: [3] },
  };
  applyServerMessage(state, delta);
  const first = state.todos.get(1);
  if (first) upsertByVersion(state.todos, { ...first, version: first.version + 1 });
  const items: TodoItem[] = viewTodos(state.todos, client.pendingWrites, new Map(), 7);
  const claims = decodeJwtPayload("a.b.c");
  const delay: number = backoffDelay(3, { baseMs: 100, capMs: 1000, random: Math.random });
  const key: string = newIdempotencyKey();
  const keys: string[] = [REFRESH_TOKEN_KEY, OUTBOX_KEY_PREFIX];
  void [changed, gap, items, claims, delay, key, keys, errors];
}

void session().then(writes).then(pureHelpers).finally(() => client.dispose());
void auth.refresh("token").then((pair) => pair.access_token);
void auth.me("token").then((me) => me.username);
void auth.logout("token");
