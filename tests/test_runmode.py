"""The run-mode switches: the tests' quick training and nbgrader's autograde flag."""

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
