"""Build the nbgrader source notebooks 01-03 (vanilla, denoising, variational autoencoders).

    python scripts/build_notebooks.py          # writes notebooks/hw8/01_*, 02_*, 03_*.ipynb
    python scripts/build_notebooks.py --check  # exit 1 if the committed files differ

The notebooks are the instructor version: solutions between ``### BEGIN SOLUTION`` and
``### END SOLUTION``, locked autograded test cells with visible tests and a ``### BEGIN
HIDDEN TESTS`` block, and a few answers graded by hand. They are written without outputs,
with stable cell ids, code formatted by ruff. Edit this script, not the notebooks, and
rebuild (assets/autoencoder.png is embedded; redraw it with scripts/draw_assets.py).
Notebooks 04 and 05 come from scripts/build_notebooks_04_05.py.

Test cells check answers against independent references (torch.nn.functional,
torch.distributions, closed forms, statistics) through ``hw8.grading``; a check that
fails tells the student, in words, what is wrong.
"""

from __future__ import annotations

import base64
import sys

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from notebook_tools import KERNELSPEC, ROOT, nbgrader_meta, src, write_or_check

DIAGRAM = ROOT / "assets" / "autoencoder.png"


class Builder:
    """Collects the cells of one notebook; nbgrader cells get unique, stable grade_ids."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.cells = []

    def _add(self, cell, metadata: dict | None = None) -> None:
        if metadata:
            cell.metadata.update(metadata)
            cell.id = metadata["nbgrader"]["grade_id"]
        else:
            cell.id = f"{self.prefix}-free-{len(self.cells):02d}"
        self.cells.append(cell)

    def _auto_id(self) -> str:
        return f"{self.prefix}-cell-{len(self.cells):02d}"

    def md(self, text: str, attachments: dict | None = None) -> None:
        """A locked markdown cell (prose and maths)."""
        cell = new_markdown_cell(src(text))
        if attachments:
            cell.attachments = attachments
        self._add(cell, nbgrader_meta(self._auto_id(), locked=True))

    def code(self, text: str) -> None:
        """A code cell students run (and may change: it is not graded)."""
        self._add(new_code_cell(src(text)))

    def solution(self, name: str, text: str) -> None:
        """An exercise: what the student writes lies between the SOLUTION markers."""
        self._add(new_code_cell(src(text)), nbgrader_meta(f"{self.prefix}-{name}", solution=True))

    def test(self, name: str, points: int, text: str) -> None:
        """A locked, autograded test cell worth ``points``."""
        meta = nbgrader_meta(f"{self.prefix}-{name}", grade=True, locked=True, points=points)
        self._add(new_code_cell(src(text)), meta)

    def written(self, name: str, points: int, text: str) -> None:
        """An answer graded by hand; ``text`` is the model answer (cleared on release)."""
        meta = nbgrader_meta(f"{self.prefix}-{name}", grade=True, solution=True, points=points)
        self._add(new_markdown_cell(src(text)), meta)

    def notebook(self):
        nb = new_notebook(cells=self.cells)
        nb.metadata["kernelspec"] = KERNELSPEC
        nb.metadata["language_info"] = {"name": "python"}
        return nb


HOW_TO = """
    **How this notebook works.** Run the cells from top to bottom (Shift+Enter). Each
    exercise is a cell with `# YOUR CODE HERE` and `raise NotImplementedError()`: replace
    those two lines with your code. The locked cell after it tests your answer: run it; it
    prints `OK ...` lines when your code is right and otherwise says what is wrong. When you
    hand in, more (hidden) tests of the same kind run, so make the visible ones pass *and*
    follow the specification in the text. Cells marked *answer in words* are read by a
    person. Do not copy or delete cells; `nbgrader validate` (see the README) tells you
    whether everything passes before you submit.

    Every function you write must work on any device (CPU, CUDA, Apple MPS) and any float
    dtype: create new tensors on the input's device and with its dtype, never modify an
    input in place, and use PyTorch operations only (so that gradients flow).
"""


DATASET_NAMES = ["load_bundled", "normalize", "to_device"]


def setup(*, math=False, numpy=False, nn=False, classes=False) -> str:
    """The first code cell: imports (the common ones and those asked for), device, data."""
    datasets = ", ".join((["FASHION_MNIST_CLASSES"] if classes else []) + DATASET_NAMES)
    lines = [
        *(["import math"] if math else []),
        "import time",
        "",
        "import matplotlib.pyplot as plt",
        *(["import numpy as np"] if numpy else []),
        "import torch",
        "import torch.nn.functional as F",
        *(["from torch import nn"] if nn else []),
        "",
        "from hw8 import grading",
        f"from hw8.datasets import {datasets}",
        "from hw8.device import default_device, seed_everything",
        "from hw8.models import Autoencoder",
        "from hw8.train import quick_slice, scaled_epochs, train",
        "",
        "device = default_device()  # CUDA or Apple MPS when present, else the CPU",
        "data = load_bundled()  # Fashion-MNIST subset: uint8 images, shape (N, 28, 28, 1)",
        "# all 10,000 training images (HW8_QUICK=1, set by the course's tests, takes a few)",
        "train_images = data.train_images[: quick_slice(len(data.train_images))]",
        'print(f"device: {device}; train images {data.train_images.shape}, "',
        '      f"test images {data.test_images.shape}")',
    ]
    return "\n".join(lines)


# =============================================================================== 01


def build_01():
    nb = Builder("ae01")
    diagram = base64.b64encode(DIAGRAM.read_bytes()).decode("ascii")
    nb.md(
        r"""
        # 1. The vanilla autoencoder

        HW8 asks you to find *anomalies*: images unlike the ones a model was trained on.
        The tool of the whole homework is the **autoencoder**, a network trained to copy its
        input to its output through a narrow middle. In this notebook you

        1. write the two reconstruction losses, **MSE** and **BCE**, from their formulas;
        2. build a fully connected autoencoder with a bottleneck of a given size;
        3. train it on the bundled Fashion-MNIST images (28x28, one channel) and look at
           its reconstructions and at its 2-D latent space.
        """
    )
    nb.md(HOW_TO)
    nb.code(setup(math=True, nn=True, classes=True))
    nb.md(
        r"""
        ## The idea

        ![An autoencoder: encoder, bottleneck, decoder](attachment:autoencoder.png)

        The **encoder** $f$ maps an image $x \in \mathbb{R}^{D}$ ($D = 28 \cdot 28 = 784$)
        to a short **latent code** $z$; the **decoder** $g$ maps the code back to an image
        $\hat{x}$:

        $$z = f(x) \in \mathbb{R}^{k}, \qquad \hat{x} = g(z) \in \mathbb{R}^{D},
        \qquad k \ll D.$$

        The middle layer of width $k$ is the **bottleneck**. Because $k$ is small, the
        network cannot simply copy pixels: it has to learn what the training images have in
        common. Training makes the **reconstruction** $\hat{x}$ close to $x$ by minimising a
        reconstruction loss $L(\hat{x}, x)$ averaged over the training images:

        $$\min_{f, g} \; \frac{1}{N} \sum_{n=1}^{N} L\big(g(f(x_n)),\, x_n\big).$$

        For HW8 this is the whole trick: a model trained on normal images only reconstructs
        normal images well, so a **large reconstruction error flags an anomaly**.

        Images enter the models *normalised* to $[-1, 1]$ (`2 * pixel / 255 - 1`, as in the
        course sample), with shape `(N, C, H, W)`: here `(N, 1, 28, 28)`.
        """,
        attachments={"autoencoder.png": {"image/png": diagram}},
    )
    nb.md(
        r"""
        ## Exercise 1: mean squared error (2 points)

        The mean squared error between a reconstruction $\hat{x}$ and its target $x$, both
        holding $D$ numbers in total (batch included), is

        $$\mathrm{MSE}(\hat{x}, x) = \frac{1}{D} \sum_{i=1}^{D} (\hat{x}_i - x_i)^2 .$$

        Write `mse_loss(x_hat, x)`:

        - **in:** two tensors of the same shape, any shape (for example `(N, 1, 28, 28)`);
        - **out:** a tensor of shape `()` (a scalar tensor, not a Python float), with the
          dtype and device of the inputs: the mean over *every* element.

        Use tensor operations only; do not call `torch.nn.functional.mse_loss` (the test
        compares your function with it).
        """
    )
    nb.solution(
        "mse-loss",
        '''
        def mse_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            """Mean squared error over every element: a scalar tensor."""
            ### BEGIN SOLUTION
            return (x_hat - x).pow(2).mean()
            ### END SOLUTION
        ''',
    )
    nb.test(
        "test-mse-loss",
        2,
        """
        # Tests for mse_loss: against torch.nn.functional.mse_loss, on every device.


        def _images_pair(device, dtype):
            g = torch.Generator().manual_seed(0)
            x_hat = torch.rand(8, 1, 28, 28, generator=g, dtype=dtype) * 2 - 1
            x = torch.rand(8, 1, 28, 28, generator=g, dtype=dtype) * 2 - 1
            return (x_hat.to(device), x.to(device))


        grading.check_on_devices(
            mse_loss,
            _images_pair,
            name="mse_loss(x_hat, x)",
            reference=F.mse_loss,
            reference_name="torch.nn.functional.mse_loss",
            dtypes=(torch.float32, torch.float64),
            hint="square the differences and average over every element, batch included.",
        )
        _x = torch.zeros(2, 1, 4, 4)
        grading.assert_close(
            mse_loss(_x + 0.5, _x),
            torch.tensor(0.25),
            name="mse_loss(x + 0.5, x)",
            reference="0.5 ** 2, worked out by hand",
        )
        ### BEGIN HIDDEN TESTS
        _x_hat = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
        _x = torch.randn(3, 5, dtype=torch.float64)
        mse_loss(_x_hat, _x).backward()
        grading.assert_close(
            _x_hat.grad,
            2 * (_x_hat.detach() - _x) / _x.numel(),
            name="the gradient of mse_loss with respect to x_hat",
            reference="2 (x_hat - x) / D",
            hint="use torch operations only (no .item(), no numpy) so that autograd can follow.",
        )
        grading.assert_close(
            mse_loss(_x, _x), torch.tensor(0.0, dtype=torch.float64), name="mse_loss(x, x)",
            reference="zero",
        )
        ### END HIDDEN TESTS
        """,
    )
    nb.md(
        r"""
        ## Exercise 2: binary cross-entropy, safe at 0 and 1 (2 points)

        When pixels are read as probabilities in $[0, 1]$ (for our images: $(x + 1) / 2$),
        the reconstruction $\hat{x}_i$ is the probability that pixel $i$ is "on" and the
        binary cross-entropy, averaged over all $D$ elements, is

        $$\mathrm{BCE}(\hat{x}, x) = -\frac{1}{D} \sum_{i=1}^{D}
        \Big[ x_i \log \hat{x}_i + (1 - x_i) \log (1 - \hat{x}_i) \Big].$$

        A model can output exactly $0$ or $1$ (a saturated sigmoid), and $\log 0 = -\infty$:
        the loss or its gradient becomes `inf` or `nan` and training breaks. Make your BCE
        **numerically safe**: clamp $\hat{x}$ into $[\epsilon, 1 - \epsilon]$ with a small
        $\epsilon$ such as `1e-7` before taking logs (PyTorch's own BCE instead clamps each
        log at $-100$; both give finite values and gradients).

        Write `bce_loss(x_hat, x)`:

        - **in:** `x_hat` (probabilities in $[0, 1]$) and `x` (targets in $[0, 1]$), same
          shape, any shape;
        - **out:** a scalar tensor (shape `()`, the inputs' dtype and device), finite even
          where `x_hat` is exactly 0 or 1, with a finite gradient there too.

        Do not call `torch.nn.functional.binary_cross_entropy` (the test compares with it).
        """
    )
    nb.solution(
        "bce-loss",
        '''
        def bce_loss(x_hat: torch.Tensor, x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
            """Binary cross-entropy averaged over every element, finite at 0 and 1."""
            ### BEGIN SOLUTION
            p = x_hat.clamp(eps, 1 - eps)
            return -(x * torch.log(p) + (1 - x) * torch.log1p(-p)).mean()
            ### END SOLUTION
        ''',
    )
    nb.test(
        "test-bce-loss",
        2,
        """
        # Tests for bce_loss: against torch.nn.functional.binary_cross_entropy; safe at 0 and 1.


        def _probabilities(device, dtype):
            g = torch.Generator().manual_seed(1)
            x_hat = torch.rand(8, 1, 28, 28, generator=g, dtype=dtype) * 0.98 + 0.01
            x = torch.rand(8, 1, 28, 28, generator=g, dtype=dtype)
            return (x_hat.to(device), x.to(device))


        grading.check_on_devices(
            bce_loss,
            _probabilities,
            name="bce_loss(x_hat, x)",
            reference=F.binary_cross_entropy,
            reference_name="torch.nn.functional.binary_cross_entropy",
            dtypes=(torch.float32, torch.float64),
            hint="-(x log(x_hat) + (1 - x) log(1 - x_hat)), averaged over every element.",
        )
        _edges = torch.tensor([0.0, 1.0, 0.0, 1.0], requires_grad=True)
        _targets = torch.tensor([0.0, 1.0, 1.0, 0.0])
        _loss = bce_loss(_edges, _targets)
        assert torch.isfinite(_loss), (
            f"bce_loss gave {_loss.item()} for predictions exactly 0 and 1; it must stay finite. "
            "Clamp x_hat into [eps, 1 - eps] before taking the log."
        )
        _loss.backward()
        assert torch.isfinite(_edges.grad).all(), (
            f"the gradient of bce_loss at x_hat = 0 and 1 is {_edges.grad.tolist()}; it must be "
            "finite, or one saturated pixel ruins training. Clamp x_hat into [eps, 1 - eps] "
            "before the log (clamping the log itself gives 0 * inf = nan in the gradient)."
        )
        print("OK  bce_loss is finite, with a finite gradient, at x_hat = 0 and 1")
        ### BEGIN HIDDEN TESTS
        _perfect = bce_loss(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0]))
        assert _perfect < 1e-4, (
            f"a perfect prediction (x_hat == x, 0 or 1) should cost about 0, got {_perfect.item()}"
        )
        _wrong = bce_loss(torch.tensor([0.0]), torch.tensor([1.0]))
        assert _wrong > 10, (
            f"predicting 0 for a pixel that is 1 should cost a lot (-log(eps) > 10), got "
            f"{_wrong.item()}: is eps too large? Use something like 1e-7."
        )
        grading.check_on_devices(
            bce_loss,
            lambda device, dtype: (
                torch.linspace(0.001, 0.999, 37, dtype=dtype, device=device).view(37, 1),
                torch.linspace(1.0, 0.0, 37, dtype=dtype, device=device).view(37, 1),
            ),
            name="bce_loss on predictions from 0.001 to 0.999",
            reference=F.binary_cross_entropy,
            reference_name="torch.nn.functional.binary_cross_entropy",
            dtypes=(torch.float64,),
        )
        ### END HIDDEN TESTS
        """,
    )
    nb.md(
        r"""
        ## Exercise 3: a fully connected autoencoder (3 points)

        Build `DenseAutoencoder(bottleneck)`, a subclass of `hw8.models.Autoencoder` (which
        supplies `forward(x) = decode(encode(x))`, a `reconstruct` method and the training
        loop's interface). With $D = 784$ and $k$ = `bottleneck`:

        | part | layers |
        | --- | --- |
        | `self.encoder` | `Linear(D, 256)`, ReLU, `Linear(256, 64)`, ReLU, `Linear(64, k)` |
        | `self.decoder` | `Linear(k, 64)`, ReLU, `Linear(64, 256)`, ReLU, `Linear(256, D)`, Tanh |

        No activation after the encoder's last layer (the code may take any real value); a
        Tanh after the decoder's last layer (the images lie in $[-1, 1]$).

        - `encode(x)`: **in** `(N, 1, 28, 28)`, flatten each image to `(N, 784)`, **out**
          `(N, k)`;
        - `decode(z)`: **in** `(N, k)`, **out** `(N, 1, 28, 28)` (use `self.image_shape`,
          which is `(1, 28, 28)`).

        The `loss` method is given: the MSE of the reconstruction, with *your* `mse_loss`.
        """
    )
    nb.solution(
        "dense-autoencoder",
        '''
        class DenseAutoencoder(Autoencoder):
            """784 -> 256 -> 64 -> bottleneck -> 64 -> 256 -> 784, ReLU between, Tanh at the end."""

            name = "dense_ae"

            def __init__(self, bottleneck: int = 2, image_shape=(1, 28, 28)):
                super().__init__(image_shape)
                self.bottleneck = bottleneck
                size = math.prod(self.image_shape)
                ### BEGIN SOLUTION
                self.encoder = nn.Sequential(
                    nn.Linear(size, 256),
                    nn.ReLU(),
                    nn.Linear(256, 64),
                    nn.ReLU(),
                    nn.Linear(64, bottleneck),
                )
                self.decoder = nn.Sequential(
                    nn.Linear(bottleneck, 64),
                    nn.ReLU(),
                    nn.Linear(64, 256),
                    nn.ReLU(),
                    nn.Linear(256, size),
                    nn.Tanh(),
                )
                ### END SOLUTION

            def encode(self, x: torch.Tensor) -> torch.Tensor:
                """(N, 1, 28, 28) images -> (N, bottleneck) codes."""
                ### BEGIN SOLUTION
                return self.encoder(x.flatten(1))
                ### END SOLUTION

            def decode(self, z: torch.Tensor) -> torch.Tensor:
                """(N, bottleneck) codes -> (N, 1, 28, 28) images in [-1, 1]."""
                ### BEGIN SOLUTION
                return self.decoder(z).view(-1, *self.image_shape)
                ### END SOLUTION

            def loss(self, x: torch.Tensor) -> torch.Tensor:
                """The training loss: your MSE between the reconstruction and the input."""
                return mse_loss(self(x), x)
        ''',
    )
    nb.test(
        "test-dense-autoencoder",
        3,
        """
        # Tests for DenseAutoencoder: shapes, output range, layer sizes, every device.
        for _k in (2, 7):
            _model = DenseAutoencoder(bottleneck=_k)
            _x = torch.rand(5, 1, 28, 28) * 2 - 1
            _z = _model.encode(_x)
            grading.assert_tensor(
                _z, name=f"DenseAutoencoder({_k}).encode(x) for x of shape (5, 1, 28, 28)",
                shape=(5, _k),
            )
            _x_hat = _model.decode(_z)
            grading.assert_tensor(
                _x_hat, name=f"DenseAutoencoder({_k}).decode(z) for z of shape (5, {_k})",
                shape=(5, 1, 28, 28),
            )
            assert _x_hat.abs().max() <= 1, (
                "the decoder's outputs must lie in [-1, 1] like the images: end it with nn.Tanh()."
            )
        print("OK  encode and decode give the right shapes; outputs lie in [-1, 1]")
        _sizes = [(784, 256), (256, 64), (64, 2), (2, 64), (64, 256), (256, 784)]
        _expected = sum(a * b + b for a, b in _sizes)
        _found = sum(p.numel() for p in DenseAutoencoder(bottleneck=2).parameters())
        assert _found == _expected, (
            f"DenseAutoencoder(2) should have {_expected} parameters (layers 784-256-64-2 and "
            f"2-64-256-784, with biases), but it has {_found}. Check the layer sizes."
        )
        print(f"OK  DenseAutoencoder(2) has {_found} parameters")
        _model = DenseAutoencoder(bottleneck=3)
        grading.check_on_devices(
            lambda x: _model.to(x.device)(x),
            lambda device, dtype: torch.rand(4, 1, 28, 28, device=device) * 2 - 1,
            name="DenseAutoencoder(3)(x)",
        )
        ### BEGIN HIDDEN TESTS
        _model = DenseAutoencoder(bottleneck=4)
        _codes = _model.encode(torch.randn(64, 1, 28, 28) * 3)
        assert (_codes < 0).any(), (
            "the codes are never negative: do not put a ReLU (or Tanh) after the encoder's "
            "last Linear layer."
        )
        _model.zero_grad()
        _x = torch.rand(6, 1, 28, 28) * 2 - 1
        F.mse_loss(_model(_x), _x).backward()
        _no_grad = [n for n, p in _model.named_parameters() if p.grad is None or not p.grad.any()]
        assert not _no_grad, f"no gradient reaches these parameters: {_no_grad}"
        _relus = sum(isinstance(m, nn.ReLU) for m in _model.modules())
        _tanhs = sum(isinstance(m, nn.Tanh) for m in _model.modules())
        assert (_relus, _tanhs) == (4, 1), (
            f"expected 4 ReLU layers and 1 Tanh (see the table), found {_relus} and {_tanhs}."
        )
        ### END HIDDEN TESTS
        """,
    )
    nb.md(
        r"""
        ## Training

        `hw8.train.train` is the course's training loop: Adam, the images moved to the
        device once and shuffled there with a seeded generator, a progress bar. It calls
        `model.loss(batch)` on normalised batches and returns the mean loss of every epoch.

        We train two autoencoders: one with a bottleneck of $k = 2$ numbers (so that we can
        draw the latent space) and one with $k = 16$. On a laptop CPU this takes well under
        a minute; a GPU is faster.
        """
    )
    nb.code(
        """
        seed_everything(0)  # the same initial weights on every run
        models = {k: DenseAutoencoder(bottleneck=k) for k in (2, 16)}
        losses = {}
        for k, model in models.items():
            start = time.perf_counter()
            losses[k] = train(
                model, train_images, epochs=scaled_epochs(6), batch_size=256, lr=2e-3,
                device=device,
            )
            seconds = time.perf_counter() - start
            print(f"k = {k:2d}: {seconds:.1f} s, final loss {losses[k][-1]:.4f}")

        fig, ax = plt.subplots(figsize=(5, 3))
        for k, curve in losses.items():
            ax.plot(range(1, len(curve) + 1), curve, marker="o", label=f"bottleneck k = {k}")
        ax.set(xlabel="epoch", ylabel="training MSE", yscale="log")
        ax.legend()
        plt.show()
        """
    )
    nb.md(
        r"""
        ## Reconstructions

        Test images (never seen in training) and their reconstructions. The reconstruction
        error per image, here the MSE, is exactly what HW8 turns into an anomaly score.
        """
    )
    nb.code(
        """
        from hw8.anomaly import reconstruction_scores
        from hw8.plots import plot_image_rows

        shown = data.test_images[:10]
        with torch.no_grad():
            x = normalize(to_device(shown, device))
            rows = {"input": shown}
            for k, model in models.items():
                rows[f"k = {k}"] = model.eval().reconstruct(x)
        plot_image_rows(rows)
        plt.show()
        for k, model in models.items():
            errors = reconstruction_scores(model, data.test_images, metric="mse", device=device)
            print(f"k = {k:2d}: mean test MSE {errors.mean():.4f}")
        """
    )
    nb.md(
        r"""
        ## The latent space

        With $k = 2$ every image becomes a point in the plane. Colour the codes of the test
        images by their class (the model never saw the labels).
        """
    )
    nb.code(
        """
        from hw8.plots import plot_latent_scatter

        with torch.no_grad():
            codes = models[2].encode(normalize(to_device(data.test_images, device)))
        plot_latent_scatter(codes, data.test_labels, FASHION_MNIST_CLASSES)
        plt.show()
        """
    )
    nb.md(
        r"""
        ## Question (answer in words, 2 points)

        What does the size $k$ of the bottleneck change? Compare $k = 2$ and $k = 16$ above:
        reconstruction quality, what the reconstructions keep and lose, and what would
        happen with $k \ge 784$. For anomaly detection, why could a bottleneck that is *too
        large* be as bad as one that is too small?
        """
    )
    nb.written(
        "bottleneck-answer",
        2,
        r"""
        A larger $k$ lets more information through: with $k = 16$ the test MSE is lower and
        the reconstructions keep shapes and some texture, while with $k = 2$ they are blurry
        class prototypes (every sandal looks like the same average sandal). The bottleneck
        forces the network to keep what is common to the training data and to drop details.
        With $k \ge 784$ nothing forces compression: the network can learn (close to) the
        identity and reconstruct *anything*, including images unlike the training set. For
        anomaly detection that is fatal, because anomalies are then reconstructed as well as
        normal images and their error no longer stands out; too small a $k$ fails the other
        way, reconstructing normal images badly too. A good $k$ keeps normal images well
        reconstructed and anomalies poorly reconstructed.
        """,
    )
    nb.md(
        r"""
        **Next:** `02_denoising_autoencoder.ipynb` trains an autoencoder to remove noise,
        which forces it to learn the structure of images instead of copying pixels.
        """
    )
    return nb.notebook()


# =============================================================================== 02


def build_02():
    nb = Builder("ae02")
    nb.md(
        r"""
        # 2. The denoising autoencoder

        An autoencoder with a wide middle can learn to copy pixels without learning anything
        about images. A **denoising autoencoder** (Vincent et al., 2008) is given a
        *corrupted* image $\tilde{x}$ and must output the *clean* one:

        $$\tilde{x} \sim q(\tilde{x} \mid x), \qquad
        \min_{f, g} \; \mathbb{E}_{x,\, \tilde{x}} \,
        \big\lVert g(f(\tilde{x})) - x \big\rVert^2 .$$

        To undo noise it must know what clean images look like, which is what anomaly
        detection needs. Students who passed the HW8 boss baseline often trained with noise.

        You will write four corruptions $q(\tilde{x} \mid x)$: **Gaussian noise**,
        **salt-and-pepper**, **masking** and **dropout noise**; train a denoising
        autoencoder; and compare it with a plain autoencoder by the PSNR of their outputs.
        """
    )
    nb.md(HOW_TO)
    nb.code(setup(nn=True))
    nb.md(
        r"""
        ## Rules for every corruption

        Each function takes a batch `x` of any shape (our images: `(N, 1, 28, 28)`, values in
        $[-1, 1]$) and returns a **new** tensor of the same shape, dtype and device.

        - **Never change `x` in place** (the training loop still needs the clean batch as the
          target): no `x += ...`, `x[mask] = ...` or `x.mul_(...)`; build a new tensor.
        - **Randomness from an optional `torch.Generator`**, so that results can be
          reproduced. Draw random numbers on `x`'s device and with its dtype, like this:

          ```python
          u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
          e = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
          ```

          With `generator=None` PyTorch uses its global generator; a generator passed in
          lives on the same device as `x` (`torch.Generator(device=x.device)`).

        The tests measure each corruption statistically (a noise level, a fraction of
        changed pixels) on many pixels, on every device you have, in float32 and float64.
        """
    )
    nb.md(
        r"""
        ## Exercise 1: Gaussian noise (2 points)

        Add independent Gaussian noise of standard deviation $\sigma$ to every element:

        $$\tilde{x} = x + \sigma \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I).$$

        `gaussian_noise(x, std=0.4, generator=None)`: **in** `x` of any shape; **out** the
        same shape, dtype and device. No clipping.
        """
    )
    nb.solution(
        "gaussian-noise",
        '''
        def gaussian_noise(x: torch.Tensor, std: float = 0.4, generator=None) -> torch.Tensor:
            """x plus Gaussian noise of standard deviation ``std``; x itself is left unchanged."""
            ### BEGIN SOLUTION
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            return x + std * noise
            ### END SOLUTION
        ''',
    )
    nb.test(
        "test-gaussian-noise",
        2,
        """
        # Tests for gaussian_noise: noise statistics, devices, dtypes, no in-place change.


        def _noise_inputs(device, dtype):
            g = torch.Generator(device=device).manual_seed(0)
            return {"x": torch.zeros(200, 1, 28, 28, device=device, dtype=dtype), "std": 0.4,
                    "generator": g}


        def _noise_statistics(out, x, std, generator):
            noise = out - x
            grading.assert_in_band(noise.mean(), 0.0, 0.01, name="mean of the added noise",
                                   verbose=False)
            grading.assert_in_band(noise.std(), std, 0.01, name="std of the added noise",
                                   hint="multiply standard normal noise (torch.randn) by std.",
                                   verbose=False)


        grading.check_on_devices(
            gaussian_noise, _noise_inputs, name="gaussian_noise", check=_noise_statistics,
            dtypes=(torch.float32, torch.float64),
        )
        _x = torch.rand(4, 1, 28, 28) * 2 - 1
        _a = gaussian_noise(_x, 0.4, generator=torch.Generator().manual_seed(3))
        _b = gaussian_noise(_x, 0.4, generator=torch.Generator().manual_seed(3))
        assert torch.equal(_a, _b), (
            "two calls with generators seeded the same gave different noise: draw the noise "
            "with generator=generator."
        )
        print("OK  the same seed gives the same noise")
        ### BEGIN HIDDEN TESTS
        _c = gaussian_noise(_x, 0.4, generator=torch.Generator().manual_seed(4))
        assert not torch.equal(_a, _c), "different seeds must give different noise"
        _shifted = gaussian_noise(_x + 1, 0.4, generator=torch.Generator().manual_seed(3))
        assert torch.allclose(_shifted - (_x + 1), _a - _x, atol=1e-5), (
            "with the same seed, the noise added to x + 1 differs from the noise added to x: "
            "the noise must not depend on the values of x"
        )
        grading.assert_close(gaussian_noise(_x, 0.0), _x, name="gaussian_noise(x, std=0)",
                             reference="x itself")
        _small = gaussian_noise(torch.zeros(100000, dtype=torch.float64), 0.1,
                                generator=torch.Generator().manual_seed(5))
        grading.assert_in_band(_small.std(), 0.1, 0.002, name="std with std=0.1")
        ### END HIDDEN TESTS
        """,
    )
    nb.md(
        r"""
        ## Exercise 2: salt-and-pepper noise (2 points)

        Each element, independently with probability `amount`, is replaced by an extreme
        value: half of the replaced elements (on average) by `low` ("pepper", black), the
        other half by `high` ("salt", white). With $u_i \sim \mathcal{U}(0, 1)$:

        $$\tilde{x}_i = \begin{cases}
        \text{low} & u_i < \text{amount} / 2 \\
        \text{high} & \text{amount} / 2 \le u_i < \text{amount} \\
        x_i & \text{otherwise.}
        \end{cases}$$

        `salt_and_pepper(x, amount=0.2, low=-1.0, high=1.0, generator=None)`: **in** `x` of
        any shape; **out** the same shape, dtype and device. Hint: `torch.where`.
        """
    )
    nb.solution(
        "salt-and-pepper",
        '''
        def salt_and_pepper(
            x: torch.Tensor, amount: float = 0.2, low: float = -1.0, high: float = 1.0,
            generator=None,
        ) -> torch.Tensor:
            """Set a fraction ``amount`` of the elements to ``low`` or ``high`` (half each)."""
            ### BEGIN SOLUTION
            u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            out = torch.where(u < amount, torch.full_like(x, high), x)
            return torch.where(u < amount / 2, torch.full_like(x, low), out)
            ### END SOLUTION
        ''',
    )
    nb.test(
        "test-salt-and-pepper",
        2,
        """
        # Tests for salt_and_pepper: fractions of changed pixels, devices, no in-place change.


        def _sp_inputs(device, dtype):
            g = torch.Generator(device=device).manual_seed(0)
            return {"x": torch.zeros(200, 1, 28, 28, device=device, dtype=dtype), "amount": 0.2,
                    "generator": g}


        def _sp_statistics(out, x, amount, generator):
            changed = out != x
            grading.assert_in_band(changed.double().mean(), amount, 0.01,
                                   name="fraction of changed elements", verbose=False,
                                   hint="replace each element with probability amount.")
            grading.assert_in_band((out == -1).double().mean(), amount / 2, 0.01,
                                   name="fraction set to low (-1)", verbose=False,
                                   hint="half of the replaced elements go to low, half to high.")
            assert torch.isin(out[changed], torch.tensor([-1.0, 1.0], device=out.device,
                                                         dtype=out.dtype)).all(), (
                "changed elements must be exactly low or high"
            )


        grading.check_on_devices(
            salt_and_pepper, _sp_inputs, name="salt_and_pepper", check=_sp_statistics,
            dtypes=(torch.float32, torch.float64),
        )
        _x = torch.rand(4, 1, 28, 28) * 0.5
        _same = [salt_and_pepper(_x, 0.3, generator=torch.Generator().manual_seed(3)) for _ in "ab"]
        assert torch.equal(*_same), "the same seed must give the same result (use generator=)"
        print("OK  the same seed gives the same result")
        ### BEGIN HIDDEN TESTS
        grading.assert_close(salt_and_pepper(_x, 0.0), _x, name="salt_and_pepper(x, amount=0)",
                             reference="x itself")
        _all = salt_and_pepper(_x, 1.0, low=-0.5, high=2.0)
        assert torch.isin(_all, torch.tensor([-0.5, 2.0])).all(), (
            "with amount=1 every element must become low or high (use the low and high arguments)"
        )
        _big = salt_and_pepper(torch.zeros(100000, dtype=torch.float64), 0.5, low=-3.0, high=3.0,
                               generator=torch.Generator().manual_seed(7))
        grading.assert_in_band((_big == 3.0).double().mean(), 0.25, 0.01,
                               name="fraction set to high with amount=0.5")
        ### END HIDDEN TESTS
        """,
    )
    nb.md(
        r"""
        ## Exercise 3: masking random patches (2 points)

        Cut each image into square patches of `patch` x `patch` pixels; each patch of each
        image is, independently with probability `amount`, set to **zero** (on all channels
        at once). The model must fill in the missing parts from the context.

        `mask_patches(x, patch=7, amount=0.25, generator=None)`:

        - **in** `x` of shape `(N, C, H, W)` with `H` and `W` multiples of `patch`;
        - **out** the same shape, dtype and device; every patch either untouched or all zero.

        Hint: draw one uniform number per patch, shape `(N, 1, H // patch, W // patch)`,
        make a keep-mask of 0s and 1s, enlarge it with `repeat_interleave(patch, dim=...)` on
        the last two dimensions, and multiply.
        """
    )
    nb.solution(
        "mask-patches",
        '''
        def mask_patches(
            x: torch.Tensor, patch: int = 7, amount: float = 0.25, generator=None
        ) -> torch.Tensor:
            """Zero each patch x patch square of each image with probability ``amount``."""
            n, _, h, w = x.shape
            ### BEGIN SOLUTION
            u = torch.rand(
                (n, 1, h // patch, w // patch), generator=generator, device=x.device, dtype=x.dtype
            )
            keep = (u >= amount).to(x.dtype)
            keep = keep.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)
            return x * keep
            ### END SOLUTION
        ''',
    )
    nb.test(
        "test-mask-patches",
        2,
        """
        # Tests for mask_patches: masked fraction, whole patches, all channels, devices.


        def _mask_inputs(device, dtype):
            g = torch.Generator(device=device).manual_seed(0)
            return {"x": torch.ones(1000, 3, 28, 28, device=device, dtype=dtype), "patch": 7,
                    "amount": 0.25, "generator": g}


        def _mask_statistics(out, x, patch, amount, generator):
            zero = out == 0
            grading.assert_in_band(zero.double().mean(), amount, 0.015,
                                   name="fraction of masked pixels", verbose=False,
                                   hint="mask each patch with probability amount.")
            assert (zero == zero[:, :1]).all(), "all channels of a pixel must be masked together"
            blocks = zero[:, 0].unflatten(1, (4, patch)).unflatten(3, (4, patch))
            per_block = blocks.sum(dim=(2, 4))  # masked pixels per patch: 0 or all of them
            assert ((per_block == 0) | (per_block == patch * patch)).all(), (
                "every 7x7 patch must be either untouched or all zero: draw one random number "
                "per patch and enlarge the mask with repeat_interleave."
            )
            assert (out[~zero] == 1).all(), "pixels outside the masked patches must not change"


        grading.check_on_devices(
            mask_patches, _mask_inputs, name="mask_patches", check=_mask_statistics,
            dtypes=(torch.float32, torch.float64),
        )
        _x = torch.rand(4, 1, 28, 28) * 2 - 1
        _same = [mask_patches(_x, generator=torch.Generator().manual_seed(3)) for _ in "ab"]
        assert torch.equal(*_same), "the same seed must give the same mask (use generator=)"
        print("OK  the same seed gives the same mask")
        ### BEGIN HIDDEN TESTS
        grading.assert_close(mask_patches(_x, amount=0.0), _x, name="mask_patches(x, amount=0)",
                             reference="x itself")
        _m = mask_patches(torch.ones(2000, 1, 8, 8), patch=4, amount=0.5,
                          generator=torch.Generator().manual_seed(1))
        grading.assert_in_band((_m == 0).double().mean(), 0.5, 0.02,
                               name="masked fraction with patch=4, amount=0.5")
        _per_image = (_m == 0).flatten(1).double().mean(1)
        assert _per_image.std() > 0.1, "different images must get different masks"
        ### END HIDDEN TESTS
        """,
    )
    nb.md(
        r"""
        ## Exercise 4: dropout noise (2 points)

        Drop random features: each element, independently with probability $p$, is set to
        zero, and the survivors are scaled by $1 / (1 - p)$ so that the expected value of
        every element stays the same (this is "inverted" dropout, what
        `torch.nn.functional.dropout` does in training mode):

        $$\tilde{x}_i = \frac{m_i\, x_i}{1 - p}, \qquad m_i \sim \mathrm{Bernoulli}(1 - p),
        \qquad \mathbb{E}[\tilde{x}_i] = x_i .$$

        `dropout_noise(x, p=0.3, generator=None)`: **in** `x` of any shape, `0 <= p < 1`;
        **out** the same shape, dtype and device. Do not call `F.dropout` or `nn.Dropout`
        (they take no generator).
        """
    )
    nb.solution(
        "dropout-noise",
        '''
        def dropout_noise(x: torch.Tensor, p: float = 0.3, generator=None) -> torch.Tensor:
            """Zero each element with probability p; scale the rest by 1 / (1 - p)."""
            ### BEGIN SOLUTION
            u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            return x * (u >= p).to(x.dtype) / (1 - p)
            ### END SOLUTION
        ''',
    )
    nb.test(
        "test-dropout-noise",
        2,
        """
        # Tests for dropout_noise: dropped fraction, scaling, mean kept, devices.


        def _dropout_inputs(device, dtype):
            g = torch.Generator(device=device).manual_seed(0)
            return {"x": torch.ones(200, 1, 28, 28, device=device, dtype=dtype), "p": 0.3,
                    "generator": g}


        def _dropout_statistics(out, x, p, generator):
            grading.assert_in_band((out == 0).double().mean(), p, 0.01,
                                   name="fraction of dropped elements", verbose=False)
            grading.assert_close(out[out != 0], torch.full_like(out[out != 0], 1 / (1 - p)),
                                 name="the elements that survive (x = 1)",
                                 reference="1 / (1 - p)", verbose=False,
                                 hint="scale the survivors by 1 / (1 - p).")
            grading.assert_in_band(out.double().mean(), 1.0, 0.02, name="mean of the output",
                                   verbose=False)


        grading.check_on_devices(
            dropout_noise, _dropout_inputs, name="dropout_noise", check=_dropout_statistics,
            dtypes=(torch.float32, torch.float64),
        )
        _x = torch.rand(4, 1, 28, 28) * 2 - 1
        _same = [dropout_noise(_x, generator=torch.Generator().manual_seed(3)) for _ in "ab"]
        assert torch.equal(*_same), "the same seed must give the same result (use generator=)"
        print("OK  the same seed gives the same result")
        ### BEGIN HIDDEN TESTS
        grading.assert_close(dropout_noise(_x, p=0.0), _x, name="dropout_noise(x, p=0)",
                             reference="x itself")
        _big = torch.rand(100000, dtype=torch.float64) + 0.5
        _out = dropout_noise(_big, p=0.6, generator=torch.Generator().manual_seed(2))
        grading.assert_in_band((_out == 0).double().mean(), 0.6, 0.01,
                               name="dropped fraction with p=0.6")
        _kept = _out != 0
        grading.assert_close(_out[_kept], _big[_kept] / 0.4, name="kept elements with p=0.6",
                             reference="x / (1 - p)")
        ### END HIDDEN TESTS
        """,
    )
    nb.md(
        r"""
        ## A plain and a denoising autoencoder

        Both are the same small, fully connected autoencoder with a code of 128 numbers
        (784 -> 256 -> 128 -> 256 -> 784), small enough to train in seconds on a CPU.

        The plain autoencoder learns $x \mapsto x$. The denoising one learns
        $\tilde{x} \mapsto x$, with one of your four corruptions, chosen at random, applied
        to each training batch. `Denoising` wraps a model so that `hw8.train.train` (which
        calls `model.loss(x)` with clean batches) trains it that way.
        """
    )
    nb.code(
        """
        CORRUPTIONS = {
            "gaussian noise": lambda x, g=None: gaussian_noise(x, std=0.4, generator=g),
            "salt and pepper": lambda x, g=None: salt_and_pepper(x, amount=0.2, generator=g),
            "masking": lambda x, g=None: mask_patches(x, patch=7, amount=0.25, generator=g),
            "dropout": lambda x, g=None: dropout_noise(x, p=0.3, generator=g),
        }


        def random_corruption(x):
            \"\"\"Apply one of the four corruptions, picked at random, to the batch x.\"\"\"
            names = list(CORRUPTIONS)
            return CORRUPTIONS[names[int(torch.randint(len(names), ()))]](x)


        class Denoising(Autoencoder):
            \"\"\"Trains ``model`` to map corrupt(x) back to x (a denoising autoencoder).\"\"\"

            name = "denoising"

            def __init__(self, model, corrupt):
                super().__init__(model.image_shape)
                self.model, self.corrupt = model, corrupt

            def forward(self, x):
                return self.model(x)

            def loss(self, x):
                return F.mse_loss(self.model(self.corrupt(x)), x)


        class WideCodeAutoencoder(Autoencoder):
            \"\"\"784 -> 256 -> 128 -> 256 -> 784: a code of 128 numbers.\"\"\"

            name = "wide_code_ae"

            def __init__(self, image_shape=(1, 28, 28)):
                super().__init__(image_shape)
                size = image_shape[0] * image_shape[1] * image_shape[2]
                self.encoder = nn.Sequential(nn.Linear(size, 256), nn.ReLU(), nn.Linear(256, 128))
                self.decoder = nn.Sequential(
                    nn.ReLU(), nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, size), nn.Tanh()
                )

            def encode(self, x):
                return self.encoder(x.flatten(1))

            def decode(self, z):
                return self.decoder(z).view(-1, *self.image_shape)


        seed_everything(0)
        plain = WideCodeAutoencoder()
        denoiser = Denoising(WideCodeAutoencoder(), random_corruption)
        for name, model in (("plain", plain), ("denoising", denoiser)):
            start = time.perf_counter()
            curve = train(model, train_images, epochs=scaled_epochs(5), batch_size=256,
                          lr=2e-3, device=device)
            print(f"{name}: {time.perf_counter() - start:.1f} s, final loss {curve[-1]:.4f}")
        """
    )
    nb.md(
        r"""
        ## Which one removes noise better? PSNR

        The **peak signal-to-noise ratio** compares an image $\hat{x}$ with the clean $x$;
        for values in $[-1, 1]$ the peak-to-peak range is $2$:

        $$\mathrm{PSNR}(\hat{x}, x) = 10 \log_{10} \frac{2^2}{\mathrm{MSE}(\hat{x}, x)}
        \;\text{dB} \qquad (\text{higher is better; } +10 \text{ dB} = 10\times
        \text{ smaller MSE}).$$

        We corrupt the same 1,000 test images (with a fixed generator) with each
        corruption, then measure the PSNR (from the MSE over all 1,000 images) of the
        corrupted input itself, of the plain autoencoder's output and of the denoising
        autoencoder's output.
        """
    )
    nb.code(
        """
        def psnr(x_hat, x):
            \"\"\"PSNR in dB of a batch of images in [-1, 1], from its mean squared error.\"\"\"
            return (10 * torch.log10(4.0 / (x_hat - x).pow(2).mean())).item()


        clean = normalize(to_device(data.test_images[:1000], device))
        generator = torch.Generator(device=device).manual_seed(1)
        noisy = {name: corrupt(clean, generator) for name, corrupt in CORRUPTIONS.items()}
        plain.eval()
        denoiser.eval()
        print(f"{'corruption':16s} {'input':>8s} {'plain AE':>9s} {'denoising AE':>13s}")
        with torch.no_grad():
            for name, x_tilde in noisy.items():
                scores = [psnr(x_tilde, clean), psnr(plain(x_tilde), clean)]
                scores.append(psnr(denoiser(x_tilde), clean))
                print(f"{name:16s} {scores[0]:7.1f}  {scores[1]:8.1f}  {scores[2]:12.1f}")
        """
    )
    nb.code(
        """
        from hw8.plots import plot_image_rows

        with torch.no_grad():
            for name in ("gaussian noise", "masking"):
                x_tilde = noisy[name][:8]
                plot_image_rows({
                    f"{name}: corrupted": x_tilde,
                    "plain AE": plain(x_tilde),
                    "denoising AE": denoiser(x_tilde),
                    "clean": clean[:8],
                })
                plt.show()
        """
    )
    nb.md(
        r"""
        ## Question (answer in words, 2 points)

        Look at the PSNR table and the figures. The plain autoencoder never saw a
        corrupted image in training, yet it removes much of the pixel noise: why? On which
        corruption does the denoising autoencoder help most, and why there? Why might
        training with corruptions also help the HW8 anomaly detector?
        """
    )
    nb.written(
        "denoising-answer",
        2,
        r"""
        An autoencoder can only output images like the ones it learned to reproduce: it
        projects its input onto what the code can describe. Independent pixel noise
        (Gaussian, salt-and-pepper, dropout) has no structure the code can represent, so
        even the plain autoencoder drops most of it. A masked patch is different: a large
        grey square changes the input a lot, and the plain autoencoder, which never saw
        one, smears it into the garment or decodes the wrong shape, while the denoising
        autoencoder was trained to fill such holes from the context (the rest of the
        garment): masking is where it gains most. On pixel noise the two are
        close (the denoising model solves a harder task, and sees each corruption in only a
        quarter of the batches). For HW8, training with corruptions forces the model to
        learn the structure of normal images instead of something close to the identity,
        so anomalies are reconstructed poorly and stand out; it also regularises against
        overfitting.
        """,
    )
    nb.md(
        r"""
        **Next:** `03_variational_autoencoder.ipynb` makes the latent space a probability
        distribution that we can sample new images from.
        """
    )
    return nb.notebook()


# =============================================================================== 03


def build_03():
    nb = Builder("ae03")
    nb.md(
        r"""
        # 3. The variational autoencoder

        The codes of a plain autoencoder are scattered in an irregular cloud: pick a point
        between them and the decoder gives nonsense. A **variational autoencoder** (VAE;
        Kingma and Welling, 2014) makes the latent space a probability distribution:

        - the encoder outputs, for each image, a Gaussian
          $q(z \mid x) = \mathcal{N}\big(\mu(x), \operatorname{diag} \sigma^2(x)\big)$:
          a mean $\mu$ and, for numerical reasons, a **log-variance**
          $\log \sigma^2$ (any real number; $\sigma = e^{\frac12 \log \sigma^2}$);
        - a code $z$ is *sampled* from it and decoded;
        - a KL-divergence term pulls every $q(z \mid x)$ towards the prior
          $p(z) = \mathcal{N}(0, I)$, so that codes drawn from the prior decode to
          sensible images.

        The loss is the negative **evidence lower bound** (ELBO, notebook 04 derives it):

        $$\mathcal{L}(x) = \underbrace{\mathbb{E}_{q(z \mid x)}\big[-\log p(x \mid z)\big]}
        _{\text{reconstruction}} \;+\; \beta\,
        \underbrace{D_{\mathrm{KL}}\big(q(z \mid x) \,\|\, p(z)\big)}_{\text{regulariser}} .$$

        You will write the reparameterization trick, the KL divergence in closed form, the
        loss and the model; then train it, sample new images, and walk through the latent
        space.

        **A flaw of the course sample.** HW8's sample `vae` puts a ReLU after the
        log-variance head, so $\log \sigma^2 \ge 0$ and $\sigma \ge 1$: the posterior can
        never be narrower than the prior, and the KL term can never reach zero for an
        informative code. The faithful copy in `hw8.models` keeps the flaw on purpose; your
        model (and `hw8.models`' `conv_vae`) must not have it: the log-variance head is
        a plain `Linear` layer.
        """
    )
    nb.md(HOW_TO)
    nb.code(setup(math=True, numpy=True, nn=True, classes=True))
    nb.md(
        r"""
        ## Exercise 1: the reparameterization trick (3 points)

        Sampling $z \sim \mathcal{N}(\mu, \sigma^2)$ directly is not differentiable in $\mu$
        and $\sigma$. Instead, draw the randomness separately and *shift and scale* it:

        $$\varepsilon \sim \mathcal{N}(0, I), \qquad
        z = \mu + \sigma \odot \varepsilon = \mu + e^{\frac12 \log \sigma^2} \odot \varepsilon .$$

        Now $z$ is a differentiable function of $\mu$ and $\log \sigma^2$, and gradients
        reach the encoder: $\partial z / \partial \mu = 1$ and
        $\partial z / \partial \log \sigma^2 = \frac12 \sigma \varepsilon$.

        `reparameterize(mu, logvar, generator=None)`:

        - **in** `mu` and `logvar`, same shape (for example `(N, k)`);
        - **out** `z`, same shape, dtype and device, with gradients flowing to both inputs
          (no `.detach()`, no `torch.no_grad()`, no in-place changes).

        Draw $\varepsilon$ with
        `torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)`.
        """
    )
    nb.solution(
        "reparameterize",
        '''
        def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator=None) -> torch.Tensor:
            """z = mu + exp(logvar / 2) * eps with eps ~ N(0, I); differentiable in mu, logvar."""
            ### BEGIN SOLUTION
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            return mu + torch.exp(0.5 * logvar) * eps
            ### END SOLUTION
        ''',
    )
    nb.test(
        "test-reparameterize",
        3,
        """
        # Tests for reparameterize: sample moments, gradients, devices, reproducibility.


        def _moment_inputs(device, dtype):
            n = 100000
            return {
                "mu": torch.full((n, 2), 1.5, device=device, dtype=dtype),
                "logvar": torch.full((n, 2), math.log(0.25), device=device, dtype=dtype),
                "generator": torch.Generator(device=device).manual_seed(0),
            }


        def _moments(z, mu, logvar, generator):
            grading.assert_in_band(z.mean(), 1.5, 0.01, name="mean of z (mu = 1.5)",
                                   verbose=False)
            grading.assert_in_band(z.std(), 0.5, 0.01, name="std of z (sigma = 0.5)",
                                   hint="sigma = exp(logvar / 2): the log-variance is "
                                        "halved before the exponential.", verbose=False)


        grading.check_on_devices(
            reparameterize, _moment_inputs, name="reparameterize", check=_moments,
            dtypes=(torch.float32, torch.float64),
        )
        _mu = torch.randn(5, 3, requires_grad=True)
        _logvar = torch.randn(5, 3, requires_grad=True)
        _z = reparameterize(_mu, _logvar)
        assert _z.requires_grad, (
            "z does not depend on mu and logvar for autograd: do not use .detach(), "
            "torch.no_grad() or .data; compute z = mu + sigma * eps with torch operations."
        )
        _z.sum().backward()
        assert _mu.grad is not None and _logvar.grad is not None, (
            "no gradient reached mu or logvar: z must be computed from them with torch operations."
        )
        grading.assert_close(_mu.grad, torch.ones_like(_mu), name="dz/dmu", reference="1")
        grading.assert_close(_logvar.grad, 0.5 * (_z - _mu).detach(), name="dz/dlogvar",
                             reference="sigma * eps / 2 = (z - mu) / 2")
        ### BEGIN HIDDEN TESTS
        _same = [reparameterize(torch.zeros(4, 3), torch.zeros(4, 3),
                                generator=torch.Generator().manual_seed(9)) for _ in "ab"]
        assert torch.equal(*_same), "the same seed must give the same z (use generator=)"
        _sure = reparameterize(torch.full((3,), 2.0), torch.full((3,), -60.0))
        grading.assert_close(_sure, torch.full((3,), 2.0), name="z when sigma is almost 0",
                             reference="mu", tol=1e-6)
        _wide = reparameterize(torch.zeros(200000, dtype=torch.float64),
                               torch.full((200000,), math.log(9.0), dtype=torch.float64),
                               generator=torch.Generator().manual_seed(1))
        grading.assert_in_band(_wide.std(), 3.0, 0.03, name="std of z with sigma = 3")
        ### END HIDDEN TESTS
        """,
    )
    nb.md(
        r"""
        ## Exercise 2: the KL divergence in closed form (3 points)

        For a diagonal Gaussian $q = \mathcal{N}(\mu, \operatorname{diag} \sigma^2)$ with $k$
        dimensions and the prior $p = \mathcal{N}(0, I)$ the KL divergence has a closed form:

        $$D_{\mathrm{KL}}(q \,\|\, p) = \frac12 \sum_{j=1}^{k}
        \Big( \mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2 \Big) \;\ge\; 0,$$

        zero exactly when $\mu = 0$ and $\sigma = 1$.

        `gaussian_kl(mu, logvar)`:

        - **in** `mu` and `logvar` of shape `(N, k)`: one Gaussian per example;
        - **out** shape `(N,)`: the KL divergence **of each example**, summed over the $k$
          latent dimensions (not averaged, not summed over the batch); dtype and device of
          the inputs.

        Do not use `torch.distributions` (the test compares with it).
        """
    )
    nb.solution(
        "gaussian-kl",
        '''
        def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
            """KL(N(mu, exp(logvar)) || N(0, I)) per example: (N, k) -> (N,)."""
            ### BEGIN SOLUTION
            return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)
            ### END SOLUTION
        ''',
    )
    nb.test(
        "test-gaussian-kl",
        3,
        """
        # Tests for gaussian_kl: against torch.distributions.kl_divergence, on every device.


        def _reference_kl(mu, logvar):
            q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
            p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
            return torch.distributions.kl_divergence(q, p).sum(dim=1)


        def _gaussians(device, dtype):
            g = torch.Generator().manual_seed(0)
            mu = torch.randn(16, 4, generator=g, dtype=dtype)
            logvar = torch.randn(16, 4, generator=g, dtype=dtype)
            return (mu.to(device), logvar.to(device))


        grading.check_on_devices(
            gaussian_kl,
            _gaussians,
            name="gaussian_kl(mu, logvar) with shape (16, 4)",
            reference=_reference_kl,
            reference_name="torch.distributions.kl_divergence, summed over the latent dimensions",
            dtypes=(torch.float32, torch.float64),
            hint="0.5 * sum over the latent dimensions of (mu^2 + exp(logvar) - 1 - logvar), "
            "one value per example.",
        )
        grading.assert_close(
            gaussian_kl(torch.zeros(3, 5), torch.zeros(3, 5)), torch.zeros(3),
            name="gaussian_kl for q = N(0, I)", reference="zero (q equals the prior)",
        )
        ### BEGIN HIDDEN TESTS
        _mu = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
        _logvar = torch.tensor([[math.log(4.0), 0.0]], dtype=torch.float64)
        grading.assert_close(gaussian_kl(_mu, _logvar),
                             torch.tensor([0.5 * (1 + 4 - 1 - math.log(4.0)) + 0.5 * 4],
                                          dtype=torch.float64),
                             name="gaussian_kl(mu=[1, -2], sigma^2=[4, 1])",
                             reference="the formula worked out by hand")
        _mu = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
        _logvar = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
        _out = gaussian_kl(_mu, _logvar)
        assert (_out >= 0).all(), "a KL divergence is never negative: check the signs"
        _out.sum().backward()
        grading.assert_close(_mu.grad, _mu.detach(), name="d KL / d mu", reference="mu")
        grading.assert_close(_logvar.grad, 0.5 * (_logvar.detach().exp() - 1),
                             name="d KL / d logvar", reference="(exp(logvar) - 1) / 2")
        ### END HIDDEN TESTS
        """,
    )
    nb.md(
        r"""
        ## Exercise 3: the VAE loss (2 points)

        With a Gaussian decoder of unit variance, $-\log p(x \mid z)$ is, up to a constant,
        half the **sum** of squared errors over the $D$ pixels of an image; one sample $z$
        estimates the expectation. The loss of one image is therefore

        $$\mathcal{L}(x) = \frac12 \sum_{i=1}^{D} (\hat{x}_i - x_i)^2
        \;+\; \beta \, D_{\mathrm{KL}}\big(q(z \mid x) \,\|\, p(z)\big),$$

        and **the loss of a batch is the mean of $\mathcal{L}$ over its $N$ images** (sums
        within an image, a mean over images: the loss does not grow with the batch size,
        and both terms keep their relative weight $\beta$). $\beta = 1$ is the VAE;
        $\beta > 1$ pulls harder towards the prior ($\beta$-VAE).

        `vae_loss(x, x_hat, mu, logvar, beta=1.0)`:

        - **in** `x` and `x_hat` of shape `(N, C, H, W)`; `mu` and `logvar` of shape `(N, k)`;
        - **out** a scalar tensor (shape `()`), dtype and device of the inputs.

        You may call your `gaussian_kl`. (The course sample instead adds the *mean* squared
        error per pixel to the KL *summed over the whole batch*: the KL then outweighs the
        reconstruction by a factor of about $D \cdot N$, which is another reason its
        reconstructions are poor.)
        """
    )
    nb.solution(
        "vae-loss",
        '''
        def vae_loss(
            x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
            beta: float = 1.0,
        ) -> torch.Tensor:
            """Mean over the batch of 0.5 * (sum of squared errors) + beta * KL, per image."""
            ### BEGIN SOLUTION
            reconstruction = 0.5 * (x_hat - x).pow(2).flatten(1).sum(dim=1)
            return (reconstruction + beta * gaussian_kl(mu, logvar)).mean()
            ### END SOLUTION
        ''',
    )
    nb.test(
        "test-vae-loss",
        2,
        """
        # Tests for vae_loss: against F.mse_loss and torch.distributions; batch mean.


        def _reference_vae_loss(x, x_hat, mu, logvar, beta=1.0):
            n = x.shape[0]
            reconstruction = 0.5 * F.mse_loss(x_hat, x, reduction="sum") / n
            q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
            p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
            return reconstruction + beta * torch.distributions.kl_divergence(q, p).sum() / n


        def _vae_batch(device, dtype, beta=1.0):
            g = torch.Generator().manual_seed(0)
            x = torch.rand(6, 1, 28, 28, generator=g, dtype=dtype) * 2 - 1
            x_hat = torch.rand(6, 1, 28, 28, generator=g, dtype=dtype) * 2 - 1
            mu = torch.randn(6, 3, generator=g, dtype=dtype)
            logvar = torch.randn(6, 3, generator=g, dtype=dtype)
            return {"x": x.to(device), "x_hat": x_hat.to(device), "mu": mu.to(device),
                    "logvar": logvar.to(device), "beta": beta}


        # your gaussian_kl is tested above; here a reference KL stands in for it, so that a
        # mistake there does not cost points twice
        _student_gaussian_kl = gaussian_kl


        def gaussian_kl(mu, logvar):
            q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
            p = torch.distributions.Normal(torch.zeros_like(mu), 1.0)
            return torch.distributions.kl_divergence(q, p).sum(dim=1)


        try:
            grading.check_on_devices(
                vae_loss, _vae_batch, name="vae_loss", reference=_reference_vae_loss,
                reference_name="0.5 * F.mse_loss(reduction='sum') / N + beta * KL / N",
                dtypes=(torch.float32, torch.float64),
                hint="per image: 0.5 * sum of squared errors + beta * KL; then the mean over "
                "the images of the batch.",
            )
            _zero = _vae_batch("cpu", torch.float32)
            _zero.update(x_hat=_zero["x"], mu=torch.zeros(6, 3), logvar=torch.zeros(6, 3))
            grading.assert_close(vae_loss(**_zero), torch.tensor(0.0),
                                 name="vae_loss for a perfect reconstruction and q = N(0, I)",
                                 reference="zero")
            ### BEGIN HIDDEN TESTS
            grading.check_on_devices(
                vae_loss, lambda device, dtype: _vae_batch(device, dtype, beta=4.0),
                name="vae_loss with beta=4", reference=_reference_vae_loss,
                reference_name="0.5 * SSE / N + 4 * KL / N", dtypes=(torch.float64,),
            )
            _b = _vae_batch("cpu", torch.float64)
            _doubled = {k: torch.cat([v, v]) if torch.is_tensor(v) else v for k, v in _b.items()}
            grading.assert_close(vae_loss(**_doubled), vae_loss(**_b),
                                 name="vae_loss of a batch repeated twice",
                                 reference="vae_loss of the batch (a mean over images)")
            ### END HIDDEN TESTS
        finally:
            gaussian_kl = _student_gaussian_kl
        """,
    )
    nb.md(
        r"""
        ## Exercise 4: the model (3 points)

        A small fully connected VAE with a `latent`-dimensional code ($D = 784$, $k$ =
        `latent`), a subclass of `hw8.models.Autoencoder`:

        | part | layers |
        | --- | --- |
        | `self.encoder` | `Linear(D, 256)`, ReLU |
        | `self.mu_head` | `Linear(256, k)` (no activation) |
        | `self.logvar_head` | `Linear(256, k)` (**no activation**: no ReLU, see the flaw above) |
        | `self.decoder` | `Linear(k, 256)`, ReLU, `Linear(256, D)`, Tanh |

        - `encode_distribution(x)`: **in** `(N, 1, 28, 28)` (flatten to `(N, 784)`), **out**
          a tuple `(mu, logvar)`, each `(N, k)`;
        - `decode(z)`: **in** `(N, k)`, **out** `(N, 1, 28, 28)` in $[-1, 1]$;
        - `forward(x)`: **out** the tuple `(x_hat, mu, logvar)`, where `x_hat` decodes a
          code `z` drawn with your `reparameterize`.

        Given: `encode(x)` (the mean code), `reconstruct(x)` (decodes the mean: no
        randomness, used for anomaly scores) and `loss(x)` (your `vae_loss`).
        """
    )
    nb.solution(
        "vae-model",
        '''
        class VAE(Autoencoder):
            """784 -> 256 -> (mu, logvar) of size latent; latent -> 256 -> 784 with Tanh."""

            name = "dense_vae"

            def __init__(self, latent: int = 2, image_shape=(1, 28, 28), beta: float = 1.0):
                super().__init__(image_shape)
                self.latent, self.beta = latent, beta
                size = math.prod(self.image_shape)
                ### BEGIN SOLUTION
                self.encoder = nn.Sequential(nn.Linear(size, 256), nn.ReLU())
                self.mu_head = nn.Linear(256, latent)
                self.logvar_head = nn.Linear(256, latent)
                self.decoder = nn.Sequential(
                    nn.Linear(latent, 256), nn.ReLU(), nn.Linear(256, size), nn.Tanh()
                )
                ### END SOLUTION

            def encode_distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                """(N, 1, 28, 28) -> (mu, logvar), each (N, latent)."""
                ### BEGIN SOLUTION
                hidden = self.encoder(x.flatten(1))
                return self.mu_head(hidden), self.logvar_head(hidden)
                ### END SOLUTION

            def decode(self, z: torch.Tensor) -> torch.Tensor:
                """(N, latent) -> (N, 1, 28, 28) in [-1, 1]."""
                ### BEGIN SOLUTION
                return self.decoder(z).view(-1, *self.image_shape)
                ### END SOLUTION

            def forward(self, x: torch.Tensor):
                """(x_hat, mu, logvar), with z drawn by the reparameterization trick."""
                ### BEGIN SOLUTION
                mu, logvar = self.encode_distribution(x)
                return self.decode(reparameterize(mu, logvar)), mu, logvar
                ### END SOLUTION

            def encode(self, x):
                """The mean code mu(x)."""
                return self.encode_distribution(x)[0]

            def reconstruct(self, x):
                """Decode the mean code: deterministic."""
                return self.decode(self.encode(x))

            def loss(self, x):
                """The negative ELBO of the batch (your vae_loss)."""
                x_hat, mu, logvar = self(x)
                return vae_loss(x, x_hat, mu, logvar, beta=self.beta)
        ''',
    )
    nb.test(
        "test-vae-model",
        3,
        """
        # Tests for VAE: shapes, the log-variance head, sampling, gradients, devices.
        # your reparameterize is tested above; a reference stands in for it here, so that a
        # mistake there does not cost points twice
        _student_reparameterize = reparameterize


        def reparameterize(mu, logvar, generator=None):
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            return mu + torch.exp(0.5 * logvar) * eps


        try:
            _model = VAE(latent=3)
            _x = torch.rand(5, 1, 28, 28) * 2 - 1
            _mu, _logvar = _model.encode_distribution(_x)
            grading.assert_tensor(_mu, name="mu from encode_distribution(x), x of shape "
                                  "(5, 1, 28, 28)", shape=(5, 3))
            grading.assert_tensor(_logvar, name="logvar from encode_distribution(x)", shape=(5, 3))
            _out = _model(_x)
            assert isinstance(_out, tuple) and len(_out) == 3, (
                "forward(x) must return the tuple (x_hat, mu, logvar)"
            )
            grading.assert_tensor(_out[0], name="x_hat from forward(x)", shape=(5, 1, 28, 28))
            assert _out[0].abs().max() <= 1, "x_hat must lie in [-1, 1]: end the decoder with Tanh"
            grading.assert_tensor(_model.decode(torch.zeros(2, 3)), name="decode(z), z of shape "
                                  "(2, 3)", shape=(2, 1, 28, 28))
            print("OK  encode_distribution, decode and forward give the right shapes")
            _many = torch.randn(256, 1, 28, 28) * 3
            assert (_model.encode_distribution(_many)[1] < 0).any(), (
                "logvar is never negative, so sigma is never below 1: remove the activation "
                "(the course sample's ReLU) after the log-variance head."
            )
            print("OK  the log-variance can be negative")
            with torch.no_grad():
                _first, _second = _model(_x)[0], _model(_x)[0]
            assert not torch.equal(_first, _second), (
                "forward(x) gave the same x_hat twice: it must decode a *sampled* z "
                "(reparameterize(mu, logvar)), not mu."
            )
            grading.check_on_devices(
                lambda x: _model.to(x.device)(x),
                lambda device, dtype: torch.rand(4, 1, 28, 28, device=device) * 2 - 1,
                name="VAE(3)(x)",
            )
            _model.cpu()
            ### BEGIN HIDDEN TESTS
            _model = VAE(latent=2)
            _model.zero_grad()
            _x_hat, _mu, _logvar = _model(_x)
            (F.mse_loss(_x_hat, _x) + _mu.pow(2).mean() + _logvar.pow(2).mean()).backward()
            _missing = [
                n for n, p in _model.named_parameters() if p.grad is None or not p.grad.any()
            ]
            assert not _missing, f"no gradient reaches these parameters: {_missing}"
            _sizes = [(784, 256), (256, 2), (256, 2), (2, 256), (256, 784)]
            _expected = sum(a * b + b for a, b in _sizes)
            _found = sum(p.numel() for p in _model.parameters())
            assert _found == _expected, (
                f"VAE(latent=2) should have {_expected} parameters (see the table), found {_found}"
            )
            ### END HIDDEN TESTS
        finally:
            reparameterize = _student_reparameterize
        """,
    )
    nb.md(
        r"""
        ## Training

        A VAE with a 2-D code, so that we can look at its latent space. Same training loop
        as before: it calls your `loss`, which calls your `vae_loss`.
        """
    )
    nb.code(
        """
        from hw8.plots import plot_image_rows, plot_latent_scatter

        seed_everything(0)
        vae = VAE(latent=2)
        start = time.perf_counter()
        curve = train(vae, train_images, epochs=scaled_epochs(10), batch_size=256, lr=2e-3,
                      device=device)
        print(f"{time.perf_counter() - start:.1f} s; final loss {curve[-1]:.2f} per image")
        vae.eval()

        test = normalize(to_device(data.test_images, device))
        with torch.no_grad():
            plot_image_rows({"input": test[:10], "reconstruction": vae.reconstruct(test[:10])})
            plt.show()
            mu, logvar = vae.encode_distribution(test)
        print(f"posterior std: median {torch.exp(0.5 * logvar).median():.3f} (prior: 1)")
        """
    )
    nb.md(
        r"""
        ## The latent space, and images from nowhere

        Left: the mean codes $\mu(x)$ of the test images, coloured by class. Compare with
        the plain autoencoder's 2-D codes in notebook 01: the KL term packs the VAE's codes
        around the origin, roughly like the prior $\mathcal{N}(0, I)$.

        Because the codes fill the prior, **decoding $z \sim \mathcal{N}(0, I)$ gives new
        images**, and walking on a straight line between the codes of two images gives a
        smooth morph (an *interpolation*).
        """
    )
    nb.code(
        """
        plot_latent_scatter(mu, data.test_labels, FASHION_MNIST_CLASSES)
        plt.show()

        generator = torch.Generator(device=device).manual_seed(0)
        with torch.no_grad():
            z = torch.randn(2, 10, 2, generator=generator, device=device)
            samples = {"prior samples": vae.decode(z[0]), "more samples": vae.decode(z[1])}
            first = int(np.flatnonzero(data.test_labels == 7)[0])  # a sneaker
            second = int(np.flatnonzero(data.test_labels == 2)[0])  # a pullover
            t = torch.linspace(0, 1, 10, device=device).unsqueeze(1)
            path = (1 - t) * mu[first] + t * mu[second]
            samples["sneaker -> pullover"] = vae.decode(path)
        plot_image_rows(samples)
        plt.show()
        """
    )
    nb.md(
        r"""
        ## Question (answer in words, 2 points)

        Compare the VAE's latent space with the plain autoencoder's (notebook 01). Why can
        we decode random draws from $\mathcal{N}(0, I)$ with the VAE but not with the plain
        autoencoder? What would the course sample's ReLU on the log-variance do to the
        posterior and to the KL term? What does a larger $\beta$ trade?
        """
    )
    nb.written(
        "vae-answer",
        2,
        r"""
        The plain autoencoder places codes wherever reconstruction is easiest: an irregular
        cloud with gaps and a scale of its own, so a draw from $\mathcal{N}(0, I)$ usually
        lands where no training code lies and decodes to nonsense. The VAE's KL term pulls
        every posterior towards $\mathcal{N}(0, I)$ and its sampling makes each code stand
        for a whole neighbourhood, so the codes fill the prior's region densely and smoothly
        and any prior draw, or any point on a line between two codes, decodes to a
        plausible image. With a ReLU on the log-variance, $\log \sigma^2 \ge 0$: every
        posterior is at least as wide as the prior, the codes are drowned in noise (the
        decoder cannot rely on them) and the KL term can only be lowered by shrinking
        $\mu$, so the reconstructions get blurry. A larger $\beta$ trades reconstruction
        quality for a latent space closer to the prior (smoother, more disentangled, but
        blurrier images; in the limit the code carries no information).
        """,
    )
    nb.md(
        r"""
        **Next:** `04_elbo.ipynb` derives the ELBO that the VAE maximises, and
        `05_anomaly_detection.ipynb` turns reconstruction errors into the HW8 submission.
        """
    )
    return nb.notebook()


# =============================================================================== main


def build_all() -> dict:
    """Notebook file name -> notebook, for 01-03."""
    return {
        "01_vanilla_autoencoder.ipynb": build_01(),
        "02_denoising_autoencoder.ipynb": build_02(),
        "03_variational_autoencoder.ipynb": build_03(),
    }


def main(argv=None) -> int:
    """Write the notebooks, or with --check exit 1 when the committed ones are stale."""
    return write_or_check(build_all, "build_notebooks.py", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
