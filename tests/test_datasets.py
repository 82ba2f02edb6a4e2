import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from hw8 import datasets
from hw8.datasets import DataError


def test_bundled_is_balanced_and_has_the_documented_shape(bundled):
    assert bundled.train_images.shape == (10000, 28, 28, 1)
    assert bundled.test_images.shape == (2000, 28, 28, 1)
    assert bundled.train_images.dtype == np.uint8
    assert np.bincount(bundled.train_labels).tolist() == [1000] * 10
    assert np.bincount(bundled.test_labels).tolist() == [200] * 10


def test_one_class_task_is_half_anomalies_and_trains_on_normal_only(bundled):
    task = datasets.one_class_task(bundled, (3,), seed=1)
    assert len(task.train_images) == 1000
    assert len(task.test_images) == 400
    assert task.test_labels.sum() == 200
    assert task.image_shape == (1, 28, 28)
    normal_train = bundled.train_images[bundled.train_labels == 3]
    assert np.array_equal(task.train_images, normal_train)
    again = datasets.one_class_task(bundled, (3,), seed=1)
    assert np.array_equal(again.test_images, task.test_images)


def test_anomalies_come_from_every_other_class(bundled):
    task = datasets.one_class_task(bundled, (0, 1), seed=0)
    assert task.test_labels.mean() == pytest.approx(0.5)
    full = datasets.one_class_task(bundled, (0,), anomaly_fraction=None)
    assert len(full.test_images) == 2000 and full.test_labels.sum() == 1800


@pytest.mark.parametrize("classes", [(10,), (-1,), (), tuple(range(10))])
def test_normal_class_out_of_range_is_refused(bundled, classes):
    with pytest.raises(DataError, match="normal class"):
        datasets.one_class_task(bundled, classes)


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(DataError, match="bundled, fashion-mnist, digits, hw8"):
        datasets.load_task("mnist")


def test_export_then_load_round_trip(small_task, tmp_path):
    paths = datasets.export_hw8(small_task, tmp_path)
    assert sorted(p.name for p in paths) == [
        "testing_labels.npy",
        "testingset.npy",
        "trainingset.npy",
    ]
    task = datasets.load_hw8(tmp_path)
    assert task.train_images.shape == (200, 64, 64, 3)
    assert task.test_images.shape == (80, 64, 64, 3)
    assert task.train_images.dtype == np.uint8
    assert np.array_equal(task.test_labels, small_task.test_labels)
    # grey images: the three channels are equal, the brightness is kept
    assert np.array_equal(task.train_images[..., 0], task.train_images[..., 2])
    mean_in = small_task.train_images.mean()
    assert task.train_images.mean() == pytest.approx(mean_in, rel=0.05)
    assert not list(tmp_path.glob(".*tmp"))


def test_missing_hw8_folder_says_where_the_files_come_from(tmp_path):
    with pytest.raises(DataError, match="Kaggle"):
        datasets.load_hw8(tmp_path / "nowhere")
    with pytest.raises(DataError, match="trainingset.npy: file not found"):
        datasets.load_hw8(tmp_path)


def _write_hw8(folder, train, test, labels=None):
    np.save(folder / "trainingset.npy", train)
    np.save(folder / "testingset.npy", test)
    if labels is not None:
        np.save(folder / "testing_labels.npy", labels)


def test_hw8_wrong_shape_dtype_nan_and_labels(tmp_path):
    good = np.zeros((4, 64, 64, 3), np.uint8)
    _write_hw8(tmp_path, np.zeros((4, 32, 32, 3), np.uint8), good)
    with pytest.raises(DataError, match=r"\(N, 64, 64, 3\).*found \(4, 32, 32, 3\)"):
        datasets.load_hw8(tmp_path)
    _write_hw8(tmp_path, good.astype(np.float32), good)
    with pytest.raises(DataError, match="uint8.*float32"):
        datasets.load_hw8(tmp_path)
    nan = good.astype(np.float32)
    nan[0, 0, 0, 0] = np.nan
    _write_hw8(tmp_path, good, nan)
    with pytest.raises(DataError, match="NaN"):
        datasets.load_hw8(tmp_path)
    _write_hw8(tmp_path, good, good, labels=np.zeros(3, np.int64))
    with pytest.raises(DataError, match="expected 4 labels.*found shape \\(3,\\)"):
        datasets.load_hw8(tmp_path)


def test_truncated_and_non_npy_files_are_refused(tmp_path):
    good = np.zeros((4, 64, 64, 3), np.uint8)
    _write_hw8(tmp_path, good, good)
    raw = (tmp_path / "testingset.npy").read_bytes()
    (tmp_path / "testingset.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="testingset.npy: not a valid .npy file or truncated"):
        datasets.load_hw8(tmp_path)
    (tmp_path / "testingset.npy").write_text("ID,score\n0,1.0\n")
    with pytest.raises(DataError, match="testingset.npy: not a valid .npy"):
        datasets.load_hw8(tmp_path)


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


def test_fashion_mnist_idx_files_load_from_any_folder(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28)
    labels = np.array([0, 1, 2], np.uint8)
    for key, name in datasets.FASHION_MNIST_FILES.items():
        _write_idx(tmp_path / name, images if "images" in key else labels)
    data = datasets.load_fashion_mnist(tmp_path)
    assert data.train_images.shape == (3, 28, 28, 1)
    assert np.array_equal(data.train_images[..., 0], images)
    assert data.test_labels.tolist() == [0, 1, 2]


def test_fashion_mnist_missing_or_truncated(tmp_path):
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        datasets.load_fashion_mnist(tmp_path)
    path = tmp_path / "x.gz"
    _write_idx(path, np.zeros((2, 28, 28), np.uint8))
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    with gzip.open(path, "wb") as handle:
        handle.write(raw[:-10])
    with pytest.raises(DataError, match="truncated"):
        datasets.read_idx(path)


@pytest.mark.skipif(
    not datasets.DEBIAN_FASHION_MNIST_DIR.is_dir(), reason="Debian dataset-fashion-mnist absent"
)
def test_full_fashion_mnist_from_the_debian_package():
    data = datasets.load_fashion_mnist()
    assert data.train_images.shape == (60000, 28, 28, 1)
    assert np.bincount(data.test_labels).tolist() == [1000] * 10


def test_batches_are_normalised_seeded_and_complete():
    images = np.arange(10 * 2 * 2, dtype=np.uint8).reshape(10, 2, 2, 1) * 6
    data = datasets.to_device(images, "cpu")
    assert data.dtype == torch.uint8 and data.shape == (10, 1, 2, 2)
    plain = list(datasets.iterate_batches(data, 4))
    assert [len(b) for b in plain] == [4, 4, 2]
    assert plain[0].dtype == torch.float32
    expected = torch.from_numpy(images[:4]).permute(0, 3, 1, 2).float() * 2 / 255 - 1
    torch.testing.assert_close(plain[0], expected)
    shuffled = [
        torch.cat(list(datasets.iterate_batches(data, 3, shuffle=True, generator=g)))
        for g in (torch.Generator().manual_seed(1), torch.Generator().manual_seed(1))
    ]
    torch.testing.assert_close(shuffled[0], shuffled[1])
    assert not torch.equal(shuffled[0], torch.cat(plain))
    assert torch.equal(
        shuffled[0].flatten().sort().values, torch.cat(plain).flatten().sort().values
    )


def test_normalize_maps_0_and_255_to_minus_one_and_one():
    batch = torch.tensor([0, 255], dtype=torch.uint8)
    assert datasets.normalize(batch).tolist() == [-1.0, 1.0]


def _rows(images):
    return {image.tobytes() for image in images}


def test_extra_test_normals_move_training_images_to_the_test_split(bundled):
    plain = datasets.one_class_task(bundled, (0,), anomaly_fraction=None)
    task = datasets.one_class_task(bundled, (0,), anomaly_fraction=None, extra_test_normals=300)
    assert len(task.train_images) == 700 and len(task.test_images) == 2300
    assert (task.test_labels == 0).sum() == 500 and task.test_labels.sum() == 1800
    assert np.array_equal(task.test_images[:2000], plain.test_images)  # the test set first
    moved = _rows(task.test_images[2000:])
    assert moved <= _rows(plain.train_images) and not moved & _rows(task.train_images)
    again = datasets.one_class_task(bundled, (0,), anomaly_fraction=None, extra_test_normals=300)
    assert np.array_equal(again.test_images, task.test_images)
    with pytest.raises(DataError, match="extra_test_normals=1000"):
        datasets.one_class_task(bundled, (0,), extra_test_normals=1000)


@pytest.mark.parametrize(("fraction", "extra"), [(0.5, 0), (None, 0), (None, 300)])
def test_validation_split_uses_training_images_only(bundled, fraction, extra):
    kwargs = {"anomaly_fraction": fraction, "seed": 0, "extra_test_normals": extra}
    test = datasets.one_class_task(bundled, (0,), **kwargs)
    val = datasets.validation_task(bundled, (0,), **kwargs)
    held = val.test_images[val.test_labels == 0]
    # the held-out normals and the remaining training images split the task's training set
    assert len(held) == round(0.2 * len(test.train_images))
    assert len(val.train_images) == len(test.train_images) - len(held)
    assert _rows(held) | _rows(val.train_images) == _rows(test.train_images)
    assert not _rows(held) & _rows(val.train_images)
    # anomalies: training images of the other classes; no image of the test split anywhere
    others = bundled.train_images[bundled.train_labels != 0]
    assert _rows(val.test_images[val.test_labels == 1]) <= _rows(others)
    assert not (_rows(val.test_images) | _rows(val.train_images)) & _rows(test.test_images)
    ratio = test.test_labels.sum() / (test.test_labels == 0).sum()
    assert val.test_labels.sum() == round(len(held) * ratio)
    assert val.name == "one-class (validation)" and val.image_shape == test.image_shape
    again = datasets.validation_task(bundled, (0,), **kwargs)
    assert np.array_equal(again.test_images, val.test_images)


def test_load_task_validation_and_anomaly_fraction():
    full = datasets.load_task("bundled", anomaly_fraction=None)
    assert len(full.test_images) == 2000 and full.test_labels.sum() == 1800
    val = datasets.load_task("bundled", anomaly_fraction=None, validation=True)
    assert val.name == "bundled (validation)"
    assert len(val.train_images) == 800 and val.test_labels.sum() == 1800
    # the test split is the same with or without the new options at their defaults
    assert np.array_equal(
        datasets.load_task("bundled").test_images, datasets.load_task().test_images
    )
    with pytest.raises(DataError, match="no validation split"):
        datasets.load_task("hw8", "somewhere", validation=True)
    with pytest.raises(DataError, match="held_out"):
        datasets.validation_task(datasets.load_bundled(), (0,), held_out=1.5)


# ----------------------------------------------------------------------------- finding HW8 files


def _hw8_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name in (datasets.HW8_TRAIN_FILE, datasets.HW8_TEST_FILE):
        (folder / name).write_bytes(b"")
    return folder


def test_find_hw8_dir_looks_where_each_platform_keeps_the_files(tmp_path, monkeypatch):
    monkeypatch.delenv("HW8_DATA_DIR", raising=False)
    kaggle = datasets.hw8_candidates("kaggle", tmp_path)
    colab = datasets.hw8_candidates("colab", tmp_path)
    assert kaggle[0] == Path("/kaggle/input/ml2023spring-hw8")
    assert Path("/content/ml2023spring-hw8") in colab
    assert Path("/content/drive/MyDrive/ml2023spring-hw8") in colab
    local = datasets.hw8_candidates("local", tmp_path)
    assert local[0] == tmp_path / "ml2023spring-hw8" and not any("kaggle" in str(p) for p in local)
    monkeypatch.setenv("HW8_DATA_DIR", str(tmp_path / "mine"))
    assert datasets.hw8_candidates("local", tmp_path)[0] == tmp_path / "mine"


def test_find_hw8_dir_finds_files_beside_the_notebook(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HW8_DATA_DIR", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.chdir(tmp_path)
    assert datasets.find_hw8_dir(where="local") is None
    said = capsys.readouterr().out
    assert "not found" in said and str(tmp_path / "ml2023spring-hw8") in said
    folder = _hw8_files(tmp_path / "data" / "ml2023spring-hw8")
    assert datasets.find_hw8_dir(where="local") == folder
    assert "found" in capsys.readouterr().out


def test_find_hw8_dir_names_the_missing_file_of_a_given_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    folder = tmp_path / "hw8"
    folder.mkdir()
    (folder / datasets.HW8_TRAIN_FILE).write_bytes(b"")
    with pytest.raises(datasets.DataError, match="no testingset.npy"):
        datasets.find_hw8_dir(folder)
    assert datasets.find_hw8_dir(_hw8_files(folder)) == folder


def test_the_grader_never_depends_on_its_own_folders(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.chdir(tmp_path)
    _hw8_files(tmp_path / "ml2023spring-hw8")
    assert datasets.find_hw8_dir(where="local") is None  # no search while grading
    assert datasets.find_hw8_dir(tmp_path / "students-own-path") is None
    assert "bundled task is used" in capsys.readouterr().out


def test_digits_is_a_second_real_image_set_in_the_hw8_format(tmp_path):
    from hw8.datasets import export_hw8, load_digits, load_task

    data = load_digits()
    assert data.train_images.shape[1:] == (8, 8, 1) and data.train_images.dtype == np.uint8
    assert len(data.train_images) + len(data.test_images) == 1797
    assert data.train_images.max() == 255
    task = load_task("digits", normal_classes=(3,))
    assert task.test_labels.mean() == 0.5
    files = export_hw8(task, tmp_path)
    assert np.load(files[0]).shape == (len(task.train_images), 64, 64, 3)
