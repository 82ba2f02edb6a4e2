import json
import re
import subprocess
import sys

import numpy as np
import pytest

from hw8 import anomaly, datasets
from hw8.cli import MEMORY_LIMIT_DEFAULT, build_parser, main
from hw8.settings import DATASET_NAMES


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_then_predict_writes_a_valid_submission(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = _run(
        capsys,
        "train",
        "--model",
        "cnn",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--normal-class",
        "1",
        "--out",
        out,
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "cnn" and metrics["epochs"] == 2
    assert 0.5 < metrics["auc"] <= 1.0
    for name in ("checkpoint.pt", "prediction.csv", "loss.png", "reconstructions.png", "roc.png"):
        assert (out / name).is_file(), name
    task = datasets.load_task("bundled", normal_classes=(1,))
    scores = anomaly.read_submission(out / "prediction.csv", expected_rows=len(task.test_images))
    assert anomaly.roc_auc(task.test_labels, scores) == pytest.approx(metrics["auc"])

    csv = tmp_path / "again.csv"
    code, stdout, _ = _run(
        capsys,
        "predict",
        "--checkpoint",
        out / "checkpoint.pt",
        "--normal-class",
        "1",
        "--device",
        "cpu",
        "--out",
        csv,
    )
    assert code == 0
    np.testing.assert_allclose(anomaly.read_submission(csv), scores, rtol=1e-6)


def test_export_load_train_predict_round_trip_in_hw8_format(tmp_path, capsys):
    data_dir = tmp_path / "hw8data"
    assert _run(capsys, "data", "export-hw8", data_dir, "--normal-class", "7")[0] == 0
    train = np.load(data_dir / "trainingset.npy")
    test = np.load(data_dir / "testingset.npy")
    assert train.shape == (1000, 64, 64, 3) and test.shape == (400, 64, 64, 3)
    assert train.dtype == np.uint8
    # a smaller slice keeps the 64x64x3 training fast
    np.save(data_dir / "trainingset.npy", train[:200])
    out = tmp_path / "run"
    code, _, err = _run(
        capsys,
        "train",
        "--model",
        "fcn",
        "--data",
        "hw8",
        "--data-dir",
        data_dir,
        "--epochs",
        "1",
        "--batch-size",
        "100",
        "--device",
        "cpu",
        "--out",
        out,
    )
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["images"] == 400
    csv = tmp_path / "prediction.csv"
    code, stdout, err = _run(
        capsys,
        "predict",
        "--checkpoint",
        out / "checkpoint.pt",
        "--data",
        "hw8",
        "--data-dir",
        data_dir,
        "--out",
        csv,
    )
    assert code == 0, err
    lines = csv.read_text().splitlines()
    assert lines[0] == "ID,score" and len(lines) == 401 and lines[-1].startswith("399,")


def test_resume_continues_the_saved_run(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "fcn", "--device", "cpu", "--out", out]
    assert _run(capsys, *args, "--epochs", "1")[0] == 0
    assert _run(capsys, *args, "--epochs", "2", "--resume")[0] == 0
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--model", "vgg"], "unknown model 'vgg'; choose one of fcn, cnn, vae"),
        (["train", "--normal-class", "12"], "normal class(es) [12]: expected one or more"),
        (["train", "--data", "hw8"], "needs --data-dir"),
        (["train", "--data", "hw8", "--data-dir", "/nonexistent"], "data folder not found"),
        (["train", "--data", "fashion-mnist", "--data-dir", "/nonexistent"], "missing Fashion"),
        (["predict", "--checkpoint", "/nonexistent.pt"], "checkpoint file not found"),
    ],
)
def test_bad_input_gets_one_clear_line(tmp_path, capsys, argv, message):
    code, _, err = _run(capsys, *argv, "--out", tmp_path / "x")
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_unknown_dataset_lists_the_choices(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--data", "mnist"])
    choices = ", ".join(f"'{name}'" for name in DATASET_NAMES)
    assert f"choose from {choices}" in capsys.readouterr().err


def test_output_folder_that_cannot_be_written(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = _run(capsys, "train", "--epochs", "1", "--out", blocker / "run")
    assert code == 2 and "cannot write into this output folder" in err


def test_checkpoint_of_other_image_shape_is_refused_by_predict(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(capsys, "train", "--model", "fcn", "--epochs", "1", "--out", out)[0] == 0
    data_dir = tmp_path / "hw8data"
    datasets.export_hw8(datasets.load_task("bundled"), data_dir)
    code, _, err = _run(
        capsys,
        "predict",
        "--checkpoint",
        out / "checkpoint.pt",
        "--data",
        "hw8",
        "--data-dir",
        data_dir,
        "--out",
        tmp_path / "p.csv",
    )
    assert code == 2
    assert "trained on images (1, 28, 28)" in err and "(3, 64, 64)" in err
    assert not (tmp_path / "p.csv").exists()
    code, _, err = _run(
        capsys, "train", "--model", "cnn", "--epochs", "2", "--resume", "--out", out
    )
    assert code == 2 and "holds model 'fcn'" in err


def test_recipe_prints_one_table_with_the_margin(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HW8_QUICK", "1")
    code, stdout, err = _run(capsys, "recipe", "--quiet", "--device", "cpu", "--out", tmp_path)
    assert code == 0, err
    rows = [line.split() for line in stdout.splitlines()]
    names = [" ".join(r[:-1]) for r in rows if len(r) >= 2 and r[-1].replace(".", "").isdigit()]
    assert names == ["sample fcn", "sample cnn", "sample vae", "house recipe"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    best = max(v for k, v in metrics["auc"].items() if k.startswith("sample"))
    assert metrics["margin"] == pytest.approx(metrics["auc"]["house recipe"] - best)
    assert "margin" in stdout
    # one paragraph with the table: what the numbers mean, the recipe, the files, the time
    paragraph = " ".join(stdout.split("(recipe - best sample)")[1].split())
    assert paragraph.startswith("ROC AUC is the chance that a random anomaly scores higher")
    assert (
        "the house recipe (hw8/house_recipe.py) trains a dense and a convolutional autoencoder"
        in (paragraph)
    )
    assert f"Files in {tmp_path}/: prediction.csv" in paragraph
    assert re.search(r"\d+ s in all on cpu with \d threads?\.$", paragraph), paragraph
    assert metrics["cpu_threads"] >= 1
    task = datasets.load_task("bundled")
    scores = anomaly.read_submission(tmp_path / "prediction.csv", len(task.test_images))
    assert anomaly.roc_auc(task.test_labels, scores) == pytest.approx(
        metrics["auc"]["house recipe"]
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--epochs", "0"], "argument --epochs: expected a int > 0, found '0'"),
        (["train", "--lr", "-1"], "argument --lr: expected a float > 0, found '-1'"),
        (["train", "--batch-size", "x"], "argument --batch-size: expected a int > 0"),
    ],
)
def test_bad_numbers_are_usage_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_unknown_device_gets_one_clear_line(tmp_path, capsys):
    code, _, err = _run(capsys, "train", "--device", "gpu0", "--out", tmp_path / "x")
    assert code == 2 and "'gpu0' is not a device name" in err and "Traceback" not in err


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    def broken(*_args, **_kwargs):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr("hw8.datasets.load_task", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["train", "--out", str(tmp_path / "x")])


def test_the_command_line_starts_without_torch():
    """`hw8 validate` and the instructor commands must not wait for torch, scikit-learn
    and matplotlib (about 3 s): only the training commands import them."""
    code = (
        "import sys\n"
        "import hw8.cli\n"
        "hw8.cli.build_parser().parse_args(['course', 'grade', 'hw8'])\n"
        "heavy = sorted({'torch', 'sklearn', 'matplotlib'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_grade_help_and_the_readme_state_one_memory_limit_default():
    from pathlib import Path

    grade = build_parser()._subparsers._group_actions[0].choices["course"]
    grade = grade._subparsers._group_actions[0].choices["grade"]
    (memory,) = [a for a in grade._actions if "--memory-limit" in a.option_strings]
    assert memory.help == f"GiB per process (default: {MEMORY_LIMIT_DEFAULT})"
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert f"(`--memory-limit` GiB; default {MEMORY_LIMIT_DEFAULT})" in readme


def test_train_passes_amp_and_compile_to_the_training_loop(monkeypatch, tmp_path, capsys):
    from hw8 import train

    seen = {}
    real_train = train.train

    def recording(*args, **kwargs):
        seen.update(amp=kwargs["amp"], compile_loss=kwargs["compile_loss"])
        return real_train(*args, **{**kwargs, "amp": False, "compile_loss": False})

    monkeypatch.setattr(train, "train", recording)
    argv = ["train", "--epochs", "1", "--device", "cpu", "--amp", "--compile"]
    code, _, _ = _run(capsys, *argv, "--out", tmp_path / "run")
    assert code == 0 and seen == {"amp": True, "compile_loss": True}
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["compile"] is True and isinstance(metrics["amp"], bool)


def test_a_failing_compiler_is_one_clear_line(monkeypatch, tmp_path, capsys):
    import torch
    from torch._inductor.exc import InvalidCxxCompiler

    def broken_compile(function):
        def run(batch):
            raise InvalidCxxCompiler()

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    argv = ["train", "--epochs", "1", "--device", "cpu", "--compile", "--out", tmp_path / "run"]
    code, _, err = _run(capsys, *argv)
    assert code == 2 and "\nhw8 train: error: torch.compile could not compile" in err
    assert "InvalidCxxCompiler" in err and "leave out --compile" in err
