// keycard's cookie-mode demo (served at /demo by `keycard serve` with
// KEYCARD_TOKEN_LOCATIONS=headers,cookies). Plain JavaScript, no dependencies, no inline
// script (the page's Content-Security-Policy allows scripts from 'self' only).
//
// The tokens are in HttpOnly cookies the page cannot read; the browser sends them. Every
// POST, PUT, PATCH and DELETE carries the readable CSRF cookie in X-CSRF-TOKEN: the refresh
// token's (csrf_refresh_token) for /token/refresh, the access token's (csrf_access_token)
// for everything else. Errors show the server's {"msg": ...}.
"use strict";

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

function $(id) {
  return document.getElementById(id);
}

/** The value of cookie `name` readable by this page, or null. */
function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return null;
}

/** One API call; resolves to the JSON body, or throws an Error carrying the server's msg. */
async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (UNSAFE.has(method)) {
    const csrf = cookie(path === "/token/refresh" ? "csrf_refresh_token" : "csrf_access_token");
    if (csrf !== null) headers["X-CSRF-TOKEN"] = csrf;
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (e) {
    throw new Error(`The server cannot be reached (${e.message})`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const msg = data !== null && typeof data.msg === "string" ? data.msg : `HTTP ${response.status}`;
    throw new Error(msg);
  }
  return data;
}

function say(text) {
  $("error").textContent = "";
  $("status").textContent = text;
}

function complain(error) {
  $("status").textContent = "";
  $("error").textContent = `Error: ${error.message}`;
}

/** Runs `action` with `button` disabled; shows its error, if any. */
async function run(button, action) {
  button.disabled = true;
  try {
    await action();
  } catch (e) {
    complain(e);
  } finally {
    button.disabled = false;
  }
}

function formValues(form) {
  const data = new FormData(form);
  return { username: String(data.get("username") || ""), password: String(data.get("password") || "") };
}

function clearAccount() {
  $("user").hidden = true;
  $("sessions").hidden = true;
  $("sessions-body").replaceChildren();
}

async function showUser() {
  const user = await call("GET", "/user");
  $("user-username").textContent = user.username;
  $("user-email").textContent = user.email === null ? "none" : user.email;
  $("user-status").textContent = user.status;
  $("user-roles").textContent = user.roles.length === 0 ? "none" : user.roles.join(", ");
  $("user-created").textContent = user.created_at;
  $("user").hidden = false;
  say(`Signed in as ${user.username}`);
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

async function listSessions(message) {
  const sessions = await call("GET", "/user/sessions");
  const rows = sessions.map((s) => {
    const tr = document.createElement("tr");
    const id = document.createElement("td");
    const code = document.createElement("code");
    code.textContent = s.id;
    id.append(code);
    const action = document.createElement("td");
    const end = document.createElement("button");
    end.type = "button";
    end.textContent = "End session";
    end.addEventListener("click", () =>
      run(end, async () => {
        await call("DELETE", `/user/sessions/${encodeURIComponent(s.id)}`);
        if (s.current) {
          clearAccount();
          say("This browser's session was ended: log in again");
        } else {
          await listSessions(`Session ${s.id} ended`);
        }
      }),
    );
    action.append(end);
    tr.append(
      id,
      cell(s.created_at),
      cell(s.last_used_at === null ? "never" : s.last_used_at),
      cell([s.client_addr, s.user_agent].filter((x) => x).join(" ") || "unknown"),
      cell(s.current ? "this browser" : "other"),
      action,
    );
    return tr;
  });
  $("sessions-body").replaceChildren(...rows);
  $("sessions").hidden = false;
  say(message || `${sessions.length} live session${sessions.length === 1 ? "" : "s"}`);
}

document.addEventListener("DOMContentLoaded", () => {
  $("register-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    run(form.querySelector("button"), async () => {
      const values = formValues(form);
      const answer = await call("POST", "/register", values);
      say(`${answer.msg}: ${values.username} can log in now`);
      $("register-password").value = "";
      $("login-username").value = values.username;
    });
  });

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    run(form.querySelector("button"), async () => {
      await call("POST", "/login", formValues(form));
      $("login-password").value = "";
      clearAccount();
      say("Logged in");
      await showUser();
    });
  });

  $("show-user").addEventListener("click", (event) => run(event.currentTarget, showUser));

  $("refresh").addEventListener("click", (event) =>
    run(event.currentTarget, async () => {
      const answer = await call("POST", "/token/refresh");
      say(`Tokens refreshed: the new access token lasts ${answer.expires_in} s`);
    }),
  );

  $("list-sessions").addEventListener("click", (event) => run(event.currentTarget, () => listSessions()));

  $("logout").addEventListener("click", (event) =>
    run(event.currentTarget, async () => {
      // The access cookie expired (its CSRF cookie, of the same Max-Age, is gone with it) but the
      // refresh cookie lives: refresh first, so that the logout can end the session itself.
      if (cookie("csrf_access_token") === null && cookie("csrf_refresh_token") !== null) {
        await call("POST", "/token/refresh");
      }
      try {
        await call("DELETE", "/logout");
      } finally {
        // The server expires the cookies on every logout answer but a CSRF refusal.
        clearAccount();
      }
      say("Logged out: the session is over and its cookies are gone");
    }),
  );
});
