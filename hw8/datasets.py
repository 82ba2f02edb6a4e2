"""Image sources, validation, the one-class task, the HW8 file format and batching.

Every source returns uint8 images in the HW8 layout, channels last: ``(N, H, W, C)``.
Batches are cut, shuffled and normalised on the device (see :func:`iterate_batches`):
the images are moved there once, as uint8, and never touched by per-image Python.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hw8 import runmode
from hw8.errors import DataError
from hw8.files import write_atomically
from hw8.settings import DATASET_NAMES, HW8_IMAGE_SHAPE

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
HW8_TRAIN_FILE = "trainingset.npy"
HW8_TEST_FILE = "testingset.npy"
HW8_LABELS_FILE = "testing_labels.npy"
HW8_SOURCE_HINT = (
    "The real HW8 files come from the course's Kaggle competition "
    "'ML2023Spring-hw8' (data tab: trainingset.npy, testingset.npy); "
    "`hw8 data export-hw8 DIR` writes files of the same format from the bundled data."
)
BUNDLED_FILE = "fashion_mnist_subset.npz"


@dataclass(frozen=True)
class LabelledImages:
    """Train and test images (uint8, NHWC) with their class labels (int64, or None)."""

    train_images: np.ndarray
    train_labels: np.ndarray | None
    test_images: np.ndarray
    test_labels: np.ndarray | None


@dataclass(frozen=True)
class AnomalyTask:
    """A one-class task: train on normal images only, score every test image.

    ``test_labels`` is 1 for an anomaly and 0 for a normal image, or None when the
    labels are not known (the real HW8 test set, judged by Kaggle).
    """

    name: str
    train_images: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray | None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The image shape the models see, channels first: ``(C, H, W)``."""
        height, width, channels = self.train_images.shape[1:]
        return (channels, height, width)


# ----------------------------------------------------------------------------- checks


def validate_images(images: np.ndarray, source: str) -> np.ndarray:
    """Check that ``images`` is a non-empty uint8 array of shape (N, H, W, C)."""
    if not isinstance(images, np.ndarray):
        raise DataError(f"{source}: expected a numpy array, found {type(images).__name__}.")
    if images.dtype != np.uint8:
        hint = " (NaN values are not valid pixels)" if _has_nan(images) else ""
        raise DataError(
            f"{source}: expected uint8 pixels 0-255, found dtype {images.dtype}{hint}. "
            "Convert with `np.clip(x, 0, 255).astype(np.uint8)` if the values are pixels."
        )
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[-1] not in (1, 3):
        raise DataError(
            f"{source}: expected shape (N, H, W, C) with N > 0 and C in (1, 3), "
            f"found shape {images.shape}."
        )
    return images


def _has_nan(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.floating) and bool(np.isnan(array).any())


def validate_labels(labels: np.ndarray, count: int, source: str) -> np.ndarray:
    """Check that ``labels`` is a 1-D integer array with one label per image."""
    if labels.ndim != 1 or len(labels) != count:
        raise DataError(
            f"{source}: expected {count} labels (one per test image), found shape {labels.shape}."
        )
    if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != np.bool_:
        raise DataError(f"{source}: expected integer labels, found dtype {labels.dtype}.")
    return labels.astype(np.int64)


# ----------------------------------------------------------------------------- sources


def load_bundled() -> LabelledImages:
    """The bundled Fashion-MNIST subset: 10,000 train and 2,000 test images, 28x28x1."""
    with resources.files("hw8.data").joinpath(BUNDLED_FILE).open("rb") as handle:
        with np.load(handle) as arrays:
            return LabelledImages(
                train_images=arrays["train_images"],
                train_labels=arrays["train_labels"].astype(np.int64),
                test_images=arrays["test_images"],
                test_labels=arrays["test_labels"].astype(np.int64),
            )


DIGITS_TRAIN_FRACTION = 0.5


def load_digits(seed: int = 0) -> LabelledImages:
    """scikit-learn's bundled handwritten digits (UCI): 1,797 images, 8x8x1, classes 0-9.

    A second real image set that ships with an installed package. Its 17 grey levels are
    scaled to 0-255; the images are split (seeded, stratified by digit) into halves for
    training and testing, since the set comes without a split.
    """
    from sklearn.datasets import load_digits as sklearn_digits  # late: sklearn is heavy

    bunch = sklearn_digits()
    images = np.rint(bunch.images * (255 / 16)).clip(0, 255).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    train = np.zeros(len(labels), dtype=bool)
    for digit in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == digit))
        train[members[: round(len(members) * DIGITS_TRAIN_FRACTION)]] = True
    return LabelledImages(images[train], labels[train], images[~train], labels[~train])


def read_idx(path: Path) -> np.ndarray:
    """Read one gzipped IDX file (the Fashion-MNIST format) into a uint8 array."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found.")
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: not a readable gzip file ({error}).") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: header promises {expected} bytes of data for shape {shape}, "
            f"found {len(raw) - header}; the file is truncated or corrupt."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(data_dir: Path | str = DEBIAN_FASHION_MNIST_DIR) -> LabelledImages:
    """The full Fashion-MNIST (60,000 + 10,000 images, 28x28x1) from its four IDX files."""
    data_dir = Path(data_dir)
    missing = [name for name in FASHION_MNIST_FILES.values() if not (data_dir / name).is_file()]
    if missing:
        raise DataError(
            f"{data_dir}: missing Fashion-MNIST file(s) {', '.join(missing)}. "
            "Install the Debian package `dataset-fashion-mnist` (it puts them in "
            f"{DEBIAN_FASHION_MNIST_DIR}) or pass --data-dir with the four IDX .gz files."
        )
    arrays = {key: read_idx(data_dir / name) for key, name in FASHION_MNIST_FILES.items()}
    return LabelledImages(
        train_images=arrays["train_images"][..., None],
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=arrays["test_images"][..., None],
        test_labels=arrays["test_labels"].astype(np.int64),
    )


def load_npy(path: Path) -> np.ndarray:
    """Memory-map one .npy file, with a clear error when it is missing or not .npy."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found. {HW8_SOURCE_HINT}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(
            f"{path}: not a valid .npy file or truncated ({error}). "
            "Download it again or re-export it."
        ) from error


def load_hw8(data_dir: Path | str) -> AnomalyTask:
    """The real HW8 files (or an export of them) as a task; labels are optional."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: data folder not found. {HW8_SOURCE_HINT}")
    train = validate_images(load_npy(data_dir / HW8_TRAIN_FILE), str(data_dir / HW8_TRAIN_FILE))
    test = validate_images(load_npy(data_dir / HW8_TEST_FILE), str(data_dir / HW8_TEST_FILE))
    for path, images in ((HW8_TRAIN_FILE, train), (HW8_TEST_FILE, test)):
        if images.shape[1:] != HW8_IMAGE_SHAPE:
            expected = ", ".join(map(str, HW8_IMAGE_SHAPE))
            raise DataError(
                f"{data_dir / path}: expected images of shape (N, {expected}) as in HW8, "
                f"found {images.shape}."
            )
    labels = None
    labels_path = data_dir / HW8_LABELS_FILE
    if labels_path.exists():
        labels = validate_labels(load_npy(labels_path), len(test), str(labels_path))
    return AnomalyTask("hw8", train, test, labels)


HW8_FOLDER = "ml2023spring-hw8"  # the competition's name, lowercased as Kaggle mounts it


def hw8_candidates(where: str, cwd: Path | None = None) -> list[Path]:
    """The folders :func:`find_hw8_dir` looks in, in order, for a platform of
    :func:`hw8.runmode.platform`: ``$HW8_DATA_DIR``, then where Kaggle mounts competition
    data or a Colab student uploads it, then beside the notebook."""
    cwd = Path.cwd() if cwd is None else cwd
    folders = [Path(os.environ["HW8_DATA_DIR"])] if os.environ.get("HW8_DATA_DIR") else []
    if where == "kaggle":
        kaggle = Path("/kaggle/input")
        folders += [kaggle / HW8_FOLDER, *sorted(kaggle.glob("*")), *sorted(kaggle.glob("*/*"))]
    if where == "colab":
        content = Path("/content")
        folders += [content / HW8_FOLDER, content / "data", content, content / "drive/MyDrive"]
        folders.append(content / "drive/MyDrive" / HW8_FOLDER)
    folders += [cwd / HW8_FOLDER, cwd / "data" / HW8_FOLDER, cwd / "data", cwd, cwd.parent / "data"]
    return list(dict.fromkeys(folders))


def find_hw8_dir(data_dir: Path | str | None = None, where: str | None = None) -> Path | None:
    """The folder holding the real HW8 files (``trainingset.npy``, ``testingset.npy``).

    ``data_dir`` given: that folder, which must hold them (:class:`DataError` otherwise).
    Not given: the first of :func:`hw8_candidates` that holds them, or None (the notebooks
    then use the bundled stand-in). Prints one line saying what it found or where it looked.
    While nbgrader autogrades, nothing is searched and a ``data_dir`` without the files (a
    student's own path, absent on the grading machine) gives None: a grade never depends
    on the grader's folders.
    """
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        missing = [
            name for name in (HW8_TRAIN_FILE, HW8_TEST_FILE) if not (data_dir / name).is_file()
        ]
        if missing and runmode.autograding():
            print(f"HW8 files: {data_dir} is not on the grading machine; the bundled task is used.")
            return None
        if missing:
            raise DataError(
                f"{data_dir}: no {' or '.join(missing)} in this folder. {HW8_SOURCE_HINT}"
            )
        print(f"HW8 files: {data_dir}")
        return data_dir
    if runmode.autograding():
        return None
    tried = hw8_candidates(where or runmode.platform())
    for folder in tried:
        if (folder / HW8_TRAIN_FILE).is_file() and (folder / HW8_TEST_FILE).is_file():
            print(f"HW8 files found: {folder}")
            return folder
    print(
        f"HW8 files not found (looked in {', '.join(map(str, tried))}); using the bundled "
        f"stand-in. Set DATA_DIR to the folder with {HW8_TRAIN_FILE} to use them."
    )
    return None


# ----------------------------------------------------------------------------- tasks


def one_class_task(
    data: LabelledImages,
    normal_classes: tuple[int, ...] = (0,),
    *,
    anomaly_fraction: float | None = 0.5,
    seed: int = 0,
    name: str = "one-class",
    extra_test_normals: int = 0,
) -> AnomalyTask:
    """Build an HW8-shaped task: train on the normal classes, test on a mix.

    The training set holds the training images of the normal classes. The test set
    holds every normal test image plus anomalies drawn (seeded, evenly over the other
    classes) so that they make up ``anomaly_fraction`` of it; ``None`` keeps every
    test image (the standard one-class protocol). ``extra_test_normals`` moves that many
    normal *training* images (seeded) from the training set to the end of the test
    split, for a test split with more normal images than the test set holds (the
    anomalies are counted from the normal test images only).
    """
    train_idx, test_idx, moved_idx = _one_class_indices(
        data, normal_classes, anomaly_fraction, seed, extra_test_normals
    )
    test_normal = np.isin(data.test_labels, _normal_classes(data, normal_classes))
    return AnomalyTask(
        name=name,
        train_images=data.train_images[train_idx],
        test_images=np.concatenate([data.test_images[test_idx], data.train_images[moved_idx]]),
        test_labels=np.r_[
            (~test_normal[test_idx]).astype(np.int64), np.zeros(len(moved_idx), np.int64)
        ],
    )


def _normal_classes(data: LabelledImages, normal_classes) -> tuple[int, ...]:
    num_classes = int(data.train_labels.max()) + 1
    normal_classes = tuple(sorted(set(int(c) for c in normal_classes)))
    bad = [c for c in normal_classes if not 0 <= c < num_classes]
    if bad or not normal_classes or len(normal_classes) == num_classes:
        raise DataError(
            f"normal class(es) {list(normal_classes)}: expected one or more class numbers "
            f"in 0..{num_classes - 1}, not all of them (found {bad or 'all classes'})."
        )
    return normal_classes


def _one_class_indices(data, normal_classes, anomaly_fraction, seed, extra_test_normals):
    """Indices of a one-class task: (training images, test images, training images moved
    to the test split), the first and last into ``data.train_images``."""
    normal_classes = _normal_classes(data, normal_classes)
    train_normal_idx = np.flatnonzero(np.isin(data.train_labels, normal_classes))
    test_normal = np.isin(data.test_labels, normal_classes)
    normal_idx = np.flatnonzero(test_normal)
    anomaly_idx = np.flatnonzero(~test_normal)
    if anomaly_fraction is not None:
        wanted = round(len(normal_idx) * anomaly_fraction / (1 - anomaly_fraction))
        anomaly_idx = _stratified_sample(anomaly_idx, data.test_labels, wanted, seed)
    if not 0 <= extra_test_normals < len(train_normal_idx):
        raise DataError(
            f"extra_test_normals={extra_test_normals}: expected 0 up to fewer than the "
            f"{len(train_normal_idx)} training images of the normal class(es)."
        )
    rng = np.random.default_rng([seed, 3])  # a stream of its own
    moved = np.sort(rng.choice(train_normal_idx, size=extra_test_normals, replace=False))
    train_idx = np.setdiff1d(train_normal_idx, moved)
    return train_idx, np.sort(np.concatenate([normal_idx, anomaly_idx])), moved


def _stratified_sample(indices: np.ndarray, labels: np.ndarray, count: int, seed):
    """Pick ``count`` of ``indices`` spread evenly over their classes (seeded)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels[indices])
    per_class = np.full(len(classes), count // len(classes))
    per_class[: count % len(classes)] += 1
    picked = [
        rng.choice(indices[labels[indices] == c], size=n, replace=False)
        for c, n in zip(classes, per_class, strict=False)
    ]
    return np.concatenate(picked)


VALIDATION_HELD_OUT = 0.2


def validation_task(
    data: LabelledImages,
    normal_classes: tuple[int, ...] = (0,),
    *,
    anomaly_fraction: float | None = 0.5,
    held_out: float = VALIDATION_HELD_OUT,
    seed: int = 0,
    name: str = "one-class",
    extra_test_normals: int = 0,
) -> AnomalyTask:
    """A labelled validation split of :func:`one_class_task`, made of training images only.

    Choose models and settings on it, and look at the test split once at the end. Of the
    task's training images (those :func:`one_class_task` trains on, with the same
    arguments), ``held_out`` (a fraction, seeded) become the validation split's normal
    images and the rest its training set; its anomalies are training images of the other
    classes, drawn evenly over them, as many per normal image as the task's test split
    has. No test image, and no training image moved to the test split, is used.
    """
    if not 0 < held_out < 1:
        raise DataError(f"held_out must be a fraction between 0 and 1, found {held_out}.")
    train_idx, test_idx, moved_idx = _one_class_indices(
        data, normal_classes, anomaly_fraction, seed, extra_test_normals
    )
    normal = np.isin(data.train_labels, _normal_classes(data, normal_classes))
    test_anomalies = int((~np.isin(data.test_labels[test_idx], normal_classes)).sum())
    ratio = test_anomalies / (len(test_idx) - test_anomalies + len(moved_idx))
    rng = np.random.default_rng([seed, 1])  # a stream of its own: the test split is unchanged
    count = max(1, round(len(train_idx) * held_out))
    if count >= len(train_idx):
        raise DataError(f"held_out={held_out} leaves no training image to train on.")
    held = np.sort(rng.choice(train_idx, size=count, replace=False))
    anomaly_idx = np.flatnonzero(~normal)
    wanted = min(len(anomaly_idx), round(count * ratio))
    anomalies = _stratified_sample(anomaly_idx, data.train_labels, wanted, [seed, 2])
    order = np.sort(np.concatenate([held, anomalies]))
    return AnomalyTask(
        name=f"{name} (validation)",
        train_images=data.train_images[np.setdiff1d(train_idx, held)],
        test_images=data.train_images[order],
        test_labels=(~normal[order]).astype(np.int64),
    )


def load_task(
    dataset: str = "bundled",
    data_dir: Path | str | None = None,
    normal_classes: tuple[int, ...] = (0,),
    seed: int = 0,
    *,
    anomaly_fraction: float | None = 0.5,
    extra_test_normals: int = 0,
    validation: bool = False,
) -> AnomalyTask:
    """Load a task by dataset name: ``bundled``, ``fashion-mnist``, ``digits`` or ``hw8``.

    ``anomaly_fraction`` and ``extra_test_normals`` are passed to :func:`one_class_task`.
    With ``validation=True`` the result is the task's labelled validation split
    (:func:`validation_task`): trained on most of the normal training images, tested on
    the rest of them and on training images of the other classes, never on a test image.
    """
    if dataset in ("bundled", "fashion-mnist", "digits"):
        if dataset == "bundled":
            data = load_bundled()
        elif dataset == "digits":
            data = load_digits()
        else:
            data = load_fashion_mnist(data_dir or DEBIAN_FASHION_MNIST_DIR)
        split = validation_task if validation else one_class_task
        return split(
            data,
            normal_classes,
            anomaly_fraction=anomaly_fraction,
            seed=seed,
            name=dataset,
            extra_test_normals=extra_test_normals,
        )
    if dataset == "hw8":
        if data_dir is None:
            raise DataError(f"dataset 'hw8' needs --data-dir. {HW8_SOURCE_HINT}")
        if validation:
            raise DataError(
                "the real HW8 data has no labelled anomalies, so it has no validation split: "
                "choose models and settings on load_task('bundled', validation=True)."
            )
        return load_hw8(data_dir)
    raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASET_NAMES)}.")


# ----------------------------------------------------------------------------- HW8 format


def to_hw8_format(images: np.ndarray) -> np.ndarray:
    """Resize uint8 NHWC images to 64x64 (bilinear) and give them 3 channels."""
    validate_images(images, "images")
    tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    resized = F.interpolate(tensor, size=HW8_IMAGE_SHAPE[:2], mode="bilinear", align_corners=False)
    resized = resized.expand(-1, 3, -1, -1) if resized.shape[1] == 1 else resized
    return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def export_hw8(task: AnomalyTask, out_dir: Path | str) -> list[Path]:
    """Write ``task`` as HW8 files (trainingset.npy, testingset.npy, testing_labels.npy)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"{out_dir}: cannot create the output folder ({error}).") from error
    files = {
        HW8_TRAIN_FILE: to_hw8_format(task.train_images),
        HW8_TEST_FILE: to_hw8_format(task.test_images),
    }
    if task.test_labels is not None:
        files[HW8_LABELS_FILE] = task.test_labels.astype(np.int64)
    for name, array in files.items():
        write_atomically(out_dir / name, partial(np.save, arr=array, allow_pickle=False))
    return [out_dir / name for name in files]


# ----------------------------------------------------------------------------- batches


def to_device(images: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """Move uint8 NHWC images to ``device`` once, as a uint8 NCHW tensor."""
    validate_images(images, "images")
    array = np.ascontiguousarray(images)
    if not array.flags.writeable:  # a memory-mapped file: read it into memory once
        array = array.copy()
    return torch.from_numpy(array).to(device).permute(0, 3, 1, 2)


def normalize(batch: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255 to float32 in [-1, 1], as the course sample does: 2x/255 - 1."""
    return batch.float().mul_(2.0 / 255.0).sub_(1.0)


def iterate_batches(
    images: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
):
    """Yield normalised float batches cut from a uint8 NCHW tensor, on its own device.

    With ``shuffle`` the order is a permutation drawn from ``generator`` (on the CPU,
    so the same seed gives the same order on every device).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, found {batch_size}.")
    count = images.shape[0]
    if shuffle:
        order = torch.randperm(count, generator=generator).to(images.device)
        for start in range(0, count, batch_size):
            yield normalize(images[order[start : start + batch_size]])
    else:
        for start in range(0, count, batch_size):
            yield normalize(images[start : start + batch_size])


# The bundled task: notebook 05's leaderboard grades it (its stand-in thresholds were
# measured on it), and notebooks 02 and 04 use it as their HW8-style task. Its
# test split holds every bundled test image (the normal class's 200, and 1,800 anomalies)
# and 400 of the normal class's 1,000 training images (so 600 are left to train on): the
# standard error of an AUC comes mostly from the number of normal images, and 600 measure
# it well enough to tell the four levels apart.
BUNDLED_TASK = {
    "dataset": "bundled",
    "normal_classes": (0,),
    "seed": 0,
    "anomaly_fraction": None,
    "extra_test_normals": 400,
}


def bundled_task(validation: bool = False):
    """The bundled task (``BUNDLED_TASK``), as an ``AnomalyTask``: the one notebook 05's
    leaderboard grades.

    With ``validation=True``, its labelled validation split instead: built from the
    training images only (:func:`validation_task`), for choosing models and
    settings without looking at the graded test split.
    """
    return load_task(
        BUNDLED_TASK["dataset"],
        normal_classes=BUNDLED_TASK["normal_classes"],
        seed=BUNDLED_TASK["seed"],
        anomaly_fraction=BUNDLED_TASK["anomaly_fraction"],
        extra_test_normals=BUNDLED_TASK["extra_test_normals"],
        validation=validation,
    )
