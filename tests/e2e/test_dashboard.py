"""The web dashboard in a real headless Chromium, against a real `ktrdr serve` and a real
training worker: the list updates live, a run's page draws its curve and history, and the
Cancel and Resume buttons act on the backend.

Set KTRDR_DASHBOARD_SHOTS to a folder to keep 1280x800 screenshots of the three pages.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from tests.e2e.harness import Cluster, cluster, wait_until

pytestmark = pytest.mark.timeout(120)

# Long enough to be cancelled mid-way on a loaded machine (~0.05 s an epoch).
LONG = {"epochs": 3000, "bars": 3000, "seed": 8, "checkpoint_every_epochs": 2}
ACT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Debian's chromium, never a downloaded one: a missing browser fails the test, by design.
    chromium = shutil.which("chromium")
    assert chromium, "the dashboard tests need chromium: apt-get install -y chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def c(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    yield from cluster(database_url, tmp_path)


class Watched:
    """A page, with what it asked for and every console error or refused script."""

    def __init__(self, page: Page, origin: str) -> None:
        self.page = page
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: r.url.startswith(origin) or self.foreign.append(r.url))


@pytest.fixture
def watched(browser: Browser, c: Cluster) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    yield Watched(context.new_page(), c.url)
    context.close()


def shot(page: Page, name: str) -> None:
    folder = os.environ.get("KTRDR_DASHBOARD_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def row(page: Page, op: str) -> Any:
    return page.locator(f'#operations tr[data-operation-id="{op}"]')


def polyline_points(page: Page, series: str) -> int:
    points = page.locator(f'#chart polyline[data-series="{series}"]').get_attribute("points")
    return len((points or "").split())


def refuse(route: Route) -> None:
    problem = {"status": 401, "title": "Unauthenticated", "code": "UNAUTHENTICATED"}
    route.fulfill(status=401, content_type="application/problem+json", body=json.dumps(problem))


def log_in(page: Page, c: Cluster, next_path: str) -> None:
    token = (c.root / "admin-token").read_text().strip()
    page.goto(f"{c.url}/login?next={next_path}")
    page.fill("#token", token)
    page.click("button[type=submit]")


def start_together(c: Cluster) -> None:
    # The worker's start (importing torch) overlaps the server's; it registers once it answers.
    with ThreadPoolExecutor(1) as pool:
        worker = pool.submit(c.start_worker, "t1", "training", workload=None)
        c.start_server()
        worker.result()


def status_of(page: Page) -> Any:
    return page.locator("#status [data-status]")


def list_follows_new_work(page: Page, c: Cluster) -> str:
    page.goto(f"{c.url}/")
    # Created after the page loaded: the list shows them without a reload.
    run = c.start("training", **LONG)
    waiting = c.start("backtesting", bars=1000)
    expect(row(page, run).locator("[data-status]")).to_have_text(re.compile("pending|running"))
    expect(row(page, waiting).locator("[data-status]")).to_have_text("pending")
    expect(row(page, waiting)).to_contain_text("no live backtesting worker")
    c.wait_checkpoint(run, 1)
    expect(row(page, run).locator("[data-status]")).to_have_text("running")
    expect(row(page, run)).to_contain_text("t1")
    shot(page, "operations")
    page.select_option("#filter-type", "training")
    expect(row(page, waiting)).to_have_count(0)
    expect(row(page, run)).to_have_count(1)
    return run


def run_page_draws_history_and_curve(page: Page, c: Cluster, run: str) -> None:
    row(page, run).locator("a.op-id").click()
    expect(page).to_have_url(f"{c.url}/operations/{run}")
    expect(status_of(page)).to_have_text("running")
    for event_type in ("OperationCreated", "OperationClaimed", "CheckpointSaved"):
        expect(page.locator(f'#timeline [data-event-type="{event_type}"]').first).to_be_visible()
    expect(page.locator('#timeline [data-attempt="1"]')).to_have_count(1)
    expect(page.locator("#timeline .actor").first).to_have_text("user")
    expect(page.locator('#chart polyline[data-series="val_loss"]')).to_be_attached()
    drawn = polyline_points(page, "val_loss")
    assert drawn >= 1
    # The curve grows while the run trains, without a reload.
    wait_until(lambda: polyline_points(page, "val_loss") > drawn, 15, "the curve to grow")
    shot(page, "operation")


def buttons_cancel_and_resume(page: Page, c: Cluster, run: str) -> None:
    page.locator("#cancel").click()
    expect(status_of(page)).to_have_text("cancelled", timeout=ACT_MS)
    assert c.operation(run)["status"] == "cancelled"
    expect(page.locator('#checkpoints .cp[data-state="resumable"]').first).to_be_visible()
    epochs = len(c.get(f"/operations/{run}/metrics")["series"]["epochs"])
    wait_until(lambda: polyline_points(page, "train_loss") == epochs, 10, f"{epochs} points drawn")

    page.locator("#resume").click()
    expect(page.locator("#action-message")).to_have_text(re.compile(r"^Resumed from checkpoint #"))
    expect(status_of(page)).not_to_have_text("cancelled")
    assert c.operation(run)["status"] in {"resuming", "running"}
    expect(page.locator('#timeline [data-attempt="2"]')).to_have_count(1, timeout=ACT_MS)
    page.locator("#cancel").click()
    expect(status_of(page)).to_have_text("cancelled", timeout=ACT_MS)

    # Resume from the oldest checkpoint still there, picked on the strip.
    oldest = page.locator('#checkpoints .cp[data-state="resumable"]').first
    sequence = int(oldest.get_attribute("data-sequence") or 0)
    oldest.locator("button.cp-resume").click()
    expect(page.locator("#action-message")).to_have_text(
        re.compile(rf"^Resumed from checkpoint #{sequence}:")
    )
    resumed = [e for e in c.events(run) if e["event_type"] == "ResumeRequested"]
    assert resumed[-1]["data"]["from_sequence"] == sequence


def workers_page_says_what_is_unserved(page: Page, c: Cluster) -> None:
    page.goto(f"{c.url}/workers")
    expect(page.locator('#workers tr[data-worker-id="t1"] [data-status]')).to_contain_text("alive")
    expect(page.locator('#unserved [data-operation-type="backtesting"]')).to_contain_text(
        "no live backtesting worker"
    )
    shot(page, "workers")


def login_keeps_the_token_from_scripts(page: Page, c: Cluster) -> None:
    log_in(page, c, "/workers")
    expect(page).to_have_url(f"{c.url}/workers")
    cookie = next(k for k in page.context.cookies() if k["name"] == "ktrdr_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "ktrdr_token" not in page.evaluate("document.cookie")
    log_in(page, c, "//elsewhere.example")
    expect(page).to_have_url(f"{c.url}/")


def refusal_sends_to_login(page: Page, c: Cluster) -> None:
    # When the API asks who is calling, every page sends the browser to log in, and the
    # login page says when the API refuses the token.
    page.route("**/api/v1/**", refuse)
    page.goto(f"{c.url}/workers")
    expect(page).to_have_url(f"{c.url}/login?next=%2Fworkers")
    page.fill("#token", "not-a-token")
    page.click("button[type=submit]")
    expect(page.locator("#login-message")).to_have_text("This token was refused.")
    page.unroute("**/api/v1/**")


def test_the_dashboard_follows_a_run_draws_its_curve_and_cancels_and_resumes(
    c: Cluster, watched: Watched
) -> None:
    page = watched.page
    start_together(c)
    # Every API call the pages make is checked: the browser logs in with the admin token
    # `ktrdr serve` wrote, and its cookie carries it from then on.
    log_in(page, c, "%2F")
    expect(page).to_have_url(f"{c.url}/")
    run = list_follows_new_work(page, c)
    run_page_draws_history_and_curve(page, c, run)
    buttons_cancel_and_resume(page, c, run)
    workers_page_says_what_is_unserved(page, c)
    login_keeps_the_token_from_scripts(page, c)
    assert not watched.errors, watched.errors
    assert not watched.foreign, watched.foreign
    refusal_sends_to_login(page, c)
