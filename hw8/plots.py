"""Figures: reconstructions, ROC curves, score histograms, loss curves (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.metrics import roc_curve


def _finish(figure, path: Path | str | None):
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def to_display(images) -> np.ndarray:
    """uint8 NHWC arrays or [-1, 1] float NCHW tensors to floats in [0, 1], NHWC."""
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu()
        return ((images.permute(0, 2, 3, 1) + 1) / 2).clamp(0, 1).numpy()
    return np.asarray(images, dtype=np.float32) / 255.0


def show_images(axis, image: np.ndarray) -> None:
    """Draw one [0, 1] HWC image on ``axis`` without ticks (grey for one channel)."""
    if image.shape[-1] == 1:
        axis.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
    else:
        axis.imshow(image)
    axis.set_axis_off()


def plot_reconstructions(originals, reconstructions, path=None, titles=("input", "output")):
    """Two rows: originals above their reconstructions."""
    return plot_image_rows({titles[0]: originals, titles[1]: reconstructions}, path)


def plot_roc(labels, scores_by_name: dict, path=None):
    """ROC curves of several detectors on the same labels (1 = anomaly)."""
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    for name, scores in scores_by_name.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        axis.plot(fpr, tpr, label=name)
    axis.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="chance")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    axis.legend(fontsize=8)
    return _finish(figure, path)


def plot_score_histograms(labels, scores, path=None, bins: int = 40):
    """Histograms of the scores of normal and anomalous test images."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    figure, axis = plt.subplots(figsize=(5, 3.2))
    edges = np.histogram_bin_edges(scores, bins=bins)
    axis.hist(scores[labels == 0], bins=edges, alpha=0.6, label="normal")
    axis.hist(scores[labels == 1], bins=edges, alpha=0.6, label="anomaly")
    axis.set(xlabel="anomaly score", ylabel="images")
    axis.legend()
    return _finish(figure, path)


def plot_loss_curve(losses, path=None):
    """Mean training loss per epoch."""
    figure, axis = plt.subplots(figsize=(5, 3.2))
    axis.plot(np.arange(1, len(losses) + 1), losses, marker="o", markersize=3)
    axis.set(xlabel="epoch", ylabel="training loss", yscale="log")
    return _finish(figure, path)


def plot_image_rows(rows: dict, path=None):
    """One row of images per entry of ``rows`` (title -> uint8 NHWC or [-1, 1] NCHW)."""
    shown = {title: to_display(images) for title, images in rows.items()}
    count = max(len(images) for images in shown.values())
    figure, axes = plt.subplots(len(shown), count, figsize=(1.1 * count, 1.25 * len(shown)))
    axes = np.array(axes).reshape(len(shown), count)
    for row, (title, images) in enumerate(shown.items()):
        for column in range(count):
            if column < len(images):
                show_images(axes[row, column], images[column])
            else:
                axes[row, column].set_axis_off()
        axes[row, 0].set_title(title, fontsize=8, loc="left")
    return _finish(figure, path)


def plot_latent_scatter(codes, labels, class_names=None, path=None):
    """Scatter of 2-D latent codes ``(N, 2)``, one colour per class label."""
    codes = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    labels = np.asarray(labels)
    figure, axis = plt.subplots(figsize=(6, 5))
    for label in np.unique(labels):
        chosen = labels == label
        name = class_names[label] if class_names is not None else str(label)
        axis.scatter(codes[chosen, 0], codes[chosen, 1], s=4, alpha=0.6, label=name)
    axis.set(xlabel="$z_1$", ylabel="$z_2$", title="latent codes of the test images")
    axis.legend(fontsize=7, markerscale=3, loc="best")
    return _finish(figure, path)


def latent_grid(n: int = 15, dims: tuple[int, int] = (0, 1), latent: int = 2, edge: float = 0.05):
    """Codes on a grid over the prior N(0, I), as in Kingma and Welling (2014), figure 4.

    The two chosen dimensions ``dims`` take the values ``Phi^{-1}(u)`` (the inverse normal
    CDF) for ``n`` evenly spaced probabilities ``u`` from ``edge`` to ``1 - edge``, so
    that every cell of the grid holds the same prior mass; the other dimensions stay at
    0, the prior's mean. Returns ``(values, codes)``: the ``n`` values of one axis, and
    the ``(n * n, latent)`` codes, row by row, the first dimension of ``dims`` along the
    columns and the second down the rows (largest at the top).
    """
    if n < 2 or not 0 < edge < 0.5 or len(set(dims)) != 2 or not all(0 <= d < latent for d in dims):
        raise ValueError(
            f"latent_grid: expected n >= 2, 0 < edge < 0.5 and two different dims in "
            f"0..{latent - 1}; found n={n}, edge={edge}, dims={tuple(dims)}."
        )
    u = torch.linspace(edge, 1 - edge, n, dtype=torch.float64)
    values = torch.distributions.Normal(0.0, 1.0).icdf(u).float()
    codes = torch.zeros(n, n, latent)
    codes[:, :, dims[0]] = values.view(1, n)
    codes[:, :, dims[1]] = values.flip(0).view(n, 1)
    return values, codes.view(n * n, latent)


@torch.no_grad()
def plot_latent_grid(decode, latent: int = 2, n: int = 15, dims=(0, 1), device=None, path=None):
    """Decode a grid of codes over the prior (:func:`latent_grid`) into one tiled figure.

    ``decode`` maps codes ``(M, latent)`` to images ``(M, C, H, W)`` in [-1, 1] (a
    model's ``decode``); the codes are made on ``device`` (default: the CPU).
    """
    values, codes = latent_grid(n, dims, latent)
    images = to_display(decode(codes.to(device or "cpu")))
    height, width, channels = images.shape[1:]
    tiles = images.reshape(n, n, height, width, channels).transpose(0, 2, 1, 3, 4)
    mosaic = tiles.reshape(n * height, n * width, channels)
    figure, axis = plt.subplots(figsize=(6, 6))
    if channels == 1:
        axis.imshow(mosaic[..., 0], cmap="gray", vmin=0, vmax=1)
    else:
        axis.imshow(mosaic)
    ticks = np.arange(n) * height + height / 2
    labels = [f"{v:.1f}" for v in values.tolist()]
    axis.set_xticks(np.arange(n) * width + width / 2, labels, fontsize=7)
    axis.set_yticks(ticks, labels[::-1], fontsize=7)
    axis.set(
        xlabel=f"$z_{dims[0] + 1}$",
        ylabel=f"$z_{dims[1] + 1}$",
        title="decoded codes over the prior (grid of equal prior mass)",
    )
    return _finish(figure, path)


def plot_kl_per_dimension(kl_by_name: dict, threshold: float = 0.01, path=None):
    """Mean KL of each latent dimension, largest first, one line per model (log scale).

    ``kl_by_name`` maps a label to the KL per dimension (nats, averaged over images);
    the dashed line is ``threshold``, the level below which a dimension counts as
    collapsed (inactive: its posterior is the prior whatever the image).
    """
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for name, kl in kl_by_name.items():
        kl = kl.detach().cpu().numpy() if isinstance(kl, torch.Tensor) else np.asarray(kl)
        ordered = np.sort(kl)[::-1]
        axis.plot(np.arange(1, len(ordered) + 1), np.maximum(ordered, 1e-5), "o-", label=name)
    axis.axhline(threshold, color="black", linestyle="--", linewidth=0.8, label="active above")
    axis.set(
        yscale="log",
        xlabel="latent dimension (sorted by KL)",
        ylabel="mean KL (nats)",
        title="KL per latent dimension",
    )
    axis.legend(fontsize=7)
    return _finish(figure, path)
