"""`/auth/docs` and `/auth/openapi.json`: a self-contained page under a strict policy, and a
document built once per process (issue 12, findings 8 and 14).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from tests.support import IN_CI, ServiceProcess

# The same Chromium as the web tests (Playwright cannot download its own here).
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY"}


@pytest.fixture(scope="module")
def docs_server(
    jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("docs")
    env = {**jwt_env, "AUTH_DB_URL": f"sqlite://{tmp / 'auth.sqlite3'}", "LOG_LEVEL": "INFO"}
    with ServiceProcess("auth_service", env, tmp) as server:
        yield server


class LoadedUrls(HTMLParser):
    """Every URL the page makes the browser load: scripts, stylesheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        url = found.get("src") if tag in {"script", "img", "iframe"} else None
        if tag == "link":
            url = found.get("href")
        if url:
            self.urls.append(url)


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name)
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no CDN, no inline script, no eval
    assert directives["frame-ancestors"] == "'none'"


def test_the_page_loads_nothing_from_another_host(docs_server: ServiceProcess) -> None:
    page = httpx.get(docs_server.url + "/auth/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert_security_headers(page)
    assert "http://" not in page.text and "https://" not in page.text
    parser = LoadedUrls()
    parser.feed(page.text)
    assert len(parser.urls) >= 3, parser.urls  # a stylesheet and two scripts at least
    for url in parser.urls:
        assert url.startswith("/auth/docs/") and "//" not in url, url
        asset = httpx.get(docs_server.url + url)
        assert asset.status_code == 200, url
        assert asset.headers["x-content-type-options"] == "nosniff"
        if url.endswith(".js"):
            assert asset.headers["content-type"].startswith("text/javascript")
    initializer = httpx.get(docs_server.url + "/auth/docs/swagger-initializer.js").text
    assert '"/auth/openapi.json"' in initializer
    assert "validatorUrl: null" in initializer  # Swagger UI would call an outside validator


@pytest.mark.parametrize(
    "path",
    [
        "/auth/docs/swagger-editor-bundle.js",  # in the package, not served
        "/auth/docs/redoc",
        "/auth/docs/swagger",
        "/auth/docs/oauth2-redirect.html",  # sanic-ext's fetched a CDN on each call
        "/auth/docs/..%2f..%2fpyproject.toml",
    ],
)
def test_nothing_else_is_served_under_docs(docs_server: ServiceProcess, path: str) -> None:
    response = httpx.get(docs_server.url + path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_document_is_built_once_and_the_same_bytes_served(docs_server: ServiceProcess) -> None:
    with httpx.Client(base_url=docs_server.url) as http:
        answers = [
            http.get(path) for path in ["/auth/openapi.json", "/auth/docs/openapi.json"] * 10
        ]
        # One cached answer at both URLs (sanic-ext's own route has no ETag).
        assert len({(answer.content, answer.headers.get("etag")) for answer in answers}) == 1
        etag = answers[0].headers["etag"]
        unchanged = http.get("/auth/openapi.json", headers={"If-None-Match": etag})
        assert unchanged.status_code == 304
        assert unchanged.headers["etag"] == etag
    document = json.loads(answers[0].content)
    assert "/auth/register" in document["paths"]
    assert not any(path.startswith("/auth/docs") for path in document["paths"])
    # The build logs one line; 20 answers later (at both URLs) there is still only one.
    log = Path(docs_server.log_path).read_text()
    assert log.count('"message":"openapi document built"') == 1, log[-2000:]


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"Chromium is required in CI and {CHROMIUM} does not exist")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
        )
        yield browser
        await browser.close()


# Records every Content-Security-Policy violation (injected by the browser, not the page).
WATCH_POLICY = """
window.violations = [];
document.addEventListener("securitypolicyviolation",
    (e) => window.violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


@pytest.mark.browser
async def test_the_page_renders_every_call_in_chromium(
    chromium: Browser, docs_server: ServiceProcess
) -> None:
    context = await chromium.new_context()
    try:
        page = await context.new_page()
        await page.add_init_script(WATCH_POLICY)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        hosts: set[str] = set()
        page.on("request", lambda request: hosts.add(request.url.split("/")[2]))

        await page.goto(docs_server.url + "/auth/docs")
        paths = page.locator(".opblock-summary-path")
        await paths.first.wait_for(timeout=15_000)
        shown = set(await paths.all_inner_texts())
        assert {"/auth/register", "/auth/login", "/auth/refresh", "/auth/logout"} <= shown
        assert "/auth/me" in shown

        # Try one call from the page: it reaches the service under the policy.
        await paths.filter(has_text="/healthz").click()
        await page.get_by_role("button", name="Try it out").click()
        await page.get_by_role("button", name="Execute").click()
        status = page.locator(".live-responses-table .response .response-col_status")
        await status.first.wait_for(timeout=10_000)
        assert (await status.first.inner_text()).strip().startswith("200")

        assert await page.evaluate("window.violations") == []
        assert errors == []
        assert hosts == {f"127.0.0.1:{docs_server.port}"}
    finally:
        await context.close()
