"""Draw the images the notebooks show (run: python scripts/draw_assets.py).

notebooks/hw8/assets/autoencoder.png: an autoencoder as encoder -> bottleneck (latent
code z) -> decoder, with a bundled Fashion-MNIST image as the input and a blurred copy
standing in for the
reconstruction. It is written to notebooks/hw8/assets/, beside the notebooks, so that
nbgrader copies it into the release and the notebooks link it by a relative path.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Polygon, Rectangle  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hw8.datasets import load_bundled  # noqa: E402

ASSETS = ROOT / "notebooks" / "hw8" / "assets"


def blurred(image: np.ndarray, passes: int = 2) -> np.ndarray:
    """A box-blurred copy of a 2-D image: what a small bottleneck gives back."""
    out = image.astype(np.float64)
    for _ in range(passes):
        padded = np.pad(out, 1, mode="edge")
        out = sum(
            padded[i : i + out.shape[0], j : j + out.shape[1]] for i in range(3) for j in range(3)
        )
        out = out / 9.0
    return out


def draw_autoencoder(path: Path) -> None:
    """Encoder (wide to narrow), bottleneck z, decoder (narrow to wide), x and x-hat."""
    image = load_bundled().train_images[0, :, :, 0]
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=100)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 3.6)
    ax.axis("off")

    ax.imshow(image, cmap="gray", extent=(0.1, 1.5, 1.0, 2.4))
    ax.text(0.8, 0.7, "input $x$\n28x28 = 784 pixels", ha="center", va="top", fontsize=10)
    ax.imshow(blurred(image), cmap="gray", extent=(8.5, 9.9, 1.0, 2.4))
    ax.text(9.2, 0.7, "reconstruction $\\hat{x}$\n784 pixels", ha="center", va="top", fontsize=10)

    encoder = Polygon([(2.0, 0.4), (4.3, 1.25), (4.3, 2.15), (2.0, 3.0)], closed=True)
    decoder = Polygon([(5.7, 1.25), (8.0, 0.4), (8.0, 3.0), (5.7, 2.15)], closed=True)
    for patch, colour, label, x in (
        (encoder, "#8ecae6", "encoder\n$z = f(x)$", 3.1),
        (decoder, "#ffb703", "decoder\n$\\hat{x} = g(z)$", 6.9),
    ):
        patch.set(facecolor=colour, edgecolor="black", linewidth=1.2)
        ax.add_patch(patch)
        ax.text(x, 1.7, label, ha="center", va="center", fontsize=11)
    ax.add_patch(
        Rectangle((4.45, 1.2), 1.1, 1.0, facecolor="#fb8500", edgecolor="black", linewidth=1.2)
    )
    ax.text(5.0, 1.7, "$z$", ha="center", va="center", fontsize=15)
    ax.text(
        5.0, 1.05, "bottleneck\n(latent code,\ne.g. 2 numbers)", ha="center", va="top", fontsize=9
    )
    for start, end in (((1.55, 1.7), (1.95, 1.7)), ((8.05, 1.7), (8.45, 1.7))):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14))
    ax.text(
        5.0,
        3.45,
        "training: make $\\hat{x}$ close to $x$, e.g. minimise $\\mathrm{MSE}(\\hat{x}, x)$",
        ha="center",
        va="center",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def main() -> None:
    ASSETS.mkdir(exist_ok=True)
    draw_autoencoder(ASSETS / "autoencoder.png")
    print(f"wrote {ASSETS / 'autoencoder.png'}")


if __name__ == "__main__":
    main()
