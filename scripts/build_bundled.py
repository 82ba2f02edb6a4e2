"""Build the bundled data set: a fixed, seeded subset of Fashion-MNIST.

10,000 training images (1,000 per class) and 2,000 test images (200 per class), 28x28x1
uint8, saved as a compressed .npz inside the package. This script documents how the file
was made; users never need to run it. Source: the Debian package `dataset-fashion-mnist`.

    python scripts/build_bundled.py [--data-dir /usr/share/datasets/fashion-mnist]
"""

import argparse
from pathlib import Path

import numpy as np

from hw8.datasets import BUNDLED_FILE, DEBIAN_FASHION_MNIST_DIR, load_fashion_mnist

SEED = 20230401
TRAIN_PER_CLASS = 1000
TEST_PER_CLASS = 200


def balanced_subset(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` random images of every class, in ascending order."""
    picks = [
        rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False)
        for c in np.unique(labels)
    ]
    return np.sort(np.concatenate(picks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEBIAN_FASHION_MNIST_DIR)
    parser.add_argument("--out", type=Path, default=Path("hw8/data") / BUNDLED_FILE)
    args = parser.parse_args()
    data = load_fashion_mnist(args.data_dir)
    rng = np.random.default_rng(SEED)
    train = balanced_subset(data.train_labels, TRAIN_PER_CLASS, rng)
    test = balanced_subset(data.test_labels, TEST_PER_CLASS, rng)
    np.savez_compressed(
        args.out,
        train_images=data.train_images[train],
        train_labels=data.train_labels[train].astype(np.uint8),
        test_images=data.test_images[test],
        test_labels=data.test_labels[test].astype(np.uint8),
    )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
