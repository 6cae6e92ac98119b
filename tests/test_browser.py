"""The course in a real browser: JupyterLab driven by headless Chromium (Playwright), and the rendered site.

What the other tests cannot see: the widget front end. Here JupyterLab runs notebooks 1-3 with "Run All
Cells"; the loss playground of each must answer two slider moves (temperature and a second knob) with a
new loss and a new figure, the comparer's button must add a run, no cell may show a traceback and the
page may log no error (but the Colab badge's image, which is fetched from the internet). Then each page
of the rendered site (``make site``) must load, with every figure and internal link.

Slow (minutes) and needs Chromium, so it is marked ``browser`` and skipped unless ``RUN_BROWSER=1``.
``make test-browser`` installs what it needs (Debian's chromium, Playwright from PyPI, which drives
that Chromium: Playwright's own browser download is not used) and runs it:

    RUN_BROWSER=1 CHROMIUM=/usr/bin/chromium python -m pytest tests/test_browser.py -m browser

Screenshots go to ``build/browser/`` (git-ignored).
"""

import functools
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "browser")
SITE = os.environ.get("CSE_SITE_DIR", os.path.join(ROOT, "build", "site"))
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
RUN_ALL_SECONDS = int(os.environ.get("BROWSER_RUN_ALL_SECONDS", "600"))  # one notebook, Run All Cells
# The loss playground of each notebook and the knobs moved in it: temperature and the method's own one
# (sliders are found by the start of their label).
PLAYGROUND_KNOBS = {"01_simcse.ipynb": ["temperature", "margin"],
                    "02_esimcse.ipynb": ["temperature", "dup_rate"],
                    "03_diffcse.ipynb": ["temperature", "λ"]}
COMPARER_BUTTON = "train and overlay"
# The one error a page may log offline: the "Open in Colab" badge image, fetched from colab.research.google.com
ALLOWED_ERRORS = re.compile(r"colab-badge\.svg|colab\.research\.google\.com")

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(os.environ.get("RUN_BROWSER") != "1",
                                 reason="slow, needs Chromium: `make test-browser` (or RUN_BROWSER=1)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float, what: str, every: float = 0.5):
    """Poll ``condition()`` until it returns something true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"gave up after {timeout:.0f} s waiting for {what}")


# ---- JupyterLab ------------------------------------------------------------------------------------

def write_lab_settings(settings_dir: str) -> None:
    """JupyterLab settings for a test: every cell kept in the page (no windowing), no news or update checks."""
    settings = {"@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
                "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
                    "fetchNews": "false", "checkForUpdates": False}}
    for rel, values in settings.items():
        path = os.path.join(settings_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(values, f)


@pytest.fixture(scope="module")
def lab():
    """JupyterLab on 127.0.0.1 with a token, serving copies of the notebooks (JupyterLab may save them);
    stopped by its PID at the end."""
    home = os.path.join(BUILD, "lab")
    shutil.rmtree(home, ignore_errors=True)
    os.makedirs(os.path.join(home, "notebooks"))
    for name in PLAYGROUND_KNOBS:
        shutil.copyfile(os.path.join(ROOT, "notebooks", name), os.path.join(home, "notebooks", name))
    write_lab_settings(os.path.join(home, "settings"))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": os.path.join(home, "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": os.path.join(home, "workspaces"),
           "JUPYTER_CONFIG_DIR": os.path.join(home, "config"), "JUPYTER_RUNTIME_DIR": os.path.join(home, "runtime"),
           "CSE_QUICK": "1", "CSE_RUNS_DIR": os.path.join(home, "runs")}  # the kernels inherit this environment
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={home}"] + (["--allow-root"] if os.geteuid() == 0 else [])
    log = open(os.path.join(BUILD, "jupyterlab.log"), "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def api(path, method="GET"):
        request = urllib.request.Request(f"{url}{path}", method=method, headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def ready():
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}; see {log.name}")
        try:
            return api("/api/status")
        except (urllib.error.URLError, ConnectionError):
            return None

    try:
        wait_for(ready, 120, "JupyterLab to answer")
        yield {"url": url, "token": token, "api": api}
    finally:
        try:
            for kernel in api("/api/kernels"):
                api(f"/api/kernels/{kernel['id']}", method="DELETE")
        except (urllib.error.URLError, ConnectionError):
            pass
        os.kill(server.pid, signal.SIGTERM)  # stop the server we started, by its PID
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright: `make test-browser` installs it")
    if not os.path.isfile(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium (make test-browser does) or set CHROMIUM")
    os.makedirs(BUILD, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--lang=en-US"])
        yield chromium
        chromium.close()


def watch_errors(page) -> list[str]:
    """The errors ``page`` logs from now on (console errors, uncaught exceptions, failed requests)."""
    errors = []

    def console(message):
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    return errors


def screenshot(target, name: str) -> str:
    path = os.path.join(BUILD, f"{name}.png")
    target.screenshot(path=path)
    return path


def kernel_busy(panel) -> bool:
    """True while a cell of ``panel`` waits or runs (prompt ``[*]``)."""
    return any("*" in prompt for prompt in panel.locator(".jp-InputPrompt").all_inner_texts())


def run_all_cells(page, panel) -> float:
    """Run > Run All Cells; returns when every cell ran and the kernel is idle (seconds taken)."""
    start = time.monotonic()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    wait_for(lambda: kernel_busy(panel), 60, "the cells to start")
    code_cells = panel.locator(".jp-CodeCell")

    def done():
        if kernel_busy(panel) or "Idle" not in page.locator(".jp-StatusBar-Widget").all_inner_texts().__str__():
            return False
        prompts = code_cells.locator(".jp-InputArea-prompt").all_inner_texts()
        return all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts)

    wait_for(done, RUN_ALL_SECONDS, "Run All Cells to finish (every prompt numbered, kernel Idle)", every=2)
    return time.monotonic() - start


def tracebacks(panel) -> list[str]:
    """The outputs of ``panel`` that show an error: a cell's traceback (``Cell In[3], line 1`` for a syntax
    error), or one a widget printed when its callback failed."""
    texts = panel.locator(".jp-OutputArea-output").all_inner_texts()
    return [t for t in texts if "Traceback (most recent call last)" in t
            or re.search(r"^\s*Cell In\[\d+\], line", t, re.M)]


def widget_cell(panel, page, with_button: bool):
    """The code cell whose output has a temperature slider: the comparer's (with its button) or the playground's."""
    temperature = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=re.compile("^temperature")))
    cells = panel.locator(".jp-CodeCell").filter(has=temperature)
    button = page.get_by_role("button", name=COMPARER_BUTTON)
    cell = cells.filter(has=button) if with_button else cells.filter(has_not=button)
    assert cell.count() == 1, f"expected one {'comparer' if with_button else 'playground'} cell, found {cell.count()}"
    return cell


def slider(cell, page, label: str):
    found = cell.locator(".widget-slider").filter(
        has=page.locator(".widget-label", has_text=re.compile("^" + re.escape(label))))
    assert found.count() == 1, f"expected one slider labelled {label!r}, found {found.count()}"
    return found


def figure_src(cell) -> str:
    """The ``src`` of the widget's figure (a data URL, new for every redraw)."""
    image = cell.locator(".widget-output img")
    return image.last.get_attribute("src") if image.count() else ""


def loss_value(cell) -> float:
    """The loss the playground prints (``loss = 1.2345 ...``)."""
    texts = [t for t in cell.locator(".widget-html-content").all_inner_texts() if "loss =" in t]
    assert len(texts) == 1, f"expected one 'loss = ...' readout, found {texts}"
    return float(re.search(r"loss = (-?[\d.]+)", texts[0]).group(1))


def settled(cell, quiet: float = 2.0, timeout: float = 60) -> tuple[float, str]:
    """The playground's loss and figure once they stopped changing for ``quiet`` seconds (the kernel answers
    a move with the loss first, the figure a moment later)."""
    state, since, deadline = None, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = (loss_value(cell), figure_src(cell))
        if now != state:
            state, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return state
        time.sleep(0.2)
    pytest.fail(f"the playground kept changing for {timeout:.0f} s")


@pytest.mark.parametrize("name", list(PLAYGROUND_KNOBS))  # in order: 2 and 3 reuse the runs saved by 1 and 2
def test_notebook_runs_in_jupyterlab_and_its_widgets_answer(lab, browser, name):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = watch_errors(page)
    page.goto(f"{lab['url']}/lab/tree/notebooks/{name}?reset&token={lab['token']}")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")  # a restored hidden tab has its own kernel
    panel.wait_for(timeout=120_000)
    wait_for(lambda: "Idle" in str(page.locator(".jp-StatusBar-Widget").all_inner_texts()), 120, "the kernel")
    seconds = run_all_cells(page, panel)
    stem = name.removesuffix(".ipynb")
    print(f"{name}: Run All Cells took {seconds:.0f} s")
    assert tracebacks(panel) == []

    playground = widget_cell(panel, page, with_button=False)
    playground.scroll_into_view_if_needed()
    screenshot(playground, f"{stem}-playground-before")
    for knob in PLAYGROUND_KNOBS[name]:
        moved = slider(playground, page, knob)
        value, (loss, figure) = moved.locator(".widget-readout").inner_text(), settled(playground)
        assert figure.startswith("data:image/png"), "the playground shows no figure"
        moved.locator(".noUi-handle").focus()  # (a click could nudge the value by itself)
        page.keyboard.press("ArrowRight")  # one step up
        wait_for(lambda: loss_value(playground) != loss and figure_src(playground) != figure, 60,  # noqa: B023
                 f"the loss and the figure to change after moving {knob}")
        new_loss, new_figure = settled(playground)
        new_value = moved.locator(".widget-readout").inner_text()
        assert new_value != value and new_loss != loss and new_figure != figure
        print(f"{name}: {knob} {value} -> {new_value}: loss {loss} -> {new_loss}")
    screenshot(playground, f"{stem}-playground-after")

    comparer = widget_cell(panel, page, with_button=True)
    comparer.scroll_into_view_if_needed()
    rows = comparer.locator(".widget-html-content tr:has(td)")
    runs_before, figure = rows.count(), figure_src(comparer)
    comparer.get_by_role("button", name=COMPARER_BUTTON).click()
    wait_for(lambda: rows.count() == runs_before + 1 and figure_src(comparer) != figure, 180,
             "the comparer to add a run (a row in its table) and redraw")
    print(f"{name}: the comparer went from {runs_before} to {rows.count()} runs")
    screenshot(comparer, f"{stem}-comparer")
    assert tracebacks(panel) == []
    screenshot(page, f"{stem}-page")
    page.close()
    assert [e for e in errors if not ALLOWED_ERRORS.search(e)] == []
    lab["api"]("/api/kernels")  # the server is still up


# ---- the rendered site ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site_url():
    if not os.path.isfile(os.path.join(SITE, "index.html")):
        pytest.fail(f"no site in {SITE}: run `make site` first (make test-browser does)")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=SITE))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_the_rendered_site_loads_with_its_figures_and_links(browser, site_url):
    import nbformat

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    # offline, like the test machine: anything not on this server (CDN scripts, the Colab badge) is refused
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(site_url) else route.abort())
    assert page.goto(site_url + "index.html").ok
    screenshot(page, "site-index")
    pages = page.eval_on_selector_all("table a[href]", "links => links.map(a => a.getAttribute('href'))")
    executed = os.path.join(ROOT, "notebooks", "executed")
    notebooks = sorted(n for n in os.listdir(os.path.join(ROOT, "notebooks")) if n.endswith(".ipynb"))
    assert pages == [n.replace(".ipynb", ".html") for n in notebooks]  # the syllabus lists every notebook
    visited = set()
    for href in pages + page.eval_on_selector_all("ul a[href]", "links => links.map(a => a.getAttribute('href'))"):
        response = page.goto(site_url + href)
        assert response.ok, f"{href}: HTTP {response.status}"
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => ({src: i.src.slice(0, 60), loaded: i.complete && i.naturalWidth > 0}))")
        local = [i for i in images if i["src"].startswith(("data:", site_url))]
        assert all(i["loaded"] for i in local), f"{href}: figures that do not load: {local}"
        source = os.path.join(executed, href.replace(".html", ".ipynb"))
        if os.path.isfile(source):
            nb = nbformat.read(source, as_version=4)
            figures = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
            assert len(local) >= figures, f"{href}: {len(local)} images for the notebook's {figures} figures"
            assert page.locator(".jp-Cell").count() == len(nb.cells)
        links = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
        for link in links:
            if re.match(r"^[a-z]+:", link):  # another site (GitHub, Colab, a paper): not checked offline
                continue
            target, _, anchor = link.partition("#")
            if target:
                response = page.request.get(site_url + target)
                assert response.ok, f"{href}: link {link!r} leads nowhere"
                if anchor:
                    assert f'id="{anchor}"' in response.text() or f'id="{urllib.parse.unquote(anchor)}"' in \
                        response.text(), f"{href}: link {link!r} names no element there"
            elif anchor:
                # as a browser finds a fragment's element: its id as written, else percent-decoded
                assert page.evaluate("id => !!(document.getElementById(id) || "
                                     "document.getElementById(decodeURIComponent(id)))", anchor), \
                    f"{href}: link {link!r} names no element of the page"
        visited.add(href)
        screenshot(page, f"site-{href.replace('.html', '')}")
        widgets = page.locator(".cse-widget")
        if widgets.count():  # a widget as the page shows it: its texts, knob values and last figure
            screenshot(widgets.first, f"site-{href.replace('.html', '')}-widget")
    print(f"site: {len(visited)} pages checked")
    page.close()
