// app.js: the todo page. All server talk goes through todo-client.js; this file is DOM only.

import { AuthApi, ConnectionState, TodoClient } from "./todo-client.js";

const client = new TodoClient({ auth: new AuthApi() });
// Handy in the browser console; the page itself never reads it.
globalThis.todoApp = { client };

const $ = (testid, root = document) => root.querySelector(`[data-testid="${testid}"]`);

const ui = {
  status: $("connection-status"),
  statusText: document.querySelector(".status-text"),
  alert: $("error"),
  alertText: $("error-text"),
  alertDismiss: $("error-dismiss"),
  notice: $("notice"),
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
  [ConnectionState.OFFLINE]: "Offline",
};

/** The item being edited, if any: {id, input}. Re-renders leave it alone. */
let editing = null;

// ---- messages to the user ----

function describeError(error) {
  const message = (error && error.message) || "Something went wrong.";
  const details = (error && Array.isArray(error.details) ? error.details : [])
    .map((d) => [d.field, d.message].filter(Boolean).join(": "))
    .filter((text) => text && !message.includes(text));
  return details.length ? `${message} (${details.join("; ")})` : message;
}

function showError(errorOrText) {
  ui.notice.hidden = true;
  ui.alertText.textContent =
    typeof errorOrText === "string" ? errorOrText : describeError(errorOrText);
  ui.alert.hidden = false;
}

function clearError() {
  ui.alert.hidden = true;
  ui.alertText.textContent = "";
}

function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
}

ui.alertDismiss.addEventListener("click", () => {
  clearError();
  (ui.todoView.hidden ? $("login-username") : ui.newTitle).focus();
});

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
}

function setStatus(state) {
  ui.status.dataset.state = state;
  ui.statusText.textContent = STATE_WORDS[state] || state;
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
    let item = ui.list.querySelector(`[data-todo-id="${todo.id}"]`);
    if (!item) item = createItem(todo);
    updateItem(item, todo);
    // Move only when out of place: moving a node that holds focus would blur it.
    if (ui.list.children[index] !== item) ui.list.insertBefore(item, ui.list.children[index] || null);
  });
  renderSummary(todos);
}

function renderSummary(todos) {
  ui.empty.hidden = todos.length > 0 || ui.todoView.hidden;
  const done = todos.filter((t) => t.completed).length;
  ui.summary.textContent = todos.length ? `${done} of ${todos.length} done` : "";
}

function createItem(todo) {
  const item = document.createElement("li");
  item.className = "todo";
  item.dataset.testid = "todo-item";
  item.dataset.todoId = String(todo.id);

  const toggle = document.createElement("input");
  toggle.type = "checkbox";
  toggle.dataset.testid = "todo-toggle";
  toggle.addEventListener("change", () => toggleDone(todo.id, toggle));

  const title = document.createElement("span");
  title.className = "todo-title";
  title.dataset.testid = "todo-title";
  title.id = `todo-title-${todo.id}`;

  const actions = document.createElement("div");
  actions.className = "todo-actions";
  const edit = button("Edit", "todo-edit", () => startEditing(todo.id));
  const remove = button("Delete", "todo-delete", () => deleteTodo(todo.id));
  remove.classList.add("danger");
  actions.append(edit, remove);

  item.append(toggle, title, actions);
  return item;
}

function updateItem(item, todo) {
  item.classList.toggle("done", todo.completed);
  const toggle = $("todo-toggle", item);
  if (!toggle.disabled) toggle.checked = todo.completed;
  toggle.setAttribute("aria-label", `Done: ${todo.title}`);
  $("todo-title", item).textContent = todo.title;
  $("todo-edit", item).setAttribute("aria-label", `Edit “${todo.title}”`);
  $("todo-delete", item).setAttribute("aria-label", `Delete “${todo.title}”`);
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

// ---- actions ----

async function toggleDone(id, toggle) {
  const wanted = toggle.checked;
  toggle.disabled = true;
  try {
    await client.updateTodo(id, { completed: wanted });
    clearError();
  } catch (error) {
    showError(error);
    toggle.checked = !wanted;
  } finally {
    toggle.disabled = false;
    const todo = client.todos.find((t) => t.id === id);
    if (todo) toggle.checked = todo.completed;
  }
}

async function deleteTodo(id) {
  const item = itemFor(id);
  const next = item && (item.nextElementSibling || item.previousElementSibling);
  if (item) item.setAttribute("aria-busy", "true");
  try {
    await client.deleteTodo(id);
    clearError();
    // Keep keyboard users in the list: focus the neighbour, or the add box.
    const target = next && next.isConnected ? $("todo-delete", next) : ui.newTitle;
    target.focus();
  } catch (error) {
    showError(error);
  } finally {
    if (item) item.removeAttribute("aria-busy");
  }
}

function startEditing(id) {
  if (editing) finishEditing(false);
  const item = itemFor(id);
  const todo = client.todos.find((t) => t.id === id);
  if (!item || !todo) return;
  const title = $("todo-title", item);
  const input = document.createElement("input");
  input.className = "edit-input";
  input.dataset.testid = "todo-edit-input";
  input.value = todo.title;
  input.setAttribute("aria-label", `New title for “${todo.title}”`);
  input.setAttribute("aria-describedby", "edit-help");
  editing = { id, input, saving: false };

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
    if (editing && editing.input === input && !editing.saving) {
      if (input.value !== todo.title) saveEdit();
      else finishEditing(false);
    }
  });

  title.hidden = true;
  $("todo-edit", item).hidden = true;
  title.after(input);
  input.focus();
  input.select();
}

async function saveEdit() {
  if (!editing || editing.saving) return;
  const { id, input } = editing;
  editing.saving = true;
  input.disabled = true;
  try {
    await client.updateTodo(id, { title: input.value });
    clearError();
    finishEditing(true);
  } catch (error) {
    showError(error);
    // Keep the text so the user can fix it.
    if (editing && editing.input === input) {
      editing.saving = false;
      input.disabled = false;
      input.focus();
    }
  }
}

function finishEditing(restoreFocus) {
  if (!editing) return;
  const { id, input } = editing;
  editing = null;
  const item = itemFor(id);
  input.remove();
  if (!item) return;
  $("todo-title", item).hidden = false;
  const edit = $("todo-edit", item);
  edit.hidden = false;
  const todo = client.todos.find((t) => t.id === id);
  if (todo) updateItem(item, todo);
  if (restoreFocus) edit.focus();
}

ui.addForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const title = ui.newTitle.value;
  if (title === "") {
    showError("Write a title first.");
    ui.newTitle.focus();
    return;
  }
  // Anything else goes to the server, which owns the rules (1-200 chars after trimming).
  ui.addSubmit.disabled = true;
  try {
    await client.createTodo({ title });
    clearError();
    ui.newTitle.value = "";
  } catch (error) {
    showError(error);
  } finally {
    ui.addSubmit.disabled = false;
    ui.newTitle.focus();
  }
});

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
      clearError();
      ui.registerForm.reset();
      $("login-username").value = username;
      showNotice(`Account “${username}” created. Log in with your password.`);
      $("login-password").focus();
    } catch (error) {
      showError(error);
      $("register-username").focus();
    }
  });
});

ui.logout.addEventListener("click", async () => {
  await client.logout();
  clearError();
  showNotice("You are logged out.");
  $("login-username").focus();
});

// ---- wiring ----

client.addEventListener("statechange", (event) => setStatus(event.detail.state));
client.addEventListener("change", (event) => renderTodos(event.detail.todos));
client.addEventListener("session", (event) => showTodoView(event.detail.user));
client.addEventListener("loggedout", (event) => {
  showAuthView();
  if (event.detail.reason !== "logout" && event.detail.error) showError(event.detail.error);
});
client.addEventListener("servererror", (event) => showError(event.detail.error));

setStatus(client.state);
if (client.hasStoredSession) {
  // A reload of this tab: log in again with the refresh token kept in sessionStorage.
  setStatus(ConnectionState.CONNECTING);
  client
    .resume()
    .then((resumed) => {
      if (!resumed) {
        setStatus(client.state);
        showAuthView();
      }
    })
    .catch((error) => {
      setStatus(client.state);
      showError(error);
    });
}
