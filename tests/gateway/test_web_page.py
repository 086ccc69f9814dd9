"""The web page's security headers, and the page still working in Chromium under them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from gateway.static_files import CONTENT_SECURITY_POLICY
from tests.gateway.conftest import BasicStack
from tests.stack import LocalStack, start_stack
from tests.support import IN_CI
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.web.pages import TodoPage, new_username

PAGE_FILES = ["/", "/index.html", "/app.js", "/todo-client.js", "/styles.css"]


@pytest.mark.parametrize("path", PAGE_FILES)
def test_every_page_file_has_the_security_headers(basic_stack: BasicStack, path: str) -> None:
    response = httpx.get(basic_stack.url + path)
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no other host
    assert directives["connect-src"] == "'self'"  # REST and the WebSocket, same host
    assert directives["frame-ancestors"] == "'none'"


def test_a_revalidated_file_keeps_its_headers(basic_stack: BasicStack) -> None:
    first = httpx.get(basic_stack.url + "/app.js")
    again = httpx.get(
        basic_stack.url + "/app.js", headers={"If-Modified-Since": first.headers["last-modified"]}
    )
    assert again.status_code == 304
    assert again.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert again.headers["x-content-type-options"] == "nosniff"


def test_scripts_are_served_with_a_javascript_type(basic_stack: BasicStack) -> None:
    # With nosniff, a browser runs a script only when its Content-Type says JavaScript.
    for path in ("/app.js", "/todo-client.js"):
        content_type = httpx.get(basic_stack.url + path).headers["content-type"]
        assert content_type.startswith("text/javascript"), content_type


def test_a_head_request_gets_the_headers_without_a_body(basic_stack: BasicStack) -> None:
    response = httpx.head(basic_stack.url + "/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


@pytest.fixture(scope="module")
def real_stack(
    tmp_path_factory: pytest.TempPathFactory, jwt_env: dict[str, str]
) -> Iterator[LocalStack]:
    stack = start_stack(tmp_path_factory.mktemp("csp-stack"), jwt_env)
    yield stack
    stack.stop()


# Collects what the CSP blocks, from before the page's first script runs.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


INJECT_INLINE_SCRIPT = """() => {
  const script = document.createElement("script");
  script.textContent = "window.inlineRan = true";
  document.head.append(script);
  return window.inlineRan === true;
}"""


@pytest.mark.browser
async def test_the_page_works_in_chromium_under_its_csp(real_stack: LocalStack) -> None:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"Chromium is required in CI and {CHROMIUM} does not exist")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            await context.add_init_script(RECORD_VIOLATIONS)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            tab = TodoPage(page, real_stack.url)
            await tab.open()
            username = new_username("csp")
            await tab.register(username)
            await tab.login(username)  # REST login, then the WebSocket connects
            await tab.add("Works under the CSP")

            # The policy is in force: an injected inline script does not run, and is the
            # only thing it blocked.
            ran = await page.evaluate(INJECT_INLINE_SCRIPT)
            assert ran is False
            violations = await page.evaluate("() => window.cspViolations")
            assert violations == ["script-src-elem inline"], violations
            assert not errors
            await expect(tab.status).to_have_text("Connected")
        finally:
            await browser.close()
