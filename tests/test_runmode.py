"""The run-mode switches: the tests' quick training and nbgrader's autograde flag."""

from pathlib import Path

import pytest

from hw8 import runmode


def test_quick_switch(monkeypatch):
    monkeypatch.delenv(runmode.QUICK_ENV, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert runmode.scaled_epochs(30) == 30 and runmode.quick_slice(5000) == 5000
    assert not runmode.quick_mode()
    monkeypatch.setenv(runmode.QUICK_ENV, "1")
    assert runmode.scaled_epochs(30) == 1 and runmode.quick_slice(5000) == 256
    assert runmode.quick_slice(100) == 100


def test_autograding_follows_nbgrader(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not runmode.autograding()
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    assert not runmode.autograding()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert runmode.autograding()


def test_autograding_trains_briefly_too(monkeypatch):
    monkeypatch.delenv(runmode.QUICK_ENV, raising=False)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert runmode.short_training() and not runmode.quick_mode()
    assert runmode.scaled_epochs(30) == 1 and runmode.quick_slice(5000) == 256


def test_unmet_requirements_name_the_version_and_the_fix(monkeypatch):
    from importlib import metadata

    from hw8 import runmode

    declared = ["torch>=2.11", "tqdm>=4.63.0", 'pytest>=9.2.0; extra == "dev"']
    installed = {"torch": "2.10.0+cu126"}

    def version(name):
        if name not in installed:
            raise metadata.PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr(metadata, "requires", lambda name: declared)
    monkeypatch.setattr(metadata, "version", version)
    assert runmode.unmet_requirements() == [
        "torch>=2.11 (this runtime has 2.10.0+cu126)",
        "tqdm>=4.63.0 (not installed)",
    ]
    with pytest.raises(RuntimeError, match=r"%pip install 'torch>=2.11' 'tqdm>=4.63.0'"):
        runmode.describe_runtime()
    installed.update(torch="2.11.0+cu128", tqdm="4.67.1")
    assert runmode.unmet_requirements() == []


def test_the_installed_hw8_meets_its_requirements():
    from hw8 import runmode

    assert runmode.unmet_requirements() == []
    assert runmode.describe_runtime().startswith("hw8 ")


# ----------------------------------------------------------------------------- the install cell


def fake_runtime(monkeypatch, declared: list[str], installed: dict[str, str]):
    """hw8's metadata declaring ``declared``, with ``installed`` the versions found."""
    from importlib import metadata

    def version(name):
        if name not in installed:
            raise metadata.PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr(metadata, "requires", lambda name: declared)
    monkeypatch.setattr(metadata, "version", version)


def test_runmode_imports_with_the_standard_library_alone():
    """The install cell imports hw8.runmode right after ``pip install --no-deps``: nothing
    else of hw8's may be installed yet, packaging included."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "for name in ('packaging', 'numpy', 'torch', 'tqdm', 'scipy', 'sklearn', 'matplotlib'):\n"
        "    sys.modules[name] = None\n"
        "before = set(sys.modules)\n"
        "import hw8.runmode\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'hw8'}))\n"
        "print(hw8.runmode.requirement_status(['pip>=1', 'no-such-hw8-package>=1']))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "(['no-such-hw8-package>=1'], [])"]


def test_only_missing_requirements_are_installed_and_every_installed_package_is_pinned(
    monkeypatch, capsys
):
    import subprocess

    declared = ["torch>=2.11", "numpy>=2.0.0", "scipy>=1.13.0", "tqdm>=4.63.0"]
    installed = {"torch": "2.13.0", "numpy": "2.1.3"}
    fake_runtime(monkeypatch, declared, installed)
    calls = []

    def pip(command, **kwargs):
        constraints = Path(command[command.index("-c") + 1]).read_text().split()
        calls.append((command, constraints))
        installed.update(scipy="1.15.3", tqdm="4.67.1")  # what pip would have done
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", pip)
    assert runmode.install_missing_requirements() == ["scipy>=1.13.0", "tqdm>=4.63.0"]
    ((command, constraints),) = calls
    assert command[1:4] == ["-m", "pip", "install"]
    assert command[-2:] == ["scipy>=1.13.0", "tqdm>=4.63.0"]  # the missing ones, nothing else
    assert constraints == runmode.installed_pins()
    assert all("==" in pin for pin in constraints) and len(constraints) > 10
    assert "no installed package changes" in capsys.readouterr().out
    calls.clear()
    assert runmode.install_missing_requirements() == [] and not calls  # all there: no pip


def test_what_cannot_be_installed_without_moving_a_package_is_one_line(monkeypatch):
    import subprocess

    def one_line(error: runmode.RequirementsError) -> str:
        (line,) = error._render_traceback_()  # how IPython shows it: that line, no traceback
        assert "\n" not in line
        return line

    fake_runtime(monkeypatch, ["torch>=2.11", "scipy>=1.13.0"], {"torch": "2.10.0"})
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    with pytest.raises(runmode.RequirementsError) as wrong:
        runmode.prepare_runtime()
    assert "torch>=2.11 (this runtime has 2.10.0)" in one_line(wrong.value)
    assert "%pip install 'torch>=2.11' 'scipy>=1.13.0'" in one_line(wrong.value)

    fake_runtime(monkeypatch, ["torch>=2.11", "scipy>=1.13.0"], {})
    with pytest.raises(runmode.RequirementsError, match="pytorch.org") as no_torch:
        runmode.install_missing_requirements()
    one_line(no_torch.value)

    fake_runtime(monkeypatch, ["torch>=2.11", "scipy>=1.13.0"], {"torch": "2.13.0"})
    monkeypatch.setattr(subprocess, "run", lambda c, **k: subprocess.CompletedProcess(c, 1))
    with pytest.raises(runmode.RequirementsError, match="pip could not install") as failed:
        runmode.install_missing_requirements()
    assert "%pip install 'scipy>=1.13.0'" in one_line(failed.value)


@pytest.mark.slow
def test_a_real_pip_installs_the_missing_package_and_moves_nothing(tmp_path):
    """In a throwaway virtual environment with an old traitlets preinstalled: a plain
    ``pip install jupyter-core`` would upgrade traitlets (the newest jupyter-core needs a
    newer one); install_missing_requirements installs a jupyter-core that fits instead."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "scripts"))
    from lock import freeze

    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if subprocess.run([*pip, "traitlets==5.0.5"], capture_output=True).returncode:
        pytest.skip("no package index reachable")
    plain = subprocess.run(
        [*pip[:-2], "--dry-run", "jupyter-core>=4.6"], capture_output=True, text=True
    ).stdout
    assert "traitlets" in plain, plain  # the control: unpinned, pip would move traitlets
    before = freeze(python)
    code = (
        f"import sys; sys.path.insert(0, {str(root)!r})\n"
        "from hw8 import runmode\n"
        "print(runmode.install_missing_requirements(['traitlets>=5.0', 'jupyter-core>=4.6']))\n"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "['jupyter-core>=4.6']"
    after = freeze(python)
    assert {name: after[name] for name in before} == before  # nothing preinstalled moved
    assert "jupyter-core" in after


# ----------------------------------------------------------------------------- progress bars


def test_a_bar_in_a_log_writes_a_few_lines_not_one_per_step(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "w") as stream:
        bar = runmode.progress_bar(total=1000, file=stream, desc="train", mininterval=0)
        for step in range(1000):
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{1 / (step + 1):.4f}")  # never prints by itself
        bar.close()
    updates = log.read_text().replace("\r", "\n").strip().splitlines()
    assert 2 <= len(updates) <= runmode.PROGRESS_LINES + 2, updates
    assert "1000/1000" in updates[-1]


def test_a_bar_in_a_terminal_is_tqdms_own(monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    bar = runmode.progress_bar(total=1000, file=Terminal())
    assert bar.miniters == 0 and bar.mininterval == 0.1  # tqdm's defaults: a live bar
    bar.close()
    assert not runmode.notebook_widgets()  # no Jupyter kernel here


def test_tqdms_ipywidgets_warning_is_silenced():
    """Once hw8.runmode is imported (the install cell does it first), tqdm.auto's advice
    to update jupyter and ipywidgets never shows."""
    import subprocess
    import sys

    probe = (
        "import warnings\n"
        "import hw8.runmode\n"
        "from tqdm import TqdmWarning\n"
        "warnings.warn('IProgress not found. Please update jupyter and ipywidgets.', "
        "TqdmWarning)\n"
        "warnings.warn('another warning')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "IProgress" not in result.stderr and "another warning" in result.stderr


@pytest.mark.slow
def test_a_notebook_without_ipywidgets_shows_no_warning_and_a_few_lines(tmp_path):
    """A kernel where ipywidgets cannot be imported (as on a bare Jupyter), opened as every
    notebook opens (the install cell): training and the house recipe's module (which
    imports tqdm.auto) print no TqdmWarning, and a 400-step bar a few lines."""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(
        cells=[
            new_code_cell(
                "import sys\n"
                "sys.modules['ipywidgets'] = None\n"
                "from hw8.runmode import prepare_runtime\n"  # what each install cell does
                "print(prepare_runtime())"
            ),
            new_code_cell(
                "import hw8.house_recipe\n"
                "from hw8 import train\n"
                "from hw8.datasets import load_bundled\n"
                "from hw8.models import build_model\n"
                "model = build_model('fcn', (1, 28, 28))\n"
                "train.train(model, load_bundled().train_images[:2000], epochs=2, "
                "batch_size=10, device='cpu')"
            ),
        ]
    )
    NotebookClient(nb, timeout=300, kernel_name="python3").execute(cwd=str(tmp_path))
    outputs = nb.cells[1].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "IProgress" not in text and "Warning" not in text, text
    assert not [o for o in outputs if o.output_type == "error"]
    lines = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
    assert 2 <= len(lines) <= runmode.PROGRESS_LINES + 2 and "400/400" in lines[-1], lines
