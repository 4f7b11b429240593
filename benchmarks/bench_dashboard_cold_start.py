"""Dashboard cold start: how long a person opening the dashboard waits for the demo servers.

Measured: the product dashboard (``notebooks/email_servers.ipynb``) served by Voilà the way
``make run`` starts it (``launch.voila_command``, run from the repository so that
``voila.json`` applies: sources stripped, one preheated kernel), in front of the service
(``launch.service_command``) on a store prepared by ``launch.prepare_store`` (the demo data,
the demo admin's token, which the kernel gets in ``ELEGERE_TOKEN`` as with ``make run``).
Headless Chromium (Playwright, Debian's ``/usr/bin/chromium``) opens the page in a new browser
context, so with an empty cache, as a first visit; the time runs from navigation start
(``performance.timeOrigin``) to the first animation frame in which the table shows the demo
rows "Acme Relay" and "Sales Mailer" (a check installed before the page's own scripts).

Baseline, same run: a second Voilà started the same way (same version, command line, working
directory and so ``voila.json``, environment), serving a notebook of one ``ipywidgets.Label``
(written to a temporary directory at run time); the time until the label's text is visible.
The two are visited alternately, and which one goes first alternates too.

Included: the page request, Voilà's rendering of the page and of the cells that run once the
visitor has arrived (``dashboard.start()``: the calls to the service and building the
widgets), the page's static files (empty cache), the kernel's websocket, the widgets' state
and their drawing in the browser; and, as with ``make run``, the pool's refill, which Voilà
starts 1 s after the page is asked for (a new kernel running the cells up to
``wait_for_visitor()``), on the same 2 cores as the browser. Not included: starting the
service, Voilà or the browser (one Chromium, a new context per visit), and what preheating did
before the visit, for both notebooks alike: starting the kernel and running the cells before
``wait_for_visitor()`` (the imports, ``Dashboard.from_env()``). Before every visit the script
waits until each Voilà has a new preheated kernel and every process it started has been idle
for two half-second windows, so that no visit pays for the previous visit's refill (a person
who reloads at once would). The first visit to each server is printed apart and left out.
Voilà's template links Font Awesome from a CDN: answered with an empty stylesheet (no internet
on these machines), on both pages alike. The kernel a visit used is shut down afterwards; the
demo SMTP server is not started (the page only shows its settings). Each visit also prints
when the page had been received and had loaded (``responseEnd``, ``loadEventEnd``), to tell
the server's share from the browser's.

Extra line, no target: the same pair of servers without preheating
(``--VoilaConfiguration.preheat_kernel=False``): the kernel starts when the page is asked
for, so the kernel's start and the notebook's imports are in that figure. ``--no-cold`` skips it.

    .venv/bin/python benchmarks/bench_dashboard_cold_start.py [--quick] [--runs 7] [--no-cold]
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import nbformat
import psutil
from _common import (
    Figure,
    data_dir,
    free_port,
    median,
    ms,
    note,
    parse_args,
    percentile,
    report,
)

from elegere_widgets.dashboard.demo import ENV as DEMO_ENV
from elegere_widgets.dashboard.demo import DemoSmtp
from elegere_widgets.dashboard.demo_smtp import ACCOUNT, PASSWORD, SENDER
from elegere_widgets.dashboard.launch import (
    HOST,
    NOTEBOOK,
    ROOT,
    prepare_store,
    service_command,
    voila_command,
    voila_environment,
)
from elegere_widgets.dashboard.processes import Child, spawn, stop_all, wait_until_answers
from tests.browser.conftest import CDN_STYLESHEETS, CHROMIUM, CHROMIUM_ARGS, OUTSIDE

TARGET_RATIO = 1.5
START_TIMEOUT_S = 90.0
VISIT_TIMEOUT_S = 60.0
# Idle: the run's processes used less than QUIET_CPU_S of CPU in QUIET_WINDOW_S (8% of a core).
QUIET_CPU_S = 0.04
QUIET_WINDOW_S = 0.5
SETTLE_TIMEOUT_S = 120.0
DEMO_ROWS = ["Acme Relay", "Sales Mailer"]
ROW_NAMES = ".elegere-row .elegere-cell-name"
BASELINE_TEXT = "Baseline: one label"
LABEL = ".widget-label"

# At every animation frame, until the texts show: the frame in which a person first sees them.
READY_SCRIPT = """
(() => {
  const selector = %(selector)s, wanted = %(wanted)s;
  const shown = (el) => el.getClientRects().length > 0 &&
    el.checkVisibility({opacityProperty: true, visibilityProperty: true});
  const check = () => {
    const texts = new Set(
      [...document.querySelectorAll(selector)].filter(shown).map((el) => el.textContent.trim())
    );
    if (wanted.every((t) => texts.has(t))) {
      window.__elegereReadyAt = performance.now();
    } else {
      requestAnimationFrame(check);
    }
  };
  requestAnimationFrame(check);
})();
"""

# Closing a browser context leaves the visit's kernel running in Voilà: without this, every
# visit would leave one behind (memory, and noise for the next visits). The endpoint wants
# tornado's double-submit XSRF token: any value, in the cookie and in the header alike.
SHUT_DOWN_KERNEL = """
async () => {
  const config = document.getElementById("jupyter-config-data");
  const kernelId = config && JSON.parse(config.textContent).kernelId;
  if (!kernelId) return 0;
  document.cookie = "_xsrf=benchmark; path=/";
  const answer = await fetch(`voila/api/shutdown/${kernelId}`,
    {method: "POST", headers: {"X-XSRFToken": "benchmark"}});
  return answer.status;
}
"""

NAVIGATION = "() => performance.getEntriesByType('navigation')[0].toJSON()"


def baseline_notebook(directory: Path) -> Path:
    """One code cell showing one Label, with the dashboard notebook's kernelspec."""
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.metadata = nbformat.read(NOTEBOOK, as_version=4).metadata  # type: ignore[no-untyped-call]
    source = f"import ipywidgets\n\nipywidgets.Label({BASELINE_TEXT!r})"
    nb.cells = [nbformat.v4.new_code_cell(source)]  # type: ignore[no-untyped-call]
    path = directory / "baseline.ipynb"
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]
    return path


# ---------------------------------------------------------------- processes


def _tree(pid: int) -> list[psutil.Process]:
    try:
        top = psutil.Process(pid)
        return [top, *top.children(recursive=True)]
    except psutil.Error:
        return []


def _is_kernel(proc: psutil.Process) -> bool:
    try:
        return "ipykernel_launcher" in proc.cmdline()[1:3]
    except psutil.Error:
        return False


@dataclass
class Page:
    """One Voilà server, and what its page shows once it is ready."""

    name: str
    child: Child
    url: str
    selector: str
    wanted: list[str]
    preheat: bool
    # The kernels there were when the page was last asked for: the refill is one not among them.
    kernels_at_visit: set[int] = field(default_factory=set)

    def kernels(self) -> set[int]:
        return {p.pid for p in _tree(self.child.pid)[1:] if _is_kernel(p)}

    def ready_for_visit(self) -> bool:
        if not self.child.running():
            raise RuntimeError(f"{self.child.name} stopped:\n{self.child.log_tail()}")
        return not self.preheat or bool(self.kernels() - self.kernels_at_visit)

    def script(self) -> str:
        return READY_SCRIPT % {
            "selector": json.dumps(self.selector),
            "wanted": json.dumps(self.wanted),
        }


class Idle:
    """CPU time of the run's processes and all their descendants."""

    def __init__(self, children: Sequence[Child]) -> None:
        self.roots = [child.pid for child in children]
        # The same Process objects each time: psutil refuses a PID that has since been reused.
        self.known: dict[int, psutil.Process] = {}

    def cpu_seconds(self) -> float:
        total = 0.0
        for root in self.roots:
            for proc in _tree(root):
                known = self.known.setdefault(proc.pid, proc)
                with contextlib.suppress(psutil.Error):
                    times = known.cpu_times()
                    total += times.user + times.system
        return total

    def settle(self, pages: Sequence[Page]) -> float:
        """Wait until each preheating Voilà has a new kernel and all is idle; seconds waited."""
        started = time.monotonic()
        before = self.cpu_seconds()
        quiet = 0
        while time.monotonic() - started < SETTLE_TIMEOUT_S:
            time.sleep(QUIET_WINDOW_S)
            now = self.cpu_seconds()
            quiet, before = (quiet + 1 if now - before < QUIET_CPU_S else 0), now
            # Two quiet windows in a row: a new kernel may pause before Voilà runs its cells.
            if quiet >= 2 and all(page.ready_for_visit() for page in pages):
                return time.monotonic() - started
        print(f"  (still busy after {SETTLE_TIMEOUT_S:.0f} s: visiting anyway)", flush=True)
        return time.monotonic() - started


@contextlib.contextmanager
def without_elegere_settings() -> Iterator[None]:
    """The store as ``make run`` prepares it for a new user: none of the caller's ELEGERE_*."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("ELEGERE_")}
    for name in saved:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(saved)


def start_service(tmp: Path, children: list[Child]) -> dict[str, str]:
    """The service on a demo store, as ``make run`` starts it; the environment ``make run``
    gives Voilà (and so its kernels) to reach it as the demo admin."""
    store = tmp / ".elegere"
    with without_elegere_settings():
        _added, token = prepare_store(store)
    base = {k: v for k, v in os.environ.items() if not k.startswith("ELEGERE_")}
    port = free_port()
    service = spawn(
        "service",
        service_command(port),
        env=base | {"ELEGERE_DATA_DIR": str(store)},
        cwd=tmp,
        log_path=tmp / "logs" / "service.log",
    )
    children.append(service)
    url = f"http://{HOST}:{port}"
    wait_until_answers(f"{url}/api/v1/me", service, timeout=START_TIMEOUT_S)
    # The demo SMTP server's settings only feed the page's help text: nothing listens there.
    demo = DemoSmtp(HOST, free_port(), True, ACCOUNT, PASSWORD, SENDER)
    return base | {"ELEGERE_URL": url, "ELEGERE_TOKEN": token, DEMO_ENV: demo.to_env()}


def start_voila(
    name: str,
    notebook: Path,
    *,
    env: dict[str, str],
    preheat: bool,
    selector: str,
    wanted: list[str],
    logs: Path,
    children: list[Child],
) -> Page:
    """Voilà on ``notebook`` as ``make run`` starts it (no wait: start several at once)."""
    port = free_port()
    extra = [] if preheat else ["--VoilaConfiguration.preheat_kernel=False"]
    child = spawn(
        f"Voilà ({name})",
        [*voila_command(port, notebook), *extra],
        env=voila_environment(env),
        cwd=ROOT,
        log_path=logs / f"voila-{port}.log",
    )
    children.append(child)
    return Page(name, child, f"http://{HOST}:{port}/", selector, wanted, preheat)


def wait_started(pages: Sequence[Page]) -> None:
    for page in pages:
        wait_until_answers(f"{page.url}voila/static/", page.child, timeout=START_TIMEOUT_S)


# ---------------------------------------------------------------- the browser


def _no_outside(route: Any) -> None:
    if CDN_STYLESHEETS.match(route.request.url):
        route.fulfill(status=200, content_type="text/css", body="/* no network here */")
    else:
        route.abort()


@dataclass
class Visit:
    """When, from navigation start, the page had arrived, had loaded, and showed the texts."""

    html: float
    loaded: float
    ready: float


def visit(browser: Any, page: Page) -> Visit:
    """Open the page in a new context and wait until it is ready."""
    page.kernels_at_visit = page.kernels()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        tab = context.new_page()
        tab.route(OUTSIDE, _no_outside)
        tab.add_init_script(page.script())
        tab.goto(page.url, wait_until="commit", timeout=VISIT_TIMEOUT_S * 1000)
        ready = tab.wait_for_function(
            "() => window.__elegereReadyAt", timeout=VISIT_TIMEOUT_S * 1000
        )
        nav = tab.evaluate(NAVIGATION)
        seen = Visit(
            nav["responseEnd"] / 1000, nav["loadEventEnd"] / 1000, ready.json_value() / 1000
        )
        with contextlib.suppress(Exception):  # a kernel left running costs memory, not figures
            tab.evaluate(SHUT_DOWN_KERNEL)
        return seen
    finally:
        context.close()


def measure(
    browser: Any, pages: Sequence[Page], idle: Idle, runs: int
) -> tuple[dict[str, list[Visit]], dict[str, Visit], str]:
    """A first visit of each page (printed apart), then ``runs`` alternating visits of each:
    (the visits by page, the first visits, the load average when the runs started)."""
    first = {}
    for page in pages:
        idle.settle(pages)
        first[page.name] = visit(browser, page)
        print(f"  first visit, {page.name}: {phases(first[page.name])}", flush=True)
    load = note(f"{runs} visits of each, alternating: {' / '.join(p.name for p in pages)}")
    visits: dict[str, list[Visit]] = {page.name: [] for page in pages}
    for i in range(runs):
        for page in pages if i % 2 == 0 else pages[::-1]:
            waited = idle.settle(pages)
            seen = visit(browser, page)
            visits[page.name].append(seen)
            print(
                f"  run {i + 1}, {page.name}: {phases(seen)}  (waited {waited:.1f} s until idle)",
                flush=True,
            )
    return visits, first, load


def phases(seen: Visit) -> str:
    return f"ready {ms(seen.ready)} (page received {ms(seen.html)}, loaded {ms(seen.loaded)})"


# ---------------------------------------------------------------- main


class Stopped(BaseException):
    """SIGTERM or SIGHUP: stop what was started, as on Ctrl-C."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


def figure(
    name: str, target: str, visits: dict[str, list[Visit]], first: dict[str, Visit], load: str
) -> Figure:
    dash = [v.ready for v in visits["dashboard"]]
    base = [v.ready for v in visits["baseline"]]
    measured, baseline = median(dash), median(base)
    print(f"  {name}, {len(dash)} visits of each (medians; p90 of ready):")
    for label, key in (("dashboard", "dashboard"), ("one Label", "baseline")):
        seen = visits[key]
        print(
            f"    {label:9}  ready {ms(median([v.ready for v in seen]))} "
            f"(p90 {ms(percentile([v.ready for v in seen], 90))}); page received "
            f"{ms(median([v.html for v in seen]))}, loaded {ms(median([v.loaded for v in seen]))};"
            f" first visit {ms(first[key].ready)}"
        )
    return Figure(
        name=name,
        measured=measured * 1000,
        baseline=baseline * 1000,
        unit="ms",
        target=target,
        met=measured <= TARGET_RATIO * baseline if target.startswith("≤") else True,
        note=(
            f"median of {len(dash)} visits each; p90 {ms(percentile(dash, 90))} vs "
            f"{ms(percentile(base, 90))}"
        ),
        load=load,
    )


def main() -> None:
    def options(parser: Any) -> None:
        parser.add_argument("--runs", type=int, default=None, help="visits of each page")
        parser.add_argument(
            "--no-cold", action="store_true", help="skip the extra figure without preheating"
        )

    args = parse_args(__doc__.splitlines()[0], add=options)
    runs = args.runs or (3 if args.quick else 7)
    modes = [True] if args.no_cold else [True, False]
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)

    from playwright.sync_api import sync_playwright

    children: list[Child] = []
    results = {}
    with data_dir() as tmp_name, tempfile.TemporaryDirectory(prefix="elegere-nb-") as nb_dir:
        tmp = Path(tmp_name)
        try:
            note("starting the service and the Voilà servers")
            env = start_service(tmp, children)
            baseline = baseline_notebook(Path(nb_dir))
            pages = {
                preheat: [
                    start_voila(
                        name,
                        notebook,
                        env=env,
                        preheat=preheat,
                        selector=selector,
                        wanted=wanted,
                        logs=tmp / "logs",
                        children=children,
                    )
                    for name, notebook, selector, wanted in (
                        ("dashboard", NOTEBOOK, ROW_NAMES, DEMO_ROWS),
                        ("baseline", baseline, LABEL, [BASELINE_TEXT]),
                    )
                ]
                for preheat in modes
            }
            wait_started([page for made in pages.values() for page in made])
            idle = Idle(children)
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                try:
                    for preheat in modes:
                        print(f"{'preheated kernels' if preheat else 'no preheating'}:")
                        results[preheat] = measure(browser, pages[preheat], idle, runs)
                finally:
                    browser.close()
        finally:
            stop_all(children)

    report(
        figure(
            "Dashboard cold start (preheated, as make run): until the demo rows show",
            f"≤ {TARGET_RATIO:g}× a one-Label page",
            *results[True],
        )
    )
    if False in results:
        report(
            figure(
                "Dashboard cold start without preheating (extra): until the demo rows show",
                "none (kernel start and imports included)",
                *results[False],
            )
        )


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, Stopped) as stop:
        print(f"Stopped ({str(stop) or 'Ctrl-C'}): every process the benchmark started is stopped.")
        raise SystemExit(1) from None
