"""Chromium drives the Voilà dashboard exactly as ``make run`` serves it.

The service runs as a subprocess (``service_command``, as ``make run`` starts it) over a store
prepared like ``make run`` prepares it; Voilà runs ``voila_command`` from the repository, where
``voila.json`` is read. One service and its Voilà servers per module: Voilà's cold start is the
slow part. Debian's Chromium, never a downloaded one; without it the tests skip, except in CI
(``CI`` set), where they must run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from elegere_widgets.dashboard.launch import (
    ROOT,
    prepare_store,
    service_command,
    voila_command,
    voila_environment,
)
from elegere_widgets.dashboard.processes import Child, spawn, stop_all, wait_until_answers
from tests.dashboard.launcher import free_port
from tests.fixtures.certs import Pki, make_pki
from tests.fixtures.smtp import SmtpPeer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT_S = 90.0
HERE = Path(__file__).resolve().parent
# axe-core, pinned in package.json / package-lock.json here, installed with npm from the registry.
AXE_SCRIPT = HERE / "node_modules" / "axe-core" / "axe.min.js"
# What fails an accessibility check: axe's two worst impacts, and content outside landmarks
# (`region`, "moderate" to axe, but a page a screen reader cannot navigate by landmark).
AXE_FAILING_IMPACTS = ("serious", "critical")
AXE_FAILING_RULES = ("region",)
# Voilà's lab template links Font Awesome from a CDN (the icons also come bundled). These
# machines have no internet: the request is answered with an empty stylesheet, so that a
# failed load is not mistaken for an error of the page. Any other outside request fails.
CDN_STYLESHEETS = re.compile(r"^https://cdn\.jsdelivr\.net/npm/@fortawesome/fontawesome-free@")
OUTSIDE = re.compile(r"^(?!https?://127\.0\.0\.1[:/])https?://")


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs it (apt-get install chromium).")
        pytest.skip(f"browser tests need {CHROMIUM}: apt-get install -y chromium")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """axe-core's script; ``npm ci`` installs the pinned version on the first run (one
    test process at a time: the others wait for it and find it installed)."""
    with (HERE / ".npm-install.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _installed_axe()


def _installed_axe() -> Path:
    if not AXE_SCRIPT.exists():
        npm = shutil.which("npm")
        if npm is None:
            message = "the accessibility checks need npm (apt-get install -y npm)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=HERE,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return AXE_SCRIPT


@dataclass
class Site:
    """The service of one module and the Voilà servers in front of it."""

    service_url: str
    token: str
    data_dir: Path
    children: list[Child] = field(default_factory=list)

    def voila(self, *, token: bool) -> str:
        """Start Voilà on the dashboard, with the demo admin's token or without (sign-in)."""
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ELEGERE_")}
        env["ELEGERE_URL"] = self.service_url
        if token:
            env["ELEGERE_TOKEN"] = self.token
        child = spawn(
            f"Voilà on {port}",
            voila_command(port),
            env=voila_environment(env),
            cwd=ROOT,
            log_path=self.data_dir / "logs" / f"voila-{port}.log",
        )
        self.children.append(child)
        url = f"http://127.0.0.1:{port}"
        wait_until_answers(f"{url}/voila/static/", child, timeout=START_TIMEOUT_S)
        return url + "/"


@pytest.fixture(scope="module")
def service_extra() -> tuple[dict[str, str], list[str]]:
    """Override in a module: (extra environment, extra arguments) of the service."""
    return {}, []


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA and a server certificate, one per module (its service trusts the CA)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def peer(pki: Pki) -> Iterator[SmtpPeer]:
    """aiosmtpd on 127.0.0.1 that requires STARTTLS, then a login; one per module."""
    with SmtpPeer("starttls", pki=pki) as running:
        yield running


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    service_extra: tuple[dict[str, str], list[str]],
    chromium: str,
) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp("site") / ".elegere"
    with pytest.MonkeyPatch.context() as env_now:
        # The store as the service below will see it: none of the caller's ELEGERE_* settings.
        for name in [n for n in os.environ if n.startswith("ELEGERE_")]:
            env_now.delenv(name)
        added, token = prepare_store(data_dir)
    assert added
    port = free_port()
    extra_env, extra_args = service_extra
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELEGERE_")}
    env |= {"ELEGERE_DATA_DIR": str(data_dir), **extra_env}
    service = spawn(
        "service",
        [*service_command(port), *extra_args],
        env=env,
        cwd=data_dir.parent,
        log_path=data_dir / "logs" / "service.log",
    )
    running = Site(f"http://127.0.0.1:{port}", token, data_dir, [service])
    try:
        wait_until_answers(f"{running.service_url}/api/v1/me", service, timeout=START_TIMEOUT_S)
        yield running
    finally:
        stop_all(running.children)


class Browse:
    """One page: screenshots of each step, and every JavaScript error it had."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.errors: list[str] = []
        self.outside: list[str] = []
        self._step = 0
        page.set_default_timeout(30_000)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )
        page.route(OUTSIDE, self._outside)

    def _outside(self, route: Any) -> None:
        url = route.request.url
        if CDN_STYLESHEETS.match(url):
            route.fulfill(status=200, content_type="text/css", body="/* no network here */")
        else:
            self.outside.append(url)
            route.abort()

    def open(self, url: str, ready: str) -> float:
        """Go to ``url`` and wait until ``ready`` (a selector) shows; the seconds it took."""
        started = time.monotonic()
        self.page.goto(url)
        self.page.locator(ready).first.wait_for(state="visible", timeout=60_000)
        return time.monotonic() - started

    def shot(self, name: str) -> Path:
        self._step += 1
        path = self.shots / f"{self._step:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def axe(self, script: Path) -> list[str]:
        """axe-core's failing violations on the page as it is now, one line each."""
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.add_script_tag(path=str(script))
        results = self.page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        found = []
        for violation in results["violations"]:
            failing = violation["impact"] in AXE_FAILING_IMPACTS
            if not failing and violation["id"] not in AXE_FAILING_RULES:
                continue
            targets = [" ".join(map(str, n["target"])) for n in violation["nodes"]][:5]
            found.append(
                f"{violation['id']} ({violation['impact']}, {len(violation['nodes'])} nodes): "
                f"{violation['help']} — {targets}"
            )
        return found

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.outside == [], f"requests outside 127.0.0.1: {self.outside}"


@pytest.fixture
def browse(browser: Any, tmp_path: Path) -> Iterator[Browse]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    shots = tmp_path / "screenshots"
    shots.mkdir()
    browse = Browse(context.new_page(), shots)
    try:
        yield browse
    finally:
        # What the page showed at the end: on a failure, the first thing to look at.
        with contextlib.suppress(Exception):
            browse.page.screenshot(path=str(shots / "last.png"), full_page=True)
        context.close()
        # Keep the last run's screenshots where a person can find them (tmp_path is pruned).
        keep = os.environ.get("ELEGERE_SCREENSHOTS")
        if keep:
            target = Path(keep) / tmp_path.name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(shots, target)
