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
