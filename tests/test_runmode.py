"""The run-mode switches: the tests' quick training and nbgrader's autograde flag."""

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
