// app.js: the todo page. All server talk goes through todo-client.js; this file is DOM only.
//
// Writes are optimistic: the list shows them at once, marked "Saving…" (or "Not sent yet"
// while offline), and the client library confirms, rolls back or reports a conflict later.
// What the server said about a write arrives as a "writesettled" event, also for writes
// made before a reload, so the page reports results there rather than per promise.
// Errors are worded by messages.js (the library hands over the server's own words), and
// each is taken away once what it describes is over (see `errorLifetime`).

import { describeError, errorLifetime } from "./messages.js";
import { AuthApi, ConnectionState, TodoClient, backoffDelay } from "./todo-client.js";

const client = new TodoClient({ auth: new AuthApi() });
// Handy in the browser console; the page itself never reads it.
globalThis.todoApp = { client };

const $ = (testid, root = document) => root.querySelector(`[data-testid="${testid}"]`);

const ui = {
  status: $("connection-status"),
  statusText: document.querySelector(".status-text"),
  pendingCount: $("pending-count"),
  alert: $("error"),
  alertText: $("error-text"),
  alertDismiss: $("error-dismiss"),
  notice: $("notice"),
  banner: $("reconnect-banner"),
  retryNow: $("reconnect-now"),
  authView: $("auth-view"),
  todoView: $("todo-view"),
  loginForm: $("login-form"),
  registerForm: $("register-form"),
  currentUser: $("current-user"),
  logout: $("logout"),
  addForm: $("add-form"),
  newTitle: $("new-title"),
  addSubmit: $("add-submit"),
  list: $("todo-list"),
  empty: $("empty"),
  summary: $("summary"),
};

const STATE_WORDS = {
  [ConnectionState.CONNECTING]: "Connecting…",
  [ConnectionState.OPEN]: "Connected",
  [ConnectionState.RECONNECTING]: "Reconnecting…",
  [ConnectionState.OFFLINE]: "Signed out", // no session: "Offline" would read as "server down"
};

/** The item being edited, if any: {id, input, ifVersion, saving}. Re-renders leave it alone. */
let editing = null;
/** Errors already shown from a "writesettled" event, so their promise does not repeat them. */
const reported = new WeakSet();
/** A reload's resume while it has not worked yet: {timer, attempt, inFlight}. */
let resuming = null;

// ---- messages to the user ----

/**
 * Show an error (a TodoApiError, worded by messages.js, or a sentence of the page's own).
 * Its lifetime ("outage", "session" or "action") says when it is over and goes away.
 */
function showError(errorOrText, context = {}) {
  ui.notice.hidden = true;
  const own = typeof errorOrText === "string";
  ui.alertText.textContent = own ? errorOrText : describeError(errorOrText, context);
  ui.alert.dataset.lifetime = own ? "action" : errorLifetime(errorOrText);
  ui.alert.hidden = false;
}

function clearError() {
  ui.alert.hidden = true;
  ui.alertText.textContent = "";
  delete ui.alert.dataset.lifetime;
}

/** Take the error away if it is of one of these lifetimes (what it described is over). */
function clearErrorOf(...lifetimes) {
  if (!ui.alert.hidden && lifetimes.includes(ui.alert.dataset.lifetime)) clearError();
}

function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
}

ui.alertDismiss.addEventListener("click", () => {
  clearError();
  (ui.todoView.hidden ? $("login-username") : ui.newTitle).focus();
});

/** Hand a write's promise over: its outcome is shown by the "writesettled" handler. */
function track(promise) {
  promise.catch((error) => {
    if (reported.has(error) || !client.user) return; // shown already, or logged out
    showError(error);
  });
}

// ---- views ----

function showTodoView(user) {
  ui.authView.hidden = true;
  ui.todoView.hidden = false;
  ui.currentUser.textContent = (user && user.username) || "";
  ui.notice.hidden = true;
}

function showAuthView() {
  editing = null;
  ui.todoView.hidden = true;
  ui.authView.hidden = false;
  ui.list.replaceChildren();
  renderSummary([]);
  renderPendingCount();
}

function setStatus(state) {
  ui.status.dataset.state = state;
  ui.statusText.textContent = STATE_WORDS[state] || state;
  // Signed in (or getting back in after a reload) but without a live socket: say so
  // plainly, dim the list, and offer to try at once rather than wait out the backoff.
  const down = state === ConnectionState.RECONNECTING && Boolean(client.user || resuming);
  ui.banner.hidden = !down;
  setData(ui.todoView, "stale", down ? "true" : null);
  if (state === ConnectionState.OPEN) clearErrorOf("outage");
}

function renderPendingCount() {
  const count = client.user ? client.pendingWrites.length : 0;
  ui.pendingCount.hidden = count === 0;
  ui.pendingCount.textContent =
    count === 0 ? "" : `${count} ${count === 1 ? "change" : "changes"} not saved yet`;
}

// ---- the list ----

function renderTodos(todos) {
  const wanted = new Set(todos.map((t) => String(t.id)));
  for (const item of [...ui.list.children]) {
    if (!wanted.has(item.dataset.todoId)) {
      if (editing && String(editing.id) === item.dataset.todoId) editing = null;
      item.remove();
    }
  }
  todos.forEach((todo, index) => {
    let item = itemFor(todo.id);
    if (!item) item = createItem(todo);
    updateItem(item, todo);
    // Move only when out of place: moving a node that holds focus would blur it.
    if (ui.list.children[index] !== item) ui.list.insertBefore(item, ui.list.children[index] || null);
  });
  renderSummary(todos);
  renderPendingCount();
}

function renderSummary(todos) {
  ui.empty.hidden = todos.length > 0 || ui.todoView.hidden;
  const done = todos.filter((t) => t.completed).length;
  ui.summary.textContent = todos.length ? `${done} of ${todos.length} done` : "";
}

/** The id an item stands for now (a pending create's item takes the real id later). */
function idOf(element) {
  return Number(element.closest("[data-todo-id]").dataset.todoId);
}

function createItem(todo) {
  const item = document.createElement("li");
  item.className = "todo";
  item.dataset.testid = "todo-item";
  item.dataset.todoId = String(todo.id);

  const toggle = document.createElement("input");
  toggle.type = "checkbox";
  toggle.dataset.testid = "todo-toggle";
  toggle.addEventListener("change", () => toggleDone(idOf(toggle), toggle.checked));

  const main = document.createElement("span");
  main.className = "todo-main";
  const title = document.createElement("span");
  title.className = "todo-title";
  title.dataset.testid = "todo-title";
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.dataset.testid = "todo-badge";
  main.append(title, badge);

  const actions = document.createElement("div");
  actions.className = "todo-actions";
  const edit = button("Edit", "todo-edit", () => startEditing(idOf(edit)));
  const remove = button("Delete", "todo-delete", () => deleteTodo(idOf(remove)));
  remove.classList.add("danger");
  actions.append(edit, remove);

  const conflict = document.createElement("div");
  conflict.className = "conflict";
  conflict.dataset.testid = "todo-conflict";
  conflict.setAttribute("role", "group");
  conflict.hidden = true;
  const text = document.createElement("p");
  text.className = "conflict-text";
  text.dataset.testid = "conflict-text";
  const choices = document.createElement("div");
  choices.className = "conflict-actions";
  const reapply = button("Re-apply my change", "conflict-reapply", () => reapplyConflict(idOf(reapply)));
  reapply.classList.add("primary");
  const keep = button("Keep this version", "conflict-dismiss", () => dismissConflict(idOf(keep)));
  choices.append(reapply, keep);
  conflict.append(text, choices);

  item.append(toggle, main, actions, conflict);
  return item;
}

function updateItem(item, todo) {
  item.classList.toggle("done", todo.completed);
  setData(item, "pending", todo.pending);
  setData(item, "conflict", todo.conflict ? "true" : null);

  const titleId = `todo-title-${todo.id < 0 ? `new${-todo.id}` : todo.id}`;
  const title = $("todo-title", item);
  title.id = titleId;
  title.textContent = todo.title;
  $("todo-toggle", item).checked = todo.completed;
  $("todo-toggle", item).setAttribute("aria-label", `Done: ${todo.title}`);
  $("todo-edit", item).setAttribute("aria-label", `Edit “${todo.title}”`);
  $("todo-delete", item).setAttribute("aria-label", `Delete “${todo.title}”`);

  const badge = $("todo-badge", item);
  let words = "";
  if (todo.conflict) words = "Conflict";
  else if (todo.pending) words = client.state === ConnectionState.OPEN ? "Saving…" : "Not sent yet";
  badge.textContent = words;
  badge.hidden = !words;

  const panel = $("todo-conflict", item);
  panel.hidden = !todo.conflict;
  if (todo.conflict) {
    const text = $("conflict-text", item);
    text.id = `conflict-text-${todo.id}`;
    panel.setAttribute("aria-labelledby", text.id);
    text.textContent = describeConflict(todo.conflict);
    $("conflict-reapply", item).setAttribute("aria-label", `Re-apply my change to “${todo.title}”`);
    $("conflict-dismiss", item).setAttribute("aria-label", `Keep “${todo.title}” as it is now`);
  }
}

function describeConflict(conflict) {
  const wanted = [];
  const changes = conflict.changes || {};
  if ("title" in changes) wanted.push(`title “${changes.title}”`);
  if ("completed" in changes) wanted.push(changes.completed ? "marked done" : "marked not done");
  if ("description" in changes) wanted.push("a new description");
  const yours =
    conflict.action === "delete_todo" ? "your delete" : `your change (${wanted.join(", ")})`;
  return `Changed on another device, so ${yours} was not saved. This is the current version.`;
}

function setData(element, name, value) {
  if (value) element.dataset[name] = value;
  else delete element.dataset[name];
}

function button(text, testid, onClick) {
  const el = document.createElement("button");
  el.type = "button";
  el.textContent = text;
  el.dataset.testid = testid;
  el.addEventListener("click", onClick);
  return el;
}

function itemFor(id) {
  return ui.list.querySelector(`[data-todo-id="${id}"]`);
}

function findTodo(id) {
  return client.todos.find((t) => t.id === id);
}

// ---- actions (optimistic: the list changes at once) ----

function toggleDone(id, completed) {
  track(client.updateTodo(id, { completed }));
}

function deleteTodo(id) {
  const item = itemFor(id);
  const next = item && (item.nextElementSibling || item.previousElementSibling);
  track(client.deleteTodo(id));
  // The item is gone already: keep keyboard users in the list (the neighbour, or the add box).
  const target = next && next.isConnected ? $("todo-delete", next) : ui.newTitle;
  target.focus();
}

function reapplyConflict(id) {
  track(client.reapplyConflict(id));
  clearError();
  const item = itemFor(id);
  if (item) $("todo-edit", item).focus();
}

function dismissConflict(id) {
  client.dismissConflict(id);
  clearError();
  const item = itemFor(id);
  if (item) $("todo-edit", item).focus();
}

function startEditing(id, text) {
  if (editing) finishEditing(false);
  const item = itemFor(id);
  const todo = findTodo(id);
  if (!item || !todo) return;
  const title = $("todo-title", item);
  const input = document.createElement("input");
  input.className = "edit-input";
  input.dataset.testid = "todo-edit-input";
  input.value = text ?? todo.title;
  input.setAttribute("aria-label", `New title for “${todo.title}”`);
  input.setAttribute("aria-describedby", "edit-help");
  // The version the user started from: if it moved on meanwhile, the server says
  // "conflict" rather than silently overwriting someone else's edit.
  const ifVersion = todo.pending === "create" ? undefined : todo.version;
  editing = { id, input, ifVersion, original: todo.title };

  input.addEventListener("input", () => clearErrorOf("action"));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      saveEdit();
    } else if (event.key === "Escape") {
      event.preventDefault();
      finishEditing(true);
    }
  });
  // Leaving the field saves a change, like most todo apps; Escape is the way to cancel.
  input.addEventListener("blur", () => {
    if (editing && editing.input === input) {
      if (input.value !== editing.original) saveEdit();
      else finishEditing(false);
    }
  });

  title.hidden = true;
  $("todo-edit", item).hidden = true;
  title.after(input);
  input.focus();
  input.select();
}

function saveEdit() {
  if (!editing) return;
  const { input, ifVersion, original } = editing;
  const id = idOf(input);
  const title = input.value;
  finishEditing(true);
  if (title === original) return;
  clearError();
  track(client.updateTodo(id, { title }, { ifVersion }));
}

function finishEditing(restoreFocus) {
  if (!editing) return;
  const { input } = editing;
  editing = null;
  const item = input.closest("[data-todo-id]");
  input.remove();
  if (!item) return;
  $("todo-title", item).hidden = false;
  const edit = $("todo-edit", item);
  edit.hidden = false;
  if (restoreFocus) edit.focus();
}

// Changing what was refused is the user dealing with it: the error has done its job.
ui.newTitle.addEventListener("input", () => clearErrorOf("action"));

ui.addForm.addEventListener("submit", (event) => {
  event.preventDefault();
  ui.notice.hidden = true;
  const title = ui.newTitle.value;
  if (title === "") {
    showError("Write a title first.");
    ui.newTitle.focus();
    return;
  }
  // Anything else goes to the server, which owns the rules (1-200 chars after trimming).
  clearError();
  track(client.createTodo({ title }));
  ui.newTitle.value = "";
  ui.newTitle.focus();
});

// ---- what the server said about each write ----

client.addEventListener("writesettled", (event) => {
  const { write, outcome, todo, error } = event.detail;
  if (error) reported.add(error);
  if (outcome === "confirmed") {
    if (write.action === "create_todo" && todo) adoptRealId(write.todoId, todo.id);
    clearErrorOf("action"); // a later action worked: an earlier refusal is old news
    return;
  }
  const payload = write.payload || {};
  if (outcome === "conflict") {
    showError(
      `“${todo.title}” was changed on another device, so your change was not saved. ` +
        "Re-apply it or keep the current version (below).",
    );
    const item = itemFor(write.todoId);
    const focusWasHere = !document.activeElement || document.activeElement === document.body;
    if (item && (focusWasHere || item.contains(document.activeElement))) {
      // After the re-render that shows the panel.
      queueMicrotask(() => {
        const reapply = $("conflict-reapply", item);
        if (reapply && !reapply.closest("[hidden]")) reapply.focus();
      });
    }
    return;
  }
  // Refused: the list has rolled back; say why, and hand the text back to fix.
  if (write.action === "delete_todo" && error.code === "not_found") return; // gone anyway
  showError(error);
  if (write.action === "create_todo" && ui.newTitle.value === "") {
    ui.newTitle.value = payload.title;
    ui.newTitle.focus();
  } else if (write.action === "update_todo" && "title" in payload && !editing) {
    // Reopen the editor with the refused text, unless the user has moved on elsewhere.
    const item = itemFor(write.todoId);
    const focus = document.activeElement;
    if (item && (!focus || focus === document.body || item.contains(focus))) {
      queueMicrotask(() => startEditing(write.todoId, payload.title));
    }
  }
});

/** A create was confirmed: its item keeps its place (and focus) under the real id. */
function adoptRealId(tempId, realId) {
  const item = itemFor(tempId);
  if (!item) return;
  if (itemFor(realId)) {
    item.remove(); // the real one arrived first (e.g. in a delta after a reconnect)
    return;
  }
  item.dataset.todoId = String(realId);
  if (editing && editing.id === tempId) editing.id = realId;
}

// ---- account ----

async function withBusyForm(form, work) {
  const submit = form.querySelector('button[type="submit"]');
  submit.disabled = true;
  try {
    await work();
  } finally {
    submit.disabled = false;
  }
}

ui.loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  withBusyForm(ui.loginForm, async () => {
    try {
      await client.login(username, password);
      clearError();
      $("login-password").value = "";
      ui.newTitle.focus();
    } catch (error) {
      showError(error);
      $("login-password").focus();
    }
  });
});

ui.registerForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const username = $("register-username").value.trim();
  const password = $("register-password").value;
  withBusyForm(ui.registerForm, async () => {
    try {
      await client.register(username, password);
    } catch (error) {
      showError(error, { username });
      // Focus the first field named as wrong (the username unless only the password is).
      const fields = (error.details || []).map((d) => d.field);
      const onlyPassword = fields.includes("password") && !fields.includes("username");
      $(onlyPassword ? "register-password" : "register-username").focus();
      return;
    }
    ui.registerForm.reset();
    // Signed in straight away with the same credentials: no retyping the password.
    try {
      await client.login(username, password);
      clearError();
      showNotice(`Welcome, ${username}! Your account is ready.`);
      ui.newTitle.focus();
    } catch (error) {
      // The account exists; only signing in failed (e.g. the server went away meanwhile).
      $("login-username").value = username;
      showError(error);
      showNotice(`Account “${username}” created. Log in with your password.`);
      $("login-password").focus();
    }
  });
});

ui.logout.addEventListener("click", async () => {
  await client.logout();
  clearError();
  showNotice("You are logged out.");
  $("login-username").focus();
});

ui.retryNow.addEventListener("click", () => {
  if (resuming) resumeSession();
  else client.reconnectNow();
});

// ---- wiring ----

client.addEventListener("statechange", (event) => {
  setStatus(event.detail.state);
  if (client.user) renderTodos(client.todos); // "Saving…" or "Not sent yet"
});
client.addEventListener("change", (event) => renderTodos(event.detail.todos));
client.addEventListener("session", (event) => {
  showTodoView(event.detail.user);
  clearErrorOf("session", "outage");
});
client.addEventListener("loggedout", (event) => {
  showAuthView();
  if (event.detail.reason !== "logout" && event.detail.error) showError(event.detail.error);
});
client.addEventListener("servererror", (event) => showError(event.detail.error));

/**
 * A reload of this tab: log in again with the refresh token kept in sessionStorage. While
 * the server cannot be reached, the session is kept and the page keeps trying (with the
 * library's backoff), showing the reconnecting banner; a refusal shows the login form.
 */
async function resumeSession() {
  if (resuming && resuming.inFlight) return; // "Retry now" while an attempt is under way
  const attempt = resuming ? resuming.attempt : 0;
  if (resuming) clearTimeout(resuming.timer);
  resuming = { timer: null, attempt, inFlight: true };
  ui.authView.hidden = true;
  setStatus(attempt === 0 ? ConnectionState.CONNECTING : ConnectionState.RECONNECTING);
  let resumed = false;
  try {
    resumed = await client.resume();
  } catch (error) {
    resuming.inFlight = false;
    if (errorLifetime(error) === "outage" && client.hasStoredSession) {
      showError(error);
      resuming.attempt = attempt + 1;
      resuming.timer = setTimeout(resumeSession, backoffDelay(attempt));
      setStatus(ConnectionState.RECONNECTING);
      return;
    }
    resuming = null;
    setStatus(client.state);
    showAuthView();
    showError(error);
    return;
  }
  resuming = null;
  setStatus(client.state);
  if (!resumed) showAuthView();
}

setStatus(client.state);
if (client.hasStoredSession) resumeSession();
