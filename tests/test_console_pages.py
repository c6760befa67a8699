"""The console over real HTTP: a gateway on loopback with the SQLite ledger, a fake provider, real benchmark runs
and real requests from two accounts (see ``_console_stack``). Pages are read as HTML; the browser test drives
the same stack in Chromium."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _console_stack import ALICE_PROMPT, BOB_PROMPT, ConsoleStack, console_stack

PANELS = ("endpoints", "router", "spend", "try")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    with console_stack(tmp_path_factory.mktemp("console")) as s:
        yield s


def series(html: str, chart: str) -> dict[str, int]:
    """The series drawn in the chart ``chart``: name → number of points (or 1 per bar)."""
    match = re.search(rf'<svg class="chart" data-chart="{chart}".*?</svg>', html, re.S)
    assert match, f"no chart {chart!r} in the page"
    found = re.findall(r'<g class="series" data-series="([^"]*)"(?: data-points="(\d+)")?', match.group(0))
    return {name: int(points or 1) for name, points in found}


def table_rows(html: str, testid: str) -> list[list[str]]:
    match = re.search(rf'<table data-testid="{testid}">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert match, f"no table {testid!r} in the page"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", match.group(1), re.S)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows
    ]


# ---- auth ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("panel", PANELS)
def test_without_a_key_every_panel_answers_401_with_the_login_form(stack: ConsoleStack, panel: str) -> None:
    with stack.client() as c:
        r = c.get(f"/console/{panel}")
    assert r.status_code == 401
    assert 'action="/console/login"' in r.text
    assert "pointsman keys create" in r.text
    assert "alice" not in r.text and "data-chart" not in r.text


def test_try_it_post_without_a_key_is_401(stack: ConsoleStack) -> None:
    with stack.client() as c:
        r = c.post("/console/try", data={"prompt": "hi", "router": "fast@fake"})
    assert r.status_code == 401


def test_a_wrong_key_is_401_and_says_why(stack: ConsoleStack) -> None:
    with stack.client("pm-not-a-real-key-at-all-000000000000000000000") as c:
        r = c.get("/console/spend")
    assert r.status_code == 401
    assert "invalid API key" in r.text


def test_login_sets_an_httponly_strict_cookie_that_opens_the_console(stack: ConsoleStack) -> None:
    with stack.client() as c:
        r = c.post("/console/login", data={"key": stack.alice, "next": "/console/spend"})
        assert r.status_code == 303 and r.headers["location"] == "/console/spend"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
        page = c.get("/console/spend")
        assert page.status_code == 200 and 'data-testid="spend-account">alice<' in page.text
        out = c.post("/console/logout")
        assert out.status_code == 303
        assert c.get("/console/spend").status_code == 401


def test_login_with_a_bad_key_stays_on_the_form_with_401(stack: ConsoleStack) -> None:
    with stack.client() as c:
        r = c.post("/console/login", data={"key": "pm-wrong"})
    assert r.status_code == 401 and "set-cookie" not in r.headers
    assert "invalid API key" in r.text


def test_login_never_redirects_off_the_console(stack: ConsoleStack) -> None:
    with stack.client() as c:
        for target in ("https://evil.example/", "//evil.example/console/", "/v1/credits"):
            r = c.post("/console/login", data={"key": stack.alice, "next": target})
            assert r.headers["location"] == "/console/endpoints", target


def test_revoked_key_is_refused(stack: ConsoleStack) -> None:
    from pointsman.ledger.keys import KeyStore

    keys = KeyStore(stack.ledger)
    spare = keys.create("bob", name="spare").key
    keys.revoke(spare[:12])
    with stack.client(spare) as c:
        r = c.get("/console/endpoints")
    assert r.status_code == 401 and "revoked" in r.text


# ---- spend: one account never sees another's -------------------------------------------------------------------


def test_spend_shows_only_the_callers_own_requests(stack: ConsoleStack) -> None:
    with stack.client(stack.alice) as c:
        page = c.get("/console/spend").text
        credits = c.get("/v1/credits").json()
    rows = table_rows(page, "recent-requests")
    assert sorted(r[1] for r in rows) == ["cheap@other", "fast@fake", "fast@fake"]
    assert "slow@fake" not in page and "bob" not in page
    assert f'data-testid="balance">${credits["balance_usd"]}<' in page
    assert set(series(page, "spend-by-model")) == {"fast", "cheap"}
    with stack.client(stack.bob) as c:
        bob_page = c.get("/console/spend").text
    assert [r[1] for r in table_rows(bob_page, "recent-requests")] == ["slow@fake"]
    assert "fast@fake" not in bob_page and "alice" not in bob_page


def test_recent_requests_show_tokens_cost_and_latency(stack: ConsoleStack) -> None:
    with stack.client(stack.bob) as c:
        ((_, endpoint, tokens_in, tokens_out, cost, latency),) = table_rows(
            c.get("/console/spend").text, "recent-requests"
        )
    assert endpoint == "slow@fake" and int(tokens_out) == 6 and int(tokens_in) > 0
    # 3 $/1M in, 6 $/1M out, exactly
    assert cost == f"${(int(tokens_in) * 3 + 6 * 6) / 1e6:.6f}"
    value, unit = latency.split()
    assert unit == "ms" and float(value) >= 150 + 5 * 10 * 0.9  # TTFT 150 ms + 5 gaps of 10 ms


def test_a_key_cannot_ask_for_another_accounts_spend(stack: ConsoleStack) -> None:
    with stack.client(stack.alice) as c:
        for panel in ("spend", "router"):
            r = c.get(f"/console/{panel}", params={"account": "bob"})
            assert r.status_code == 403, panel
            assert "admin key" in r.text and "slow@fake" not in r.text


def test_an_admin_key_sees_any_account(stack: ConsoleStack) -> None:
    with stack.client(stack.admin) as c:
        bob = c.get("/console/spend", params={"account": "bob"})
        missing = c.get("/console/spend", params={"account": "nobody"})
    assert bob.status_code == 200
    assert [r[1] for r in table_rows(bob.text, "recent-requests")] == ["slow@fake"]
    assert '<option value="alice"' in bob.text  # the account picker
    assert missing.status_code == 404 and "nobody" in missing.text


def test_prompts_never_appear_in_the_console(stack: ConsoleStack) -> None:
    for key in (stack.alice, stack.bob, stack.admin):
        with stack.client(key) as c:
            for panel in PANELS:
                for account in ("", "alice", "bob"):
                    text = c.get(f"/console/{panel}", params={"account": account} if account else None).text
                    assert ALICE_PROMPT not in text and BOB_PROMPT not in text
                    assert "SECRET-PROMPT" not in text


# ---- endpoints -----------------------------------------------------------------------------------------------


def test_endpoints_chart_has_one_series_per_measured_endpoint(stack: ConsoleStack) -> None:
    with stack.client(stack.alice) as c:
        page = c.get("/console/endpoints").text
    # two eu-west runs and one us-east run: fast@fake has three points; broken@fake never had a latency;
    # cheap@other was never benchmarked, its one point is alice's streamed request (passive telemetry)
    assert series(page, "ttft") == {"fast@fake": 3, "slow@fake": 2, "cheap@other": 1}
    assert series(page, "itl") == {"fast@fake": 3, "slow@fake": 2, "cheap@other": 1}
    assert 'data-testid="runs">3<' in page and 'data-testid="no-runs"' not in page


def test_endpoint_figures_match_the_fake_providers_latency(stack: ConsoleStack) -> None:
    with stack.client(stack.alice) as c:
        rows = {r[0]: r for r in table_rows(c.get("/console/endpoints").text, "endpoint-table")}
    fast_p50 = float(rows["fast@fake"][4].split(" ms")[0])
    slow_p50 = float(rows["slow@fake"][4].split(" ms")[0])
    assert 20 <= fast_p50 < slow_p50 and slow_p50 >= 150  # scripted TTFT 20 ms and 150 ms, plus overhead
    assert rows["slow@fake"][1:4] == ["$3", "$6", "$3.75"]  # input, output, 3:1 blend per 1M tokens
    assert rows["broken@fake"][7] == "100.0%" and rows["fast@fake"][7] == "0.0%"


def test_region_filter_keeps_only_that_regions_samples(stack: ConsoleStack) -> None:
    with stack.client(stack.alice) as c:
        us = c.get("/console/endpoints", params={"region": "us-east"}).text
        eu = c.get("/console/endpoints", params={"region": "eu-west"}).text
    assert series(us, "ttft") == {"fast@fake": 1}
    assert series(eu, "ttft") == {"fast@fake": 2, "slow@fake": 2, "cheap@other": 1}
    assert '<option value="us-east" selected' in us


def test_a_bad_range_is_a_400_page_that_says_the_fix(stack: ConsoleStack) -> None:
    with stack.client(stack.alice) as c:
        r = c.get("/console/endpoints", params={"hours": "soon"})
    assert r.status_code == 400 and "?hours=24" in r.text


# ---- router --------------------------------------------------------------------------------------------------


def test_router_panel_draws_routers_against_single_models(stack: ConsoleStack) -> None:
    with stack.client(stack.alice) as c:
        page = c.get("/console/router").text
    drawn = series(page, "quality-cost")
    assert {"random", "best-single", "prior (active)"} <= set(drawn)
    assert {drawn["big"], drawn["mid"], drawn["small"]} == {1}  # single models are one marker each
    assert str(stack.report_dir / "report.json") in page


def test_router_panel_shows_the_callers_traffic_share(stack: ConsoleStack) -> None:
    with stack.client(stack.alice) as c:
        page = c.get("/console/router").text
    assert series(page, "traffic") == {"fast@fake": 1, "cheap@other": 1}
    assert "66.7% (2 requests)" in page and "33.3% (1 request)" in page


# ---- try it --------------------------------------------------------------------------------------------------


def test_try_it_ranks_endpoints_with_reasons(stack: ConsoleStack) -> None:
    with stack.client(stack.alice) as c:
        r = c.post(
            "/console/try",
            data={"prompt": "Say hello", "router": "router@q:1|c:0.5|models:fast,slow,cheap"},
        )
    assert r.status_code == 200
    rows = table_rows(r.text, "ranked")
    assert [row[1].split()[0] for row in rows][:1] == [
        "cheap@other"
    ]  # the cost weight makes the cheapest win
    assert {row[1].split()[0] for row in rows} == {"cheap@other", "fast@fake", "slow@fake"}
    assert all("quality" in row[-1] and "cost" in row[-1] for row in rows)
    ttft = {row[1].split()[0]: row[6] for row in rows}
    assert float(ttft["slow@fake"].split()[0]) >= 150  # the measured figure, not the 50 ms catalogue prior


def test_try_it_with_a_bad_router_string_says_where(stack: ConsoleStack) -> None:
    with stack.client(stack.alice) as c:
        r = c.post("/console/try", data={"prompt": "hi", "router": "router@q:1|c:"})
    assert r.status_code == 400
    assert 'data-testid="try-error"' in r.text and "router@q:1|c:" in r.text


def test_try_it_without_a_prompt_asks_for_one(stack: ConsoleStack) -> None:
    with stack.client(stack.alice) as c:
        r = c.post("/console/try", data={"prompt": "  ", "router": "fast@fake"})
    assert r.status_code == 200 and "type a prompt" in r.text


def test_static_stylesheet_is_served_without_a_key(stack: ConsoleStack) -> None:
    with stack.client() as c:
        r = c.get("/console/static/console.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert "svg.chart" in r.text


def test_page_views_do_not_use_up_a_keys_rate_limit_but_try_it_does(stack: ConsoleStack) -> None:
    from pointsman.ledger.keys import KeyStore

    limited = KeyStore(stack.ledger).create("alice", name="limited", rpm_limit=2).key
    with stack.client(limited) as c:
        for _ in range(4):
            assert c.get("/console/endpoints").status_code == 200
        form = {"prompt": "hi", "router": "router@q:1|c:0.5|models:fast,cheap"}
        assert [c.post("/console/try", data=form).status_code for _ in range(2)] == [200, 200]
        third = c.post("/console/try", data=form)
    assert third.status_code == 429
    assert 'data-testid="try-error"' in third.text and "per minute" in third.text


def test_pages_run_no_scripts_and_cannot_be_framed(stack: ConsoleStack) -> None:
    with stack.client(stack.alice) as c:
        for panel in PANELS:
            r = c.get(f"/console/{panel}")
            policy = r.headers["content-security-policy"]
            assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, panel
            assert r.headers["cache-control"] == "no-store" and "<script" not in r.text
    with stack.client() as c:
        assert "frame-ancestors 'none'" in c.get("/console/login").headers["content-security-policy"]


def test_console_root_leads_to_the_endpoints_and_the_login_form_returns_there(stack: ConsoleStack) -> None:
    with stack.client() as c:
        root = c.get("/console", follow_redirects=False)
        assert root.status_code == 303 and root.headers["location"] == "/console/endpoints"
        blocked = c.get("/console/spend", params={"account": "alice"})
        assert blocked.status_code == 401
        assert 'name="next" value="/console/spend?account=alice"' in blocked.text
        form = c.get("/console/login", params={"next": "/console/try"})
        assert form.status_code == 200 and 'value="/console/try"' in form.text
