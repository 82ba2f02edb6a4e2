"""The release as a student sees it: JupyterLab in a real browser (headless Chromium).

One release notebook (solutions and hidden tests removed by nbgrader's own preprocessors,
with this course's nbgrader_config.py) is opened in a ``jupyter lab`` started from this
environment and run through the UI, the way a student does: Run > Run All Cells. JupyterLab
stops at the first error, as it does for a student, so the test carries on as a student
would: it selects the next cell and runs Run > Run Selected Cell and All Below, until the
last cell has run. Then, in the page:

1. every exercise is the stub a student fills in (``# YOUR CODE HERE`` and
   ``raise NotImplementedError()``), and the test cell below it fails with that
   ``NotImplementedError``, pointing at the stub;
2. figures render: image outputs are in the page, decoded (non-zero size);
3. nbgrader's "Validate" button is in the notebook's toolbar (nbgrader's JupyterLab
   extension is installed and loaded), and clicking it works: nbgrader's server extension
   runs the notebook and its dialog names every test cell as failed, on the stub.

About a minute on a 2-core machine (the notebook runs twice: in the page, and for Validate,
with HW8_QUICK=1). The server and the browser are stopped at the end, also on failure; a
failure leaves a screenshot (page.png) and the server's log beside the test's tmp_path.

The browser is Debian's ``chromium`` (``apt-get install chromium``; .ci/run installs it),
driven by Playwright through ``executable_path``; Playwright never downloads a browser
here. Without chromium the test is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "02_denoising_autoencoder"  # four exercises, and a figure that needs none of them
CHROMIUM = os.environ.get("HW8_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SERVER_START_S = 90  # jupyter lab on a busy 2-core machine takes 5-20 s
RUN_S = 240  # running the whole notebook (HW8_QUICK=1) takes about 30 s on 2 cores
STUB = "raise NotImplementedError()"

if not Path(CHROMIUM).exists():
    pytest.skip(
        "needs Debian's chromium for the browser test: "
        "apt-get update && apt-get install -y chromium (.ci/run does this)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs playwright (the dev extra: pip install -e '.[dev]')"
)
pytest.importorskip("jupyterlab", reason="needs JupyterLab (the course extra)")
pytest.importorskip("nbgrader", reason="needs nbgrader (the course extra)")


# ----------------------------------------------------------------------------- the release


def release_notebook(name: str):
    """The student's copy of notebooks/hw8/<name>.ipynb, as `nbgrader generate_assignment`
    makes it: nbgrader's ClearSolutions and ClearHiddenTests with the course's config."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    nb = nbformat.read(ROOT / "notebooks" / "hw8" / f"{name}.ipynb", as_version=4)
    resources: dict = {}
    for step in (ClearSolutions, ClearHiddenTests, ClearOutput):
        nb, resources = step(config=config).preprocess(nb, resources)
    return nb


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def graded_tests(nb) -> list[int]:
    """The autograded test cells: graded code cells that are not solutions."""
    return [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and nbgrader_meta(cell).get("grade")
        and not nbgrader_meta(cell).get("solution")
    ]


def exercises(nb) -> list[tuple[int, int]]:
    """(exercise cell, its test cell): each code solution cell and the next test cell."""
    tests = graded_tests(nb)
    return [
        (index, next(test for test in tests if test > index))
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and nbgrader_meta(cell).get("solution")
    ]


# ----------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_settings(folder: Path) -> None:
    """JupyterLab user settings for the test: every cell in the page, no news pop-up."""
    settings = {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for plugin, values in settings.items():
        package, name = plugin.rsplit("/", 1)
        path = folder / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def wait_for_server(url: str, process: subprocess.Popen, log: Path) -> None:
    """Poll the server's /api/status until it answers 200 (or fail with its log)."""
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jupyter lab exited ({process.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    pytest.fail(f"jupyter lab did not answer in {SERVER_START_S} s:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the server (it shuts its kernels down), SIGKILL its process group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@pytest.fixture
def lab(tmp_path):
    """A `jupyter lab` serving a folder with the release notebook: (url of it, log file)."""
    folder = tmp_path / "release"
    folder.mkdir()
    nbformat.write(release_notebook(NOTEBOOK), folder / f"{NOTEBOOK}.ipynb")
    write_settings(tmp_path / "settings")
    port, token = free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        HW8_QUICK="1",  # one short epoch: the course's own tests never train for long
        HW8_DEVICE="cpu",
        # nothing of the user's: no ~/.jupyter config, no kernel spec in ~/.local shadowing
        # this environment's python3, no saved workspace or settings, no IPython profile
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    log = tmp_path / "jupyter.log"
    command = [
        str(Path(sys.executable).with_name("jupyter")),
        "lab",
        "--no-browser",
        "--allow-root",  # CI runs as root
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={folder}",
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_server(f"{base}/api/status?token={token}", process, log)
        yield f"{base}/lab/tree/{NOTEBOOK}.ipynb?token={token}", log
    finally:
        stop(process)


# ----------------------------------------------------------------------------- the page

# One record per cell of the notebook, in order, read from the page.
READ_CELLS = """
() => [...document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')].map(cell => ({
    code: cell.classList.contains('jp-CodeCell'),
    prompt: (cell.querySelector('.jp-InputPrompt')?.textContent || '').trim(),
    source: cell.querySelector('.jp-InputArea-editor .cm-content')?.innerText || '',
    errors: [...cell.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    )].map(node => node.innerText),
    images: [...cell.querySelectorAll('.jp-OutputArea-output img')].map(
        img => [img.complete, img.naturalWidth, img.naturalHeight]
    ),
}))
"""
# The notebook's kernel is started, connected and idle, as JupyterLab's status bar says it
# ("Python 3 (ipykernel) | Idle"; before that "No Kernel | Initializing", "... | Unknown").
# The toolbar's execution indicator reads "idle" before a kernel is there: not enough, and
# a Run All clicked then runs nothing.
KERNEL_IDLE = """
() => {
    const bar = document.querySelector('#jp-main-statusbar')?.innerText || '';
    return !bar.includes('No Kernel') && /\\|\\s*Idle\\b/.test(bar);
}
"""
# Done: the cell `index` ran, no cell is queued or running, the kernel is idle.
RAN = f"""
(index) => {{
    const cells = document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell');
    const prompts = [...cells].map(c => c.querySelector('.jp-InputPrompt')?.textContent || '');
    return /\\[\\d+\\]/.test(prompts[index]) && !prompts.some(p => p.includes('*'))
        && ({KERNEL_IDLE.strip()})();
}}
"""


def ran(prompt: str) -> bool:
    return any(char.isdigit() for char in prompt)


def run_menu(page, item: str) -> None:
    """Click Run > ``item`` in JupyterLab's menu bar."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


def run_everything(page, cells_count: int) -> list[dict]:
    """Run All Cells, then, after each error, Run Selected Cell and All Below from the next
    code cell, until the last code cell ran. Returns the cells as read from the page."""
    run_menu(page, "Run All Cells")
    first_code = next(i for i, c in enumerate(page.evaluate(READ_CELLS)) if c["code"])
    page.wait_for_function(RAN, arg=first_code, timeout=RUN_S * 1000)
    for _ in range(cells_count):
        cells = page.evaluate(READ_CELLS)
        code = [i for i, cell in enumerate(cells) if cell["code"]]
        last_ran = max(i for i in code if ran(cells[i]["prompt"]))
        following = [i for i in code if i > last_ran]
        if not following:
            return cells
        nxt = following[0]
        page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(nxt).locator(
            ".jp-InputPrompt"
        ).click()
        run_menu(page, "Run Selected Cell and All Below")
        page.wait_for_function(RAN, arg=nxt, timeout=RUN_S * 1000)
    pytest.fail("the notebook did not reach its last cell")


def test_a_release_notebook_in_jupyterlab(lab):
    url, log = lab
    nb = release_notebook(NOTEBOOK)
    started = time.monotonic()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url)
            # the notebook is open, its kernel started and idle
            page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell")
            page.wait_for_function(KERNEL_IDLE)
            # 3. nbgrader's Validate button, in the notebook's toolbar
            validate = page.locator(".jp-NotebookPanel-toolbar .validate-button")
            validate.wait_for(state="visible")
            assert "Validate" in validate.inner_text()

            cells = run_everything(page, len(nb.cells))

            # nbgrader's Validate (its server extension runs the notebook): the dialog
            # names every test cell that fails, here all of them, each on the stub
            validate.click()
            dialog = page.locator(".jp-Dialog", has_text="Validation Results")
            dialog.wait_for(state="visible", timeout=RUN_S * 1000)
            report = dialog.inner_text()
            dialog.get_by_role("button", name="Ok").click()
        except Exception:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(log.with_name("page.png")), full_page=True)
            print(f"screenshot: {log.with_name('page.png')}; jupyter lab's log, last lines:")
            print(log.read_text()[-3000:])
            raise
        finally:
            browser.close()
    elapsed = time.monotonic() - started
    assert len(cells) == len(nb.cells), "the page does not show every cell of the notebook"

    # 1. each exercise is the stub; its test cell fails with the stub's NotImplementedError
    for exercise, test in exercises(nb):
        source = cells[exercise]["source"]
        assert "# YOUR CODE HERE" in source and STUB in source, source
        errors = "\n".join(cells[test]["errors"])
        assert "NotImplementedError" in errors and STUB in errors, (
            f"the test cell {nbgrader_meta(nb.cells[test]).get('grade_id')} shows {errors!r}"
        )
    assert exercises(nb), "the notebook has no exercise"

    # 2. figures: image outputs in the page, decoded
    images = [image for cell in cells for image in cell["images"]]
    assert images, "no figure in the page"
    assert all(done and width > 0 and height > 0 for done, width, height in images), images

    # 3. Validate reports each test cell as failed, on the exercise's NotImplementedError
    failed = report.count("The following cell failed")
    assert failed == len(graded_tests(nb)), f"Validate reports {failed} failed cells:\n{report}"
    assert report.count(STUB) >= failed, report
    print(f"{NOTEBOOK}: {len(exercises(nb))} exercises, {len(images)} figures, {elapsed:.0f} s")
