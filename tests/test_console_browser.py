"""The console in a real browser: Debian's headless Chromium, driven by Playwright, against a gateway with the
ledger, a fake provider, benchmark runs in two regions, an evaluation report and requests from two accounts.

Logs in through the form, loads every panel, checks the charts render with the expected series, uses the region
filter, submits "Try it" and reads the ranked table, and checks the page fetches nothing but the gateway itself
(the console works offline). Screenshots are kept in ``artifacts/`` at the repository root (git-ignored):
``console.png`` (Endpoints) and ``console-<panel>.png`` for each panel.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _console_stack import ALICE_PROMPT, console_stack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def _series(page: object, chart: str) -> dict[str, int]:
    """Series of one chart as the browser parsed it: name → points."""
    return dict(
        page.locator(f'svg[data-chart="{chart}"] g.series').evaluate_all(  # type: ignore[attr-defined]
            "els => els.map(e => [e.dataset.series, Number(e.dataset.points || 1)])"
        )
    )


def test_console_in_headless_chromium(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed at /usr/bin/chromium (`apt-get install chromium`; .ci/run does it)"
        )
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "shots"
    shots.mkdir()
    with console_stack(tmp_path / "stack") as stack, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            fetched: list[str] = []
            page.on("request", lambda request: fetched.append(request.url))

            # Without a key: 401 and the login form. Log in as alice.
            response = page.goto(f"{stack.url}/console/endpoints")
            assert response is not None and response.status == 401
            page.fill("#key", stack.alice)
            page.click("form[action='/console/login'] button[type=submit]")
            page.wait_for_url("**/console/endpoints")
            assert page.locator("[data-testid=account]").inner_text() == "alice"

            # Endpoints: both latency charts, one line per measured endpoint, drawn with real size.
            assert _series(page, "ttft") == {"fast@fake": 3, "slow@fake": 2, "cheap@other": 1}
            assert _series(page, "itl") == {"fast@fake": 3, "slow@fake": 2, "cheap@other": 1}
            line = page.locator(
                'svg[data-chart="ttft"] g.series[data-series="slow@fake"] path'
            ).bounding_box()
            assert line is not None and line["width"] > 100
            broken = page.locator('tr[data-endpoint="broken@fake"] [data-testid=error-rate]').inner_text()
            assert broken == "100.0%"
            page.screenshot(path=str(shots / "console-endpoints.png"), full_page=True)
            page.select_option("#region", "us-east")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**region=us-east**")
            assert _series(page, "ttft") == {"fast@fake": 1}

            # Router: routers as curves against single models as markers; alice's traffic share.
            page.click("nav a[data-panel=router]")
            page.wait_for_url("**/console/router")
            curves = _series(page, "quality-cost")
            assert {"random", "best-single", "prior (active)"} <= set(curves)
            assert curves["big"] == curves["mid"] == curves["small"] == 1
            assert _series(page, "traffic") == {"fast@fake": 1, "cheap@other": 1}
            page.screenshot(path=str(shots / "console-router.png"), full_page=True)

            # Spend: her balance, her requests only, and no prompt text.
            page.click("nav a[data-panel=spend]")
            page.wait_for_url("**/console/spend")
            assert page.locator("[data-testid=spend-account]").inner_text() == "alice"
            endpoints = page.locator(
                "[data-testid=recent-requests] tbody tr td:nth-child(2)"
            ).all_inner_texts()
            assert sorted(endpoints) == ["cheap@other", "fast@fake", "fast@fake"]
            assert set(_series(page, "spend-by-model")) == {"fast", "cheap"}
            assert len(_series(page, "spend-by-day")) == 14
            assert ALICE_PROMPT not in page.content()
            page.screenshot(path=str(shots / "console-spend.png"), full_page=True)

            # Try it: submit the form, read the ranked table.
            page.click("nav a[data-panel=try]")
            page.wait_for_url("**/console/try")
            page.fill("#prompt", "Say hello in French.")
            page.fill("#router", "router@q:1|c:0.5|models:fast,slow,cheap")
            page.click("#try-form button[type=submit]")
            page.wait_for_selector("[data-testid=ranked]")
            ranked = page.locator("[data-testid=ranked] tbody tr").evaluate_all(
                "rows => rows.map(r => r.dataset.endpoint)"
            )
            assert ranked == ["cheap@other", "fast@fake", "slow@fake"]
            reasons = page.locator("[data-testid=ranked] tbody tr").first.locator("td").last.inner_text()
            assert "quality" in reasons and "cost" in reasons
            page.screenshot(path=str(shots / "console-try.png"), full_page=True)

            # Everything came from the gateway itself: no CDN, no fonts, no scripts from elsewhere.
            assert fetched and all(url.startswith(stack.url + "/console") for url in fetched), fetched
            assert page.locator("script[src]").count() == 0

            # Logging out forgets the key.
            page.click("header form button")
            page.wait_for_url("**/console/login")
            response = page.goto(f"{stack.url}/console/spend")
            assert response is not None and response.status == 401
        finally:
            browser.close()
    ARTIFACTS.mkdir(exist_ok=True)
    for shot in shots.iterdir():
        shutil.copy(shot, ARTIFACTS / shot.name)
    shutil.copy(shots / "console-endpoints.png", ARTIFACTS / "console.png")
