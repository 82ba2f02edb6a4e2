"""The offline leaderboard of notebook 05: ROC AUC of saved scores, points per baseline.

HW8 is judged on Kaggle: a submission earns a point for each baseline whose AUC it
reaches (simple, medium, strong, boss). Offline there is no Kaggle and the real test
labels are not public, so the leaderboard grades scores for the labelled bundled task
instead, against stand-in thresholds measured on that task with the same kinds of
models as the HW8 baselines (``benchmarks/calibrate_thresholds.py`` measures them and
records every run, and the thresholds, in the package data file ``hw8/data/thresholds.json``).

The scores file is the Kaggle CSV (``ID,score``, higher = more anomalous) written by
:func:`hw8.anomaly.write_submission`, one row per test image of the bundled task.

The points go to the student's own method: the package's house recipe (:mod:`hw8.house_recipe`,
the `hw8 recipe` command) is not one. The challenge cell runs ``improved_scores`` inside
:func:`without_package_recipe` (``hw8.house_recipe`` blocked), and since the autograder grades
the saved file without retraining, the graded cells also read the source of
``improved_scores`` (:func:`package_recipe_references`) and give 0 when it uses the
recipe (:func:`assert_own_method`).
"""

from __future__ import annotations

import ast
import importlib.abc
import inspect
import json
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw8.anomaly import SubmissionError, read_submission, roc_auc
from hw8.checks.forbidden import source_reader
from hw8.datasets import bundled_task
from hw8.errors import LeaderboardError
from hw8.runmode import autograding, quick_mode

LEVELS = ("simple", "medium", "strong", "boss")

# The public HW8 thresholds (Kaggle, ML 2023 Spring), for reference: they belong to the
# real face data and mean nothing on the bundled task.
HW8_THRESHOLDS = {"simple": 0.53458, "medium": 0.71931, "strong": 0.78950, "boss": 0.82221}

# Stand-in thresholds on the bundled task: for each level, the lowest test AUC its
# reference recipe reached over three training seeds, rounded down to 5 decimals (so
# running the reference recipe passes its level), with the standard error of an AUC on
# this split beside it. benchmarks/calibrate_thresholds.py measures them and writes this
# file; nothing else holds a copy.
THRESHOLDS_FILE = Path(__file__).resolve().parents[1] / "data" / "thresholds.json"


def recorded_thresholds(path: Path | str = THRESHOLDS_FILE) -> dict[str, float]:
    """The thresholds recorded by the calibration, one per level."""
    record = json.loads(Path(path).read_text())
    return {level: float(record["thresholds"][level]) for level in LEVELS}


BUNDLED_THRESHOLDS = recorded_thresholds()

POINTS_PER_LEVEL = 1
DEFAULT_SCORES_FILE = "leaderboard_scores.csv"


@dataclass(frozen=True)
class Standing:
    """Where a set of scores stands: its AUC, the levels passed and the points earned."""

    auc: float
    passed: dict[str, bool]
    points: int
    max_points: int
    thresholds: dict[str, float]

    def report(self) -> str:
        """A small table in the style of the Kaggle baselines."""
        lines = [f"ROC AUC on the bundled test split: {self.auc:.5f}"]
        for level in LEVELS:
            mark = "passed" if self.passed[level] else "not yet"
            lines.append(f"  {level:7s} baseline {self.thresholds[level]:.5f}  {mark}")
        lines.append(f"points: {self.points} / {self.max_points}")
        return "\n".join(lines)


def _check_thresholds(thresholds: dict[str, float]) -> dict[str, float]:
    missing = [level for level in LEVELS if level not in thresholds]
    if missing:
        raise ValueError(f"thresholds must name every level {LEVELS}; missing {missing}.")
    values = [float(thresholds[level]) for level in LEVELS]
    if any(not 0.0 <= v <= 1.0 for v in values) or values != sorted(values):
        raise ValueError(
            f"thresholds must lie in [0, 1] and increase from simple to boss: {values}"
        )
    return {level: float(thresholds[level]) for level in LEVELS}


def points_for_auc(
    auc: float,
    thresholds: dict[str, float] | None = None,
    points_per_level: int = POINTS_PER_LEVEL,
) -> dict[str, int]:
    """Points per level for an AUC: a level is passed when ``auc >= threshold``."""
    thresholds = _check_thresholds(thresholds or BUNDLED_THRESHOLDS)
    if not np.isfinite(auc):
        raise ValueError(f"AUC must be a finite number, found {auc}.")
    return {level: points_per_level if auc >= thresholds[level] else 0 for level in LEVELS}


def bundled_labels() -> np.ndarray:
    """The labels (1 = anomaly) of the bundled task's test split, in test-set order."""
    return bundled_task().test_labels


def read_scores(path: Path | str, expected_rows: int) -> np.ndarray:
    """Read a leaderboard scores file, with errors that say what to do about them."""
    path = Path(path)
    if not path.is_file():
        raise LeaderboardError(
            f"{path}: scores file not found. Run the challenge cell of notebook 05, which "
            f"writes it with hw8.anomaly.write_submission(scores, {str(path)!r}), and hand it "
            "in next to the notebook."
        )
    try:
        scores = read_submission(path)
    except SubmissionError as error:
        raise LeaderboardError(
            f"{error} Write the file with hw8.anomaly.write_submission(scores, path)."
        ) from error
    if len(scores) != expected_rows:
        raise LeaderboardError(
            f"{path}: expected {expected_rows} scores, one per image of the bundled test split, "
            f"found {len(scores)}. The leaderboard grades the bundled task: score "
            "leaderboard.bundled_task().test_images, not the real HW8 test set or a slice."
        )
    return scores


def standing(
    scores: np.ndarray,
    labels: np.ndarray | None = None,
    thresholds: dict[str, float] | None = None,
) -> Standing:
    """The standing of an array of scores (one per bundled test image)."""
    thresholds = _check_thresholds(thresholds or BUNDLED_THRESHOLDS)
    labels = bundled_labels() if labels is None else np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != labels.shape:
        raise LeaderboardError(
            f"expected {labels.shape[0]} scores, one per image of the bundled test split, "
            f"found shape {scores.shape}."
        )
    try:
        auc = roc_auc(labels, scores)
    except SubmissionError as error:
        raise LeaderboardError(str(error)) from error
    points = points_for_auc(auc, thresholds)
    return Standing(
        auc=auc,
        passed={level: points[level] > 0 for level in LEVELS},
        points=sum(points.values()),
        max_points=POINTS_PER_LEVEL * len(LEVELS),
        thresholds=thresholds,
    )


def grade_file(
    path: Path | str = DEFAULT_SCORES_FILE,
    labels: np.ndarray | None = None,
    thresholds: dict[str, float] | None = None,
) -> Standing:
    """Read a scores file and return its standing on the bundled test split."""
    labels = bundled_labels() if labels is None else np.asarray(labels)
    return standing(read_scores(path, len(labels)), labels, thresholds)


def assert_level(
    level: str,
    path: Path | str = DEFAULT_SCORES_FILE,
    labels: np.ndarray | None = None,
    thresholds: dict[str, float] | None = None,
    *,
    method: Callable | None = None,
) -> Standing:
    """For a graded test cell: fail, in plain words, unless the file reaches ``level``.

    ``method`` is the student's ``improved_scores``: when given, it must be the student's
    own (:func:`assert_own_method`), or no level counts. The file must always exist and be
    well formed. With ``$HW8_QUICK=1`` (the switch the course's tests set to cut training
    short) an AUC below the threshold is reported but not failed, since the thresholds
    were measured on full training; never while nbgrader autogrades
    (``$NBGRADER_EXECUTION=autograde``), so the switch earns a student nothing.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}.")
    if method is not None:
        assert_own_method(method, verbose=False)
    try:
        result = grade_file(path, labels, thresholds)
    except LeaderboardError as error:
        raise AssertionError(str(error)) from error
    if not result.passed[level] and quick_mode() and not autograding():
        print(
            f"HW8_QUICK=1 (the course's test switch: training cut short): AUC "
            f"{result.auc:.5f} is below the {level} baseline {result.thresholds[level]:.5f}, "
            "which was measured on full training; not held against it in quick mode."
        )
        return result
    if not result.passed[level]:
        raise AssertionError(
            f"Your saved scores reach ROC AUC {result.auc:.5f} on the bundled test split; the "
            f"{level} baseline needs {result.thresholds[level]:.5f}. Improve the model (see the "
            "ideas in the challenge section), run the challenge cell again and save the scores."
        )
    print(f"OK  {level} baseline passed: AUC {result.auc:.5f} >= {result.thresholds[level]:.5f}")
    return result


# ----------------------------------------------------------------------------- own method

PACKAGE_RECIPE = "hw8.house_recipe"
RECIPE_TOKEN = PACKAGE_RECIPE.rsplit(".", 1)[1]  # the name a reference to it carries
RECIPE_MESSAGE = (
    "the leaderboard's points are for your own method, and hw8.house_recipe is the package's "
    "recipe (the `hw8 recipe` command): write improved_scores with hw8.models, hw8.train and "
    "hw8.anomaly instead (see the ideas in the challenge section)."
)


def _is_recipe_object(value) -> bool:
    """True for ``hw8.house_recipe`` itself and anything defined in it."""
    try:
        if isinstance(value, types.ModuleType):
            name = value.__name__
        else:
            name = getattr(value, "__module__", None)
    except Exception:  # an object whose attribute lookup misbehaves is not the recipe
        return False
    return isinstance(name, str) and (
        name == PACKAGE_RECIPE or name.startswith(PACKAGE_RECIPE + ".")
    )


def _mentions_recipe(tree: ast.AST) -> list[str]:
    """What in a syntax tree refers to the recipe (``RECIPE_TOKEN``): names, attributes,
    imports, import strings."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == RECIPE_TOKEN:
            found.append(f"the name `{RECIPE_TOKEN}`")
        elif isinstance(node, ast.Attribute) and node.attr == RECIPE_TOKEN:
            found.append(f"`.{RECIPE_TOKEN}`")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if isinstance(node, ast.ImportFrom):
                names = [f"{node.module or ''}.{name}" for name in names] + [node.module or ""]
            found += [f"import {name}" for name in names if RECIPE_TOKEN in name.split(".")]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if PACKAGE_RECIPE in node.value:
                found.append(f"the string {node.value!r}")
    return found


def _code_mentions_recipe(code: types.CodeType) -> list[str]:
    """What a code object (and the functions defined in it) names the recipe: global or
    attribute names, imports, and strings naming ``hw8.house_recipe``."""
    found = []
    if any(RECIPE_TOKEN in name.split(".") for name in code.co_names):  # `import hw8.x` too
        found.append(f"the name `{RECIPE_TOKEN}`")
    for constant in code.co_consts:
        if isinstance(constant, str) and PACKAGE_RECIPE in constant:
            found.append(f"the string {constant!r}")
        elif isinstance(constant, types.CodeType):
            found.extend(_code_mentions_recipe(constant))
    return found


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _global_names(constant)
    return names


def package_recipe_references(function: Callable) -> list[str]:
    """Where ``function`` (and the notebook functions it calls) uses ``hw8.house_recipe``.

    Reads the source (``inspect.getsource`` works for functions defined in notebook
    cells) and looks for any reference to the recipe: a name, an attribute, an import, an
    import by string; reads the compiled code for the same (so a function whose source
    is out of reach is checked too); follows the global names it uses into the
    notebook's own functions and classes; and flags a global bound to ``hw8.house_recipe`` or to
    anything defined there. Returns one line per finding, empty when there is none.
    """
    reader = source_reader()
    read = reader.recipe_references(function) if reader is not None else None
    if read is not None:  # the grader: the function runs elsewhere, its source is read
        return read
    findings: list[str] = []
    seen: set[int] = set()
    home = getattr(function, "__module__", None)  # the notebook's functions live there

    def visit(obj, label: str) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, type):  # a class of the notebook: check its methods
            for value in vars(obj).values():
                value = getattr(value, "__func__", getattr(value, "fget", value))
                if isinstance(value, types.FunctionType):
                    visit(value, f"{obj.__name__}.{value.__name__} (used by {label})")
            return
        obj = inspect.unwrap(obj)
        code = getattr(obj, "__code__", None)
        if not isinstance(code, types.CodeType):
            findings.append(f"{label} is not a Python function, so it cannot be checked")
            return
        found = _code_mentions_recipe(code)
        names = _global_names(code)
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
        except (OSError, TypeError, SyntaxError):
            tree = None  # the compiled code was read above
        if tree is not None:
            found += _mentions_recipe(tree)
            names |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        findings.extend(f"{label} uses {what}" for what in dict.fromkeys(found))
        namespace = obj.__globals__
        for name in sorted(names):
            value = namespace.get(name)
            if value is None:
                continue
            if _is_recipe_object(value):
                findings.append(f"{label} uses `{name}`, which comes from hw8.house_recipe")
            elif isinstance(value, types.FunctionType | type) and value.__module__ == home:
                visit(value, f"{name} (used by {label})")

    visit(function, getattr(function, "__name__", "the method"))
    return findings


def assert_own_method(method: Callable, *, verbose: bool = True) -> None:
    """For a graded test cell: fail unless ``method`` (``improved_scores``) avoids the
    package's recipe (``PACKAGE_RECIPE``)."""
    if not callable(method):
        raise AssertionError(
            f"improved_scores should be a function, found {type(method).__name__}."
        )
    findings = package_recipe_references(method)
    if findings:
        raise AssertionError(
            "No leaderboard points: "
            + "; ".join(findings)
            + ". "
            + RECIPE_MESSAGE[0].upper()
            + RECIPE_MESSAGE[1:]
        )
    if verbose:
        name = getattr(method, "__name__", "the method")
        print(f"OK  {name} is your own (no {PACKAGE_RECIPE} in it)")


class _BlockRecipeImport(importlib.abc.MetaPathFinder):
    """A finder that refuses to import ``hw8.house_recipe`` (and its submodules)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == PACKAGE_RECIPE or fullname.startswith(PACKAGE_RECIPE + "."):
            raise ImportError(f"{PACKAGE_RECIPE} is blocked in the challenge: {RECIPE_MESSAGE}")
        return None


class _BlockedRecipe(types.ModuleType):
    """Stands in for ``hw8.house_recipe`` while blocked: every attribute raises."""

    def __getattr__(self, name):
        raise AssertionError(
            f"{PACKAGE_RECIPE}.{name} is blocked in the challenge: {RECIPE_MESSAGE}"
        )


def _recipe_stub(name: str):
    def blocked(*args, **kwargs):
        raise AssertionError(
            f"{PACKAGE_RECIPE}.{name} is blocked in the challenge: {RECIPE_MESSAGE}"
        )

    blocked.__name__ = name
    return blocked


@contextmanager
def without_package_recipe(namespace: dict | None = None) -> Iterator[None]:
    """Run the ``with`` block with ``hw8.house_recipe`` blocked; everything is restored afterwards.

    ``import hw8.house_recipe`` (and ``from hw8 import house_recipe``) raise ``ImportError``; the
    functions and classes of an already imported ``hw8.house_recipe`` are replaced by stubs that
    raise ``AssertionError``; and so are the names in ``namespace`` (the notebook's
    globals) bound to ``hw8.house_recipe`` or to anything defined in it.
    """
    import hw8

    finder = _BlockRecipeImport()
    module = sys.modules.get(PACKAGE_RECIPE)
    saved_attrs: dict[str, object] = {}
    saved_names: dict[str, object] = {}
    had_attr = hasattr(hw8, RECIPE_TOKEN)
    parent_attr = getattr(hw8, RECIPE_TOKEN, None)
    sys.meta_path.insert(0, finder)
    try:
        if module is not None:
            for name, value in list(vars(module).items()):
                if callable(value) and _is_recipe_object(value):
                    saved_attrs[name] = value
                    setattr(module, name, _recipe_stub(name))
            del sys.modules[PACKAGE_RECIPE]
        if had_attr:
            delattr(hw8, RECIPE_TOKEN)
        if namespace is not None:
            for name, value in list(namespace.items()):
                if _is_recipe_object(value) or value is module and module is not None:
                    saved_names[name] = value
                    namespace[name] = (
                        _BlockedRecipe(PACKAGE_RECIPE)
                        if isinstance(value, types.ModuleType)
                        else _recipe_stub(getattr(value, "__name__", name))
                    )
        yield
    finally:
        sys.meta_path.remove(finder)
        if module is not None:
            for name, value in saved_attrs.items():
                setattr(module, name, value)
            sys.modules[PACKAGE_RECIPE] = module
        if had_attr:
            setattr(hw8, RECIPE_TOKEN, parent_attr)
        elif hasattr(hw8, RECIPE_TOKEN):
            delattr(hw8, RECIPE_TOKEN)
        if namespace is not None:
            namespace.update(saved_names)
