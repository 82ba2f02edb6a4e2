"""The course sample's settings: the facts of HW8, read by every part of the package."""

import ast
import inspect
from pathlib import Path

import nbformat
import pytest

from hw8 import settings, train
from hw8.cli import build_parser


def test_sample_settings_are_the_course_samples():
    assert settings.sample_settings() == {"epochs": 50, "batch_size": 2000, "lr": 1e-3}
    assert settings.SAMPLE_SEED == 48763


def test_training_loop_and_cli_default_to_them():
    defaults = inspect.signature(train.train).parameters
    assert defaults["epochs"].default == settings.SAMPLE_EPOCHS
    assert defaults["batch_size"].default == settings.SAMPLE_BATCH_SIZE
    assert defaults["lr"].default == settings.SAMPLE_LR
    assert defaults["seed"].default == settings.SAMPLE_SEED
    args = build_parser().parse_args(["train"])
    assert args.seed == settings.SAMPLE_SEED and args.lr == settings.SAMPLE_LR


# ----------------------------------------------------------------------------- one literal

ROOT = Path(__file__).resolve().parents[1]
TRAINING_NAMES = ("epochs", "batch_size", "steps", "quick_steps", "peak_lr")


def code_to_scan() -> dict[str, str]:
    """Place -> Python source: the package (but the presets' own module), the course's
    nbgrader_config.py, and every code cell of the source notebooks."""
    found = {
        path.relative_to(ROOT).as_posix(): path.read_text()
        for path in sorted((ROOT / "hw8").rglob("*.py"))
        if path.name != "settings.py" or path.parent.name != "hw8"
    }
    found["nbgrader_config.py"] = (ROOT / "nbgrader_config.py").read_text()
    for path in sorted((ROOT / "notebooks" / "hw8").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                found[f"{path.name}:{cell.id}"] = cell.source
    return found


def preset_values(presets) -> dict[str, set]:
    """Setting name -> the values ``presets`` give it."""
    values: dict[str, set] = {name: set() for name in TRAINING_NAMES}
    for preset in presets:
        for name, value in vars(preset).items():
            if name in values:
                values[name].add(value)
    return values


ALL_PRESETS = (settings.SAMPLE, settings.STAND_IN, settings.RECIPE_TRAINING)


def second_literals(source: str, presets=ALL_PRESETS) -> list[str]:
    """Where ``source`` writes a preset's value as a literal instead of naming it (of the
    training presets, those in ``presets``)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    training = preset_values(presets)
    timeouts = {settings.CELL_TIMEOUT_S, settings.SUBMISSION_TIMEOUT_S}
    found = []

    def constant(node):
        return node.value if isinstance(node, ast.Constant) else None

    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Tuple) and sorted(map(str, map(constant, node.elts))) == sorted(
            map(str, settings.HW8_IMAGE_SHAPE)
        ):  # in any order: (64, 64, 3) or channels first
            found.append(f"{where}: the HW8 image shape {settings.HW8_IMAGE_SHAPE}")
        if isinstance(node, ast.Slice) and constant(node.upper) == settings.QUICK_TRAIN_IMAGES:
            found.append(f"{where}: [:{settings.QUICK_TRAIN_IMAGES}] (QUICK_TRAIN_IMAGES)")
        pairs = []
        if isinstance(node, ast.keyword) and node.arg:
            pairs.append((node.arg, node.value))
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            pairs += [(getattr(t, "id", getattr(t, "attr", "")), node.value) for t in targets]
        if isinstance(node, ast.Dict):
            pairs += [(constant(k), v) for k, v in zip(node.keys, node.values, strict=True)]
        for name, value in pairs:
            name = str(name or "").lower()
            for setting, values in training.items():
                if name.endswith(setting) and constant(value) in values:
                    found.append(f"{where}: {name} = {constant(value)} (a training preset)")
        if isinstance(node, ast.Constant) and node.value in timeouts:
            if "timeout" in lines[node.lineno - 1].lower():
                found.append(f"{where}: the time limit {node.value} s")
    return found


def test_presets_are_defined_once():
    """The notebooks' demonstrations and model answers choose their own training settings
    (a batch of 64 may be a choice, not the recipe's preset); the course sample's they
    must name."""
    problems = {}
    for place, source in code_to_scan().items():
        presets = (settings.SAMPLE,) if ".ipynb:" in place else ALL_PRESETS
        if found := second_literals(source, presets):
            problems[place] = found
    assert not problems, f"name the preset in hw8.settings instead of repeating it: {problems}"


@pytest.mark.parametrize(
    "source",
    [
        "shape = (64, 64, 3)",
        "shape = (3, 64, 64)",
        "x = images[:256]",
        "train(model, data, epochs=50)",
        "run(batch_size=2000)",
        "settings = {'batch_size': 100}",
        "c.Execute.timeout = 300",
        "def validate(path, timeout=300): pass",
        "fit(model, data, peak_lr=3e-3)",
    ],
)
def test_the_scan_finds_a_second_literal(source):
    assert second_literals(source)
