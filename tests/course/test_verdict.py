"""The grader's verdicts (hw8.course.verdict) on small notebooks built here.

Each test builds an instructor notebook (locked cells, solutions, tests with hidden parts)
and a submission, and grades it as ``hw8 course grade`` does, without the sandbox: the
tests run in this process, the student's code in a child process that only answers with
data. The attacks here are the ones that reached the verdicts when they were made in the
student's own process; each is kept as a test.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hw8.course import wire
from hw8.course.verdict import Child, decide, notebook_request

SETUP = (
    "import torch\nimport torch.nn.functional as F\nfrom hw8.checks import assertions\nSCALE = 3.0"
)
TEST_MSE = """
_a, _b = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
assertions.check_on_devices(
    mse_loss, lambda device, dtype: (_a.to(device, dtype), _b.to(device, dtype)),
    name="mse_loss", reference=F.mse_loss, dtypes=(torch.float64,),
    forbidden={F.mse_loss: "torch.nn.functional.mse_loss"}, advice="square and average.",
)
### BEGIN HIDDEN TESTS
_x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
_y = torch.randn(3, 2, dtype=torch.float64)
mse_loss(_x, _y).backward()
assertions.assert_close(_x.grad, 2 * (_x.detach() - _y) / 6, name="the gradient (secret 8675309)")
### END HIDDEN TESTS
"""
TEST_SCALED = "assert scaled(2.0) == 2.0 * SCALE, 'scaled(2) should be 2 * SCALE'"
GOOD = {
    "mse": "def mse_loss(x_hat, x):\n    return (x_hat - x).pow(2).mean()",
    "scaled": "def scaled(v):\n    return v * SCALE",
}


def cell(source, grade_id=None, *, role="student", points=1, tags=()):
    meta = {}
    if grade_id:
        meta = {
            "grade_id": grade_id,
            "grade": role == "test",
            "solution": role == "solution",
            "locked": role in ("test", "locked"),
        }
        if role == "test":
            meta["points"] = points
    metadata = {"nbgrader": meta} if meta else {}
    if tags:
        metadata["tags"] = list(tags)
    return {"cell_type": "code", "metadata": metadata, "source": source, "outputs": []}


def instructor(mse=GOOD["mse"], scaled=GOOD["scaled"], extra=()) -> dict:
    return {
        "cells": [
            cell(SETUP, "setup", role="locked"),
            cell(mse, "solution-mse", role="solution"),
            cell(TEST_MSE, "test-mse", role="test", points=2),
            *extra,
            cell(scaled, "solution-scaled", role="solution"),
            cell(TEST_SCALED, "test-scaled", role="test"),
        ]
    }


def grade(
    tmp_path: Path, submitted: dict, teacher: dict | None = None, timeout=20, files=None
) -> dict:
    """Verdicts and flags of ``submitted`` against ``teacher`` (default: instructor());
    ``files`` (name -> text) are handed in beside the notebook."""
    teacher = teacher or instructor()
    trusted, child_root = tmp_path / "trusted", tmp_path / "child"
    trusted.mkdir(exist_ok=True)
    (child_root / "work").mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (trusted / name).write_text(text)
        (child_root / "work" / name).write_text(text)
    env = dict(os.environ, NBGRADER_EXECUTION="autograde", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "hw8.course.responder", str(child_root / "work")]
    child = Child(command, str(child_root), env)
    here = Path.cwd()
    os.chdir(trusted)
    try:
        request = notebook_request(teacher, submitted)
        result = decide(request, child, timeout, trusted)
    finally:
        os.chdir(here)
    return result


def passed(result: dict) -> dict:
    return {grade_id: verdict[0] for grade_id, verdict in result["verdicts"].items()}


def submission(mse=GOOD["mse"], scaled=GOOD["scaled"], after_mse=()) -> dict:
    nb = instructor(mse, scaled)
    for index, extra in enumerate(after_mse):
        nb["cells"].insert(2 + index, cell(extra))
    return nb


def test_an_honest_answer_passes_and_a_wrong_one_fails(tmp_path):
    assert passed(grade(tmp_path, submission())) == {"test-mse": True, "test-scaled": True}
    wrong = submission(mse="def mse_loss(x_hat, x):\n    return (x_hat - x).pow(2).sum()")
    assert passed(grade(tmp_path, wrong)) == {"test-mse": False, "test-scaled": True}


def test_gradients_flow_through_the_wire(tmp_path):
    """A loss that detaches its input fails the hidden gradient check."""
    detached = "def mse_loss(x_hat, x):\n    return (x_hat.detach() - x).pow(2).mean()"
    result = grade(tmp_path, submission(mse=detached))
    assert passed(result)["test-mse"] is False


def test_a_hidden_failure_says_only_its_first_line(tmp_path):
    leaky = (
        "def mse_loss(x_hat, x):\n"
        "    if x_hat.requires_grad:\n"
        "        raise ValueError(f'hidden input: {x_hat.tolist()}')\n"
        "    return (x_hat - x).pow(2).mean()"
    )
    message = grade(tmp_path, submission(mse=leaky))["verdicts"]["test-mse"][1]
    assert message == "a hidden test failed: your code raised ValueError"
    wrong_grad = (
        "def mse_loss(x_hat, x):\n    return (x_hat - x).pow(2).mean().detach() + 0 * x_hat.sum()"
    )
    message = grade(tmp_path, submission(mse=wrong_grad))["verdicts"]["test-mse"][1]
    assert message.startswith("a hidden test failed: AssertionError: the gradient (secret 8675309)")
    assert "\n" not in message


def test_the_forbidden_function_is_found_in_the_source(tmp_path):
    routes = [
        "def mse_loss(x_hat, x):\n    return F.mse_loss(x_hat, x)",
        "from torch.nn.functional import mse_loss as m\n\ndef mse_loss(a, b):\n    return m(a, b)",
        "def helper(a, b):\n    return torch.nn.functional.mse_loss(a, b)\n\n"
        "def mse_loss(a, b):\n    return helper(a, b)",
    ]
    for route in routes:
        result = grade(tmp_path, submission(mse=route))
        assert result["verdicts"]["test-mse"] == [
            False,
            "AssertionError: this exercise must not use torch.nn.functional.mse_loss: "
            "square and average.",
        ], route


def test_what_reading_cannot_decide_is_flagged_not_failed(tmp_path):
    hidden = "def mse_loss(x_hat, x):\n    return getattr(F, 'mse' + '_loss')(x_hat, x)"
    result = grade(tmp_path, submission(mse=hidden))
    assert passed(result)["test-mse"] is True
    assert any("getattr()" in flag for flag in result["flags"]), result["flags"]


def test_a_local_variable_named_like_a_forbidden_function_is_fine(tmp_path):
    local = "def mse_loss(x_hat, x):\n    mse_loss = (x_hat - x).pow(2)\n    return mse_loss.mean()"
    assert passed(grade(tmp_path, submission(mse=local)))["test-mse"] is True


def test_tampering_in_the_students_process_changes_nothing(tmp_path):
    """Patching the checks, torch's references and the comparisons where the student's
    code runs: the tests run elsewhere."""
    wrong = "def mse_loss(x_hat, x):\n    return (x_hat - x).pow(2).sum()"
    tamper = (
        "import hw8.checks.assertions, numpy\n"
        "kit = hw8.checks.assertions\n"
        "kit.check_on_devices = kit.assert_close = lambda *a, **k: None\n"
        "torch.nn.functional.mse_loss = lambda a, b: (a - b).pow(2).sum()\n"
        "torch.allclose = torch.equal = lambda *a, **k: True\n"
        "numpy.max = lambda *a, **k: 0.0\n"
        "SCALE = 100.0"
    )
    result = grade(tmp_path, submission(mse=wrong, after_mse=[tamper]))
    assert passed(result)["test-mse"] is False
    # the student's SCALE = 100 changes their own scaled(); the test's SCALE is the
    # instructor's 3.0 (names instructor cells define are never read from the student)
    assert passed(result)["test-scaled"] is False


def test_a_hanging_function_loses_its_test_only(tmp_path):
    hang = "def mse_loss(x_hat, x):\n    while True:\n        pass"
    result = grade(tmp_path, submission(mse=hang), timeout=5)
    assert result["verdicts"]["test-mse"][0] is False
    assert "time limit" in result["verdicts"]["test-mse"][1]
    assert passed(result)["test-scaled"] is True


def test_a_process_that_ends_itself_loses_its_test_only(tmp_path):
    crash = "def mse_loss(x_hat, x):\n    import os\n    os._exit(3)"
    result = grade(tmp_path, submission(mse=crash))
    assert passed(result) == {"test-mse": False, "test-scaled": True}


def test_a_variable_of_a_demonstration_can_be_used(tmp_path):
    demo = cell("DEMO_VALUE = 7.0", "demo", role="locked", tags=["skip-recheck"])
    teacher = instructor(extra=[demo])
    nb = instructor(extra=[demo])
    nb["cells"][-2] = cell(
        "print(DEMO_VALUE)\n\ndef scaled(v):\n    return v * SCALE",
        "solution-scaled",
        role="solution",
    )
    assert passed(grade(tmp_path, nb, teacher)) == {"test-mse": True, "test-scaled": True}


def test_a_deleted_test_cell_scores_nothing(tmp_path):
    nb = submission()
    nb["cells"] = [
        c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") != "test-scaled"
    ]
    result = grade(tmp_path, nb)
    assert result["verdicts"]["test-scaled"] == [
        False,
        "this test cell is missing from your notebook",
    ]


def test_files_written_by_the_students_code_are_read_but_links_are_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the instructor's secret")
    writer = cell(
        "from pathlib import Path\n"
        f"Path('link.txt').symlink_to({str(secret)!r})\n"
        "def scaled(v):\n    Path('out.txt').write_text(str(v))\n    return v * SCALE",
        "solution-scaled",
        role="solution",
    )
    test = cell(
        "scaled(2.0)\nfrom pathlib import Path\nassert Path('out.txt').read_text() == '2.0'\n"
        "assert not Path('link.txt').exists()",
        "test-scaled",
        role="test",
    )
    teacher = instructor()
    teacher["cells"][-1] = test
    nb = instructor()
    nb["cells"][-2:] = [writer, test]
    assert passed(grade(tmp_path, nb, teacher))["test-scaled"] is True


# ----------------------------------------------------------------------------- the wire


def test_values_cross_the_wire_as_data():
    end = wire.Endpoint("grader", None, None)
    buffers: list = []
    value = {
        "t": torch.arange(6.0).reshape(2, 3).requires_grad_(),
        "a": np.arange(4, dtype=np.int16),
        "s": (torch.Size([2, 3]), torch.float64, torch.device("cpu"), None, 1.5, "x"),
        "m": torch.empty(2, 2, device="meta"),
        "g": torch.Generator().manual_seed(3),
    }
    data = json.loads(json.dumps(end.encode(value, buffers)))
    back = end.decode(data, [memoryview(b) for b in buffers])
    assert torch.equal(back["t"].detach(), value["t"].detach()) and back["t"].requires_grad
    assert back["a"].dtype == np.int16 and np.array_equal(back["a"], value["a"])
    assert back["s"] == value["s"] and back["m"].device.type == "meta"
    assert torch.equal(torch.rand(3, generator=back["g"]), torch.rand(3, generator=value["g"]))


@pytest.mark.parametrize(
    "data",
    [
        {"$ndarray": ["|O", [1], 0]},  # object arrays carry code (pickles): refused
        {
            "$tensor": {"dtype": "float32", "shape": [4], "device": "cpu", "buffer": 0}
        },  # 4 bytes, not 16
        {"$data": ["os.system", {}]},  # only hw8's data classes are rebuilt
        {"$ref": ["peer", 99]},  # an object this side never sent
        {"$unknown": 1},
    ],
)
def test_malformed_values_are_refused(data):
    end = wire.Endpoint("grader", None, None)
    with pytest.raises((ValueError, KeyError, TypeError)):
        end.decode(data, [memoryview(b"\0" * 4)])


def test_the_grader_answers_only_public_reads_of_what_it_handed_over():
    from hw8.course.verdict import Grader

    grader = Grader(None, None, session=None)

    class Stand(torch.nn.Module):
        def reconstruct(self, x):
            return x

    stand = Stand()
    assert grader.allow("getattr", {"target": stand, "name": "reconstruct"})
    assert grader.allow("getattr", {"target": stand, "name": "parameters"})
    for name in ("__class__", "_parameters", "__globals__", "apply", "register_forward_hook"):
        assert not grader.allow("getattr", {"target": stand, "name": name}), name
    assert not grader.allow("getattr", {"target": os, "name": "system"})
    assert not grader.allow("setattr", {"target": stand, "name": "training", "value": True})
    assert not grader.allow("run", {"source": "import os"})


def test_a_tensor_drawn_on_the_cpu_and_moved_is_flagged(tmp_path):
    """Not graded on a CPU-only grader (the meta device sees the moved tensor), but
    flagged for a person: see the README's grader section."""
    moved = (
        "def mse_loss(x_hat, x):\n"
        "    w = torch.ones(x.shape).to(x.device)\n"
        "    return ((x_hat - x) * w).pow(2).mean()"
    )
    result = grade(tmp_path, submission(mse=moved))
    assert passed(result)["test-mse"] is True
    assert any("moves tensors between devices (.to(device))" in f for f in result["flags"])


def test_modules_handed_in_beside_the_notebook_are_never_imported_by_the_grader(tmp_path):
    """The grader process runs its tests in a copy of the submission's folder: a
    ``torch.py`` or ``hw8/`` there must not replace the real ones in the grader."""
    from hw8.course.verdict import read_verdicts, run_verdicts

    folder, scratch, child_root = tmp_path / "folder", tmp_path / "scratch", tmp_path / "child"
    for path in (folder / "hw8", scratch, child_root / "work"):
        path.mkdir(parents=True)
    marker = tmp_path / "imported"
    payload = f"open({str(marker)!r}, 'w').write('yes')\n"
    for module in ("torch.py", "numpy.py", "sklearn.py", "hw8/__init__.py", "hw8/course.py"):
        (folder / module).write_text(payload)
    env = dict(os.environ, NBGRADER_EXECUTION="autograde", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "hw8.course.responder", str(child_root / "work")]
    request = {
        "notebooks": {"nb": notebook_request(instructor(), submission())},
        "child": {"command": command, "cwd": str(child_root), "env": env},
        "timeout": 20,
    }
    process = run_verdicts(request, folder, scratch)
    assert process.wait(timeout=120) == 0, (scratch / "verdict.log").read_text()[-2000:]
    verdicts = read_verdicts(scratch)["nb"]["verdicts"]
    assert verdicts == {"test-mse": [True, ""], "test-scaled": [True, ""]}
    assert not marker.exists()


def test_a_helper_module_handed_in_is_read_too(tmp_path):
    """A correct answer in a module of the student's own passes; the forbidden function
    in such a module fails as it would in the notebook."""
    own = "def mean_square(a, b):\n    return (a - b).pow(2).mean()\n"
    route = (
        "import torch.nn.functional as G\n\ndef mean_square(a, b):\n    return G.mse_loss(a, b)\n"
    )
    answer = (
        "from helper import mean_square\n\n"
        "def mse_loss(x_hat, x):\n    return mean_square(x_hat, x)"
    )
    for text, expected in ((own, True), (route, False)):
        result = grade(tmp_path, submission(mse=answer), files={"helper.py": text})
        assert passed(result)["test-mse"] is expected, result
