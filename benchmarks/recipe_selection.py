"""Choose the house recipe's settings on training data only (``quality.py --protocol validation``).

For one normal class, the selection sees the training split alone: a seeded fifth of the
class's training images is held out as validation normals, training images of the other
classes (drawn evenly over them, ``ANOMALIES_PER_NORMAL`` per held-out normal) are the
validation anomalies, and the recipe trains on the remaining four fifths of the class.
Every setting of a small declared grid is scored by its validation ROC AUC; the best one
(the first in grid order on a tie) is then trained once on all of the class's training
images and scored on the test split. :func:`select` takes the training images and
labels only, so it cannot read a test label.

A setting has two parts. The *training* part needs its own models: the number of steps
(``epochs_scale`` x 1,000), the code size of both members, the dense member's widths and
the conv member's channels. The *scoring* part reuses those models: the neighbours of the
latent and angle kNN scores, and the weight of each of the three scores in the rank
average (weight 0 drops a score; a member whose scores all weigh 0 is not trained in the
final run).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import rankdata

from hw8 import anomaly, house_recipe
from hw8.datasets import AnomalyTask, to_device

HELD_OUT = 0.2  # fraction of the normal class's training images held out for validation
ANOMALIES_PER_NORMAL = 2  # validation anomalies per held-out normal image
PARTS = ("dense residual", "conv latent", "conv angle")  # the three scores, weight order


@dataclass(frozen=True)
class TrainSetting:
    """What needs models of its own: training length and the members' sizes."""

    epochs_scale: float = 1.0
    latent: int = 32
    dense_widths: tuple[int, ...] = (512, 256)
    conv_channels: tuple[int, int, int] = (16, 32, 64)


@dataclass(frozen=True)
class ScoreSetting:
    """What reuses trained models: kNN neighbours and rank-average weights (see PARTS)."""

    knn: int = house_recipe.KNN
    knn_angle: int = house_recipe.KNN_ANGLE
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Grid:
    """A declared grid: every training setting with every scoring setting."""

    train: tuple[TrainSetting, ...]
    score: tuple[ScoreSetting, ...]

    def describe(self) -> dict:
        """The grid as JSON-ready lists."""
        return {
            "train": [asdict(t) for t in self.train],
            "score": [asdict(s) for s in self.score],
            "size": len(self.train) * len(self.score),
        }


WEIGHTS = (
    (1.0, 1.0, 1.0),  # the recipe as shipped: first, so it wins ties
    (2.0, 1.0, 1.0),
    (1.0, 2.0, 1.0),
    (1.0, 1.0, 2.0),
    (1.0, 1.0, 0.0),
    (1.0, 0.0, 1.0),
    (0.0, 1.0, 1.0),
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),
)
FULL_GRID = Grid(
    train=tuple(
        TrainSetting(epochs_scale=e, latent=z) for e, z in itertools.product((1.0, 2.0), (32, 64))
    ),
    score=tuple(
        ScoreSetting(k, ka, w) for k, ka, w in itertools.product((5, 10, 20), (5, 10, 20), WEIGHTS)
    ),
)
QUICK_GRID = Grid(
    train=(TrainSetting(epochs_scale=0.1), TrainSetting(epochs_scale=0.25)),
    score=tuple(
        ScoreSetting(k, 10, w) for k, w in itertools.product((5, 10), WEIGHTS[:1] + WEIGHTS[4:7])
    ),
)


def members(train: TrainSetting, weights=(1.0, 1.0, 1.0)) -> tuple[house_recipe.Member, ...]:
    """The recipe's two members at ``train``'s sizes, giving only the scores that weigh."""
    dense = tuple(k for k, w in zip(("residual",), weights[:1], strict=True) if w)
    conv = tuple(k for k, w in zip(("latent", "angle"), weights[1:], strict=True) if w)
    recipe = []
    if dense:
        recipe.append(house_recipe.Member("dense", dense, train.latent, 0, train.dense_widths))
    if conv:
        recipe.append(house_recipe.Member("conv", conv, train.latent, 1, train.conv_channels))
    return tuple(recipe)


def weighted_rank_average(parts: dict[str, np.ndarray], weights) -> np.ndarray:
    """Weighted mean of the ranks of the three scores (keys as PARTS), scaled to (0, 1]."""
    used = [(parts[name], w) for name, w in zip(PARTS, weights, strict=True) if w]
    ranks = [rankdata(np.asarray(values, dtype=np.float64)) for values, _ in used]
    return np.average(ranks, axis=0, weights=[w for _, w in used]) / len(used[0][0])


def _part_name(key: str) -> str:
    """``"dense32 residual"`` -> ``"dense residual"`` (the code size dropped)."""
    label, kind = key.split(" ")
    return f"{label.rstrip('0123456789')} {kind}"


def selection_split(
    train_images: np.ndarray, train_labels: np.ndarray, normal_class: int, seed: int = 0
) -> AnomalyTask:
    """The validation task of one class, from the training split alone (see module doc)."""
    rng = np.random.default_rng([seed, normal_class])
    normal = np.flatnonzero(train_labels == normal_class)
    held = np.sort(rng.choice(normal, size=max(1, round(len(normal) * HELD_OUT)), replace=False))
    others = np.unique(train_labels[train_labels != normal_class])
    per_class = -(-len(held) * ANOMALIES_PER_NORMAL // len(others))
    anomalies = np.concatenate(
        [
            rng.choice(np.flatnonzero(train_labels == c), size=per_class, replace=False)
            for c in others
        ]
    )
    order = np.sort(np.concatenate([held, anomalies]))
    return AnomalyTask(
        name=f"class {normal_class} (selection)",
        train_images=train_images[np.setdiff1d(normal, held)],
        test_images=train_images[order],
        test_labels=(train_labels[order] != normal_class).astype(np.int64),
    )


def validation_aucs(
    task: AnomalyTask, grid: Grid, *, device, seed: int, progress: bool = False
) -> list[dict]:
    """Validation AUC of every grid point on ``task``: one training per TrainSetting."""
    train_data = to_device(task.train_images, device)
    test_data = to_device(task.test_images, device)
    rows = []
    for train in grid.train:
        steps = house_recipe.training_steps(train.epochs_scale)
        trained = [
            (member, *house_recipe.train_member(member, train_data, task.image_shape, steps=steps,
                                        seed=seed, progress=progress))
            for member in members(train)
        ]  # fmt: skip
        by_k: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        for score in grid.score:
            key = (score.knn, score.knn_angle)
            if key not in by_k:
                by_k[key] = {}
                for member, model, generator in trained:
                    parts = house_recipe.member_scores(
                        model, train_data, test_data, member.scores, generator,
                        knn=score.knn, knn_angle=score.knn_angle,
                    )  # fmt: skip
                    by_k[key].update({f"{member.kind} {k}": v for k, v in parts.items()})
            final = weighted_rank_average(by_k[key], score.weights)
            rows.append(
                {
                    "train": asdict(train),
                    "score": asdict(score),
                    "auc": anomaly.roc_auc(task.test_labels, final),
                }
            )
    return rows


def select(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    normal_class: int,
    grid: Grid,
    *,
    device,
    seed: int,
    split_seed: int = 0,
) -> dict:
    """Choose one class's setting from its training split; returns the choice and the table.

    Takes the training images and labels only: no test image or label can reach it.
    """
    task = selection_split(train_images, train_labels, normal_class, split_seed)
    rows = validation_aucs(task, grid, device=device, seed=seed)
    best = max(range(len(rows)), key=lambda i: (rows[i]["auc"], -i))  # first of equals
    return {
        "chosen": {"train": rows[best]["train"], "score": rows[best]["score"]},
        "validation_auc": rows[best]["auc"],
        "validation_normals": int((task.test_labels == 0).sum()),
        "validation_anomalies": int(task.test_labels.sum()),
        "selection_train_images": len(task.train_images),
        "grid_aucs": [row["auc"] for row in rows],
    }


def final_scores(task: AnomalyTask, chosen: dict, *, device, seed: int) -> np.ndarray:
    """The chosen setting trained on all of ``task``'s training images, scoring its test
    split: ``hw8.house_recipe.run_recipe`` with the chosen members and kNN, then the weighted rank
    average of their scores."""
    train = TrainSetting(**{k: tuple(v) if isinstance(v, list) else v
                            for k, v in chosen["train"].items()})  # fmt: skip
    score = ScoreSetting(**{**chosen["score"], "weights": tuple(chosen["score"]["weights"])})
    parts = house_recipe.run_recipe(
        task,
        device=device,
        seed=seed,
        epochs_scale=train.epochs_scale,
        progress=False,
        recipe=members(train, score.weights),
        knn=score.knn,
        knn_angle=score.knn_angle,
    )
    parts = {_part_name(k): v for k, v in parts.items() if k != "recipe"}
    return weighted_rank_average(parts, score.weights)
