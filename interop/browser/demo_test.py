"""keycard's /demo page in a real headless Chromium, driven as a user would (interop/browser/README.md).

    demo_test.py --server-bin PATH [--chromium /usr/bin/chromium] [--artifacts DIR]

Starts the real `keycard serve` on a free port and a fresh SQLite database in a temporary
directory, in cookie mode over plain HTTP (KEYCARD_TOKEN_LOCATIONS=headers,cookies,
KEYCARD_COOKIE_SECURE=false), then, through the page's labelled fields and buttons only:
registers, logs in, sees the user, refreshes, logs in a second time from another browser
context, lists the sessions, ends the other one, and logs out; after the logout the page must
show the server's refusal; then logs in again and logs out once the access cookie is gone (as
when it expired: the page refreshes first). Each step checks what the page shows and what the browser holds (the
token cookies HttpOnly, the CSRF cookies readable, none after the logout). A screenshot of the
final page is written to ARTIFACTS/demo.png (path printed); failures also write
ARTIFACTS/demo-failure.png and the server log. Exit 0 when every step passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USERNAME = "demo-user"
PASSWORD = "a long demo passphrase"
TIMEOUT_MS = 15_000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`keycard serve` in cookie mode on a fresh database in a temporary directory."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "keycard.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "KEYCARD_BIND": f"127.0.0.1:{self.port}",
            "KEYCARD_DATABASE_URL": f"sqlite://{workdir / 'keycard.db'}",
            "KEYCARD_JWT_SECRET": secrets.token_urlsafe(32),
            "KEYCARD_TOKEN_LOCATIONS": "headers,cookies",
            "KEYCARD_COOKIE_SECURE": "false",
            "KEYCARD_ARGON2_MEMORY_KIB": "1024",
            "KEYCARD_ARGON2_ITERATIONS": "1",
            "KEYCARD_RATE_LIMIT": "0",
        }
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(binary), "serve"], cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log
        )
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"keycard exited with {self.process.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"keycard did not answer /healthz within 30 s:\n{self.logs()}")

    def logs(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def step(name: str) -> None:
    print(f"-- {name}", flush=True)


def cookies_by_name(page: Page) -> dict[str, dict]:
    return {c["name"]: c for c in page.context.cookies()}


def status(page: Page):
    return page.get_by_role("status")


def alert(page: Page):
    return page.get_by_role("alert")


def log_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()


def run(browser: Browser, base: str, artifacts: Path) -> None:
    context = browser.new_context(base_url=base)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    try:
        step("open /demo")
        response = page.goto("/demo")
        assert response is not None and response.status == 200, f"GET /demo answered {response and response.status}"
        csp = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, f"Content-Security-Policy: {csp!r}"
        expect(page).to_have_title(re.compile("keycard demo"))

        step("register")
        page.get_by_label("Choose a username", exact=True).fill(USERNAME)
        page.get_by_label("Choose a password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Register", exact=True).click()
        expect(status(page)).to_contain_text(f"User created successfully: {USERNAME} can log in now")

        step("registering again shows the server's msg")
        expect(page.get_by_label("Choose a password", exact=True)).to_have_value("")
        page.get_by_label("Choose a password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Register", exact=True).click()
        expect(alert(page)).to_have_text("Error: User already exists")

        step("a wrong password shows the server's msg")
        log_in(page, USERNAME, "not the password at all")
        expect(alert(page)).to_have_text("Error: Bad username or password")

        step("log in")
        log_in(page, USERNAME, PASSWORD)
        expect(status(page)).to_have_text(f"Signed in as {USERNAME}")
        expect(alert(page)).to_have_text("")
        cookies = cookies_by_name(page)
        for name in ("access_token_cookie", "refresh_token_cookie", "csrf_access_token", "csrf_refresh_token"):
            assert name in cookies, f"no {name} cookie after login: {sorted(cookies)}"
        assert cookies["access_token_cookie"]["httpOnly"] and cookies["refresh_token_cookie"]["httpOnly"]
        assert not cookies["csrf_access_token"]["httpOnly"], "the CSRF cookie must be readable by the page"
        assert cookies["refresh_token_cookie"]["path"] == "/token/refresh", cookies["refresh_token_cookie"]
        assert cookies["access_token_cookie"]["sameSite"] == "Lax", cookies["access_token_cookie"]
        seen_by_script = page.evaluate("document.cookie")
        assert "access_token_cookie" not in seen_by_script and "csrf_access_token=" in seen_by_script, seen_by_script

        step("see the user")
        page.get_by_role("button", name="Show user", exact=True).click()
        expect(status(page)).to_have_text(f"Signed in as {USERNAME}")
        expect(page.locator("#user-username")).to_have_text(USERNAME)
        expect(page.locator("#user-status")).to_have_text("active")

        step("refresh")
        old_access = cookies_by_name(page)["access_token_cookie"]["value"]
        page.get_by_role("button", name="Refresh tokens", exact=True).click()
        expect(status(page)).to_have_text(re.compile(r"^Tokens refreshed: the new access token lasts \d+ s$"))
        assert cookies_by_name(page)["access_token_cookie"]["value"] != old_access, "refresh did not replace the cookie"
        page.get_by_role("button", name="Show user", exact=True).click()
        expect(status(page)).to_have_text(f"Signed in as {USERNAME}")

        step("a second login elsewhere (another browser context)")
        other = browser.new_context(base_url=base)
        other.set_default_timeout(TIMEOUT_MS)
        other_page = other.new_page()
        other_page.goto("/demo")
        log_in(other_page, USERNAME, PASSWORD)
        expect(status(other_page)).to_have_text(f"Signed in as {USERNAME}")

        step("list sessions")
        page.get_by_role("button", name="List sessions", exact=True).click()
        expect(status(page)).to_have_text("2 live sessions")
        rows = page.locator("#sessions-body tr")
        expect(rows).to_have_count(2)
        expect(page.get_by_role("row").filter(has_text="this browser")).to_have_count(1)

        step("end the other session")
        other_row = page.get_by_role("row").filter(has_text="other")
        other_id = other_row.locator("code").inner_text()
        other_row.get_by_role("button", name="End session", exact=True).click()
        expect(status(page)).to_have_text(f"Session {other_id} ended")
        expect(rows).to_have_count(1)
        other_page.get_by_role("button", name="Show user", exact=True).click()
        expect(alert(other_page)).to_have_text("Error: Token has been revoked")
        other.close()

        step("log out")
        page.get_by_role("button", name="Log out", exact=True).click()
        expect(status(page)).to_have_text("Logged out: the session is over and its cookies are gone")
        expect(page.locator("#user")).to_be_hidden()
        left = sorted(cookies_by_name(page))
        assert left == [], f"cookies left after logout: {left}"

        step("after the logout the page shows the server's refusal")
        page.get_by_role("button", name="Show user", exact=True).click()
        expect(alert(page)).to_contain_text("Error: Missing")

        step("log out after the access cookie expired: the page refreshes first")
        log_in(page, USERNAME, PASSWORD)
        expect(status(page)).to_have_text(f"Signed in as {USERNAME}")
        context.clear_cookies(name="access_token_cookie")
        context.clear_cookies(name="csrf_access_token")
        page.get_by_role("button", name="Log out", exact=True).click()
        expect(status(page)).to_have_text("Logged out: the session is over and its cookies are gone")
        expect(alert(page)).to_have_text("")
        left = sorted(cookies_by_name(page))
        assert left == [], f"cookies left after logout: {left}"

        assert not console_errors or all("401" in e or "404" in e or "409" in e for e in console_errors), (
            f"unexpected console errors: {console_errors}"
        )
        shot = artifacts / "demo.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot.resolve()}")
    except Exception:
        shot = artifacts / "demo-failure.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            print(f"failure screenshot: {shot.resolve()}", file=sys.stderr)
        except Exception as e:  # the browser itself may be gone
            print(f"no failure screenshot: {e}", file=sys.stderr)
        if console_errors:
            print(f"browser console errors: {console_errors}", file=sys.stderr)
        raise
    finally:
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-bin", required=True, type=Path, help="the keycard binary")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium executable")
    parser.add_argument("--artifacts", default=Path("target/artifacts"), type=Path, help="where screenshots go")
    args = parser.parse_args()
    args.artifacts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="keycard-demo-") as tmp:
        server = Server(args.server_bin.resolve(), Path(tmp))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                try:
                    run(browser, server.url, args.artifacts)
                finally:
                    browser.close()
        except Exception:
            traceback.print_exc()
            log = args.artifacts / "demo-keycard.log"
            log.write_text(server.logs())
            print(f"FAILED; keycard's log: {log.resolve()}", file=sys.stderr)
            return 1
        finally:
            server.stop()
    print("demo browser test: all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
