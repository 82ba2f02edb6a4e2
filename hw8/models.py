"""Autoencoders: the three course sample models, exactly as HW8 ships them, and stronger ones.

Every model takes normalised images ``(N, C, H, W)`` in [-1, 1] and offers the same
three methods, so the training loop and the scorers need not know which one they hold:

* ``encode(x)``: the latent code, one row per image;
* ``reconstruct(x)``: the reconstruction, same shape as ``x`` (a VAE decodes its mean);
* ``loss(x)``: the scalar training loss.

The sample stacks are written for 64x64x3. On other sizes (28x28x1 Fashion-MNIST) the
fully connected models change their first and last layer width, and the convolutional
ones pad the image with background (-1) to a multiple of 8 and crop the output back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence

from hw8.settings import HW8_IMAGE_SHAPE

HW8_SHAPE = (HW8_IMAGE_SHAPE[2], *HW8_IMAGE_SHAPE[:2])  # channels first, as the models take it


class Autoencoder(nn.Module):
    """Base class: stores the model's name and image shape ``(C, H, W)``.

    Every model maps normalised images ``(N, C, H, W)`` to codes with :meth:`encode` (one
    row of numbers per image) and codes back to images with :meth:`decode`.
    """

    name = "autoencoder"

    def __init__(self, image_shape: tuple[int, int, int] = HW8_SHAPE):
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code of each image: ``(N, C, H, W)`` -> ``(N, code size)``."""
        raise NotImplementedError(f"{type(self).__name__} must define encode(x).")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images from codes: ``(N, code size)`` -> ``(N, C, H, W)``."""
        raise NotImplementedError(f"{type(self).__name__} must define decode(z).")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x``."""
        return self.decode(self.encode(x))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic reconstruction of ``x``, same shape as ``x``."""
        return self.forward(x)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared reconstruction error over every pixel of the batch."""
        return F.mse_loss(self.forward(x), x)


def _flat_size(image_shape) -> int:
    return math.prod(image_shape)


def pad_to_multiple(x: torch.Tensor, multiple: int = 8) -> torch.Tensor:
    """Pad height and width with background (-1) up to a multiple of ``multiple``."""
    pad_h, pad_w = (-x.shape[2]) % multiple, (-x.shape[3]) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), value=-1.0)


def crop(x: torch.Tensor, image_shape) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: keep the top-left ``(H, W)`` of ``image_shape``."""
    return x[:, :, : image_shape[1], : image_shape[2]]


# ----------------------------------------------------------------------------- samples


class SampleFCN(Autoencoder):
    """The course sample fcn: 12288-128-64-12-3 and back, ReLU between, Tanh at the end."""

    name = "fcn"

    def __init__(self, image_shape=HW8_SHAPE):
        super().__init__(image_shape)
        size = _flat_size(self.image_shape)
        self.encoder = nn.Sequential(
            nn.Linear(size, 128),
            nn.ReLU(),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Linear(64, 12),
            nn.ReLU(),
            nn.Linear(12, 3),
        )
        self.decoder = nn.Sequential(
            nn.Linear(3, 12),
            nn.ReLU(),
            nn.Linear(12, 64),
            nn.ReLU(),
            nn.Linear(64, 128),
            nn.ReLU(),
            nn.Linear(128, size),
            nn.Tanh(),
        )

    def encode(self, x):
        """Flatten and encode to the 3-dimensional code."""
        return self.encoder(x.flatten(1))

    def decode(self, z):
        """Decode a code to an image of ``image_shape``."""
        return self.decoder(z).view(-1, *self.image_shape)


def _sample_conv_decoder(out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(48, 24, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(24, 12, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(12, out_channels, 4, stride=2, padding=1),
        nn.Tanh(),
    )


def _sample_code_shape(image_shape) -> tuple[int, int, int]:
    """The sample cnn/vae code as a feature map: 48 channels, 1/8 of the padded size."""
    return (48, math.ceil(image_shape[1] / 8), math.ceil(image_shape[2] / 8))


class SampleCNN(Autoencoder):
    """The course sample cnn: three stride-2 convolutions (3-12-24-48) and back."""

    name = "cnn"

    def __init__(self, image_shape=HW8_SHAPE):
        super().__init__(image_shape)
        channels = self.image_shape[0]
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, 12, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(12, 24, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(24, 48, 4, stride=2, padding=1),
            nn.ReLU(),
        )
        self.decoder = _sample_conv_decoder(channels)

    def encode(self, x):
        """The 48-channel feature map, flattened to one row per image."""
        return self.encoder(pad_to_multiple(x)).flatten(1)

    def decode(self, z):
        """Images from flattened 48-channel feature maps."""
        return crop(
            self.decoder(z.view(len(z), *_sample_code_shape(self.image_shape))), self.image_shape
        )

    def forward(self, x):
        """Reconstruct ``x``."""
        return crop(self.decoder(self.encoder(pad_to_multiple(x))), self.image_shape)


def posterior(mu: torch.Tensor, logvar: torch.Tensor) -> Normal:
    """q(z | x) = N(mu, exp(logvar)), element by element, as a torch distribution."""
    return Normal(mu, torch.exp(0.5 * logvar))


def kl_to_prior(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z | x) || N(0, 1)) of every element, by ``torch.distributions``, in at least
    float32.

    Under bfloat16 autocast ``mu`` and ``logvar`` arrive in bfloat16, whose 8-bit mantissa
    cancels the KL of a posterior near the prior (``var - 1 - log var``) to noise; the
    terms are computed in at least float32 whatever the inputs' precision.
    """
    precision = torch.promote_types(torch.promote_types(mu.dtype, logvar.dtype), torch.float32)
    mu, logvar = mu.to(precision), logvar.to(precision)
    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return kl_divergence(posterior(mu, logvar), prior)


class SampleVAE(Autoencoder):
    """The course sample vae, flaws included.

    Its mean and log-variance heads both end in a ReLU: every mean is >= 0 (the codes
    fill one orthant of the prior) and the log-variance can never be negative (every
    posterior standard deviation is at least 1, as wide as the prior). This copy keeps
    both flaws on purpose; ``conv_vae`` is the repaired model. Loss as in the sample:
    mean squared error (mean over pixels) plus the KL divergence summed over the batch,
    which weighs the KL N * D / 2 times more than ``0.5 * SSE + KL`` per image would
    (N images of D pixels in a batch; notebooks 03 and 04 derive it).
    """

    name = "vae"

    def __init__(self, image_shape=HW8_SHAPE):
        super().__init__(image_shape)
        channels = self.image_shape[0]
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, 12, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(12, 24, 4, stride=2, padding=1),
            nn.ReLU(),
        )
        self.enc_out_1 = nn.Sequential(nn.Conv2d(24, 48, 4, stride=2, padding=1), nn.ReLU())
        self.enc_out_2 = nn.Sequential(nn.Conv2d(24, 48, 4, stride=2, padding=1), nn.ReLU())
        self.decoder = _sample_conv_decoder(channels)

    def encode_distribution(self, x):
        """Mean and log-variance feature maps of q(z | x)."""
        hidden = self.encoder(pad_to_multiple(x))
        return self.enc_out_1(hidden), self.enc_out_2(hidden)

    def encode(self, x):
        """The posterior mean, flattened to one row per image."""
        return self.encode_distribution(x)[0].flatten(1)

    def decode(self, z):
        """Images from flattened 48-channel codes."""
        return crop(
            self.decoder(z.view(len(z), *_sample_code_shape(self.image_shape))), self.image_shape
        )

    def forward(self, x):
        """Sample z with the reparameterization trick; return (x_hat, mu, logvar)."""
        mu, logvar = self.encode_distribution(x)
        z = posterior(mu, logvar).rsample()
        return crop(self.decoder(z), self.image_shape), mu, logvar

    def reconstruct(self, x):
        """Decode the posterior mean (no sampling), so scores are deterministic."""
        mu, _ = self.encode_distribution(x)
        return crop(self.decoder(mu), self.image_shape)

    def loss(self, x):
        """The sample's loss: MSE (mean) + KL summed over every element of the batch."""
        x_hat, mu, logvar = self.forward(x)
        return F.mse_loss(x_hat, x) + kl_to_prior(mu, logvar).sum()


# ----------------------------------------------------------------------------- stronger


class WideFCN(Autoencoder):
    """A wide fully connected autoencoder with BatchNorm and PReLU: D-``widths``-``latent``
    and back (by default D-1024-256-64)."""

    name = "wide_fcn"

    def __init__(self, image_shape=HW8_SHAPE, widths=(1024, 256), latent: int = 64):
        super().__init__(image_shape)
        size = _flat_size(self.image_shape)
        sizes = (size, *widths)
        encoder = [dense_block(a, b) for a, b in zip(sizes, sizes[1:], strict=False)]
        self.encoder = nn.Sequential(*encoder, nn.Linear(sizes[-1], latent))
        back = (latent, *reversed(widths))
        decoder = [dense_block(a, b) for a, b in zip(back, back[1:], strict=False)]
        self.decoder = nn.Sequential(*decoder, nn.Linear(back[-1], size), nn.Tanh())

    def encode(self, x):
        """Flatten and encode to the latent code."""
        return self.encoder(x.flatten(1))

    def decode(self, z):
        """Decode a code to an image of ``image_shape``."""
        return self.decoder(z).view(-1, *self.image_shape)


def dense_block(size_in: int, size_out: int) -> nn.Sequential:
    """Linear, then BatchNorm and PReLU."""
    return nn.Sequential(nn.Linear(size_in, size_out), nn.BatchNorm1d(size_out), nn.PReLU())


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm, added to the input (He et al., 2016)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        """x + F(x), then ReLU."""
        return F.relu(x + self.body(x))


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        ResidualBlock(c_out),
    )


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        ResidualBlock(c_out),
    )


class ResNetAE(Autoencoder):
    """A ResNet-style convolutional autoencoder with a dense bottleneck.

    Three stride-2 stages with a residual block each (32-64-128 channels), a linear
    bottleneck of ``latent`` numbers, and the mirror image as decoder. The encoder can
    emit ``outputs_per_latent`` numbers per latent dimension (2: a mean and a
    log-variance, for a VAE).
    """

    name = "resnet_ae"
    channels = (32, 64, 128)

    def __init__(self, image_shape=HW8_SHAPE, latent: int = 64, outputs_per_latent: int = 1):
        super().__init__(image_shape)
        self.latent = latent
        c_img, height, width = self.image_shape
        self.grid = (math.ceil(height / 8), math.ceil(width / 8))
        c1, c2, c3 = self.channels
        self.encoder = nn.Sequential(_down(c_img, c1), _down(c1, c2), _down(c2, c3))
        flat = c3 * self.grid[0] * self.grid[1]
        self.to_latent = nn.Linear(flat, outputs_per_latent * latent)
        self.from_latent = nn.Sequential(nn.Linear(self.latent, flat), nn.ReLU())
        self.decoder = nn.Sequential(
            _up(c3, c2), _up(c2, c1), nn.ConvTranspose2d(c1, c_img, 4, 2, 1), nn.Tanh()
        )

    def encode(self, x):
        """The latent code, ``latent`` numbers per image."""
        return self.to_latent(self.encoder(pad_to_multiple(x)).flatten(1))

    def decode(self, z):
        """Decode a code to an image of ``image_shape``."""
        hidden = self.from_latent(z).view(-1, self.channels[-1], *self.grid)
        return crop(self.decoder(hidden), self.image_shape)


class ConvVAE(Autoencoder):
    """A convolutional VAE without the sample's flaw: linear mean and log-variance heads.

    Loss: the negative ELBO per image with a unit-variance Gaussian decoder up to
    constants, averaged over the batch: 0.5 * sum of squared errors + KL(q(z|x) || N(0, I)).
    """

    name = "conv_vae"
    latent = 32

    def __init__(self, image_shape=HW8_SHAPE):
        super().__init__(image_shape)
        self.backbone = ResNetAE(image_shape, latent=self.latent, outputs_per_latent=2)

    def encode_distribution(self, x):
        """Mean and log-variance of q(z | x), each ``(N, latent)``."""
        return self.backbone.encode(x).chunk(2, dim=1)

    def encode(self, x):
        """The posterior mean."""
        return self.encode_distribution(x)[0]

    def decode(self, z):
        """Images from codes ``(N, latent)``."""
        return self.backbone.decode(z)

    def forward(self, x):
        """Sample z with the reparameterization trick; return (x_hat, mu, logvar)."""
        mu, logvar = self.encode_distribution(x)
        return self.backbone.decode(posterior(mu, logvar).rsample()), mu, logvar

    def reconstruct(self, x):
        """Decode the posterior mean (no sampling)."""
        return self.backbone.decode(self.encode(x))

    def loss(self, x):
        """Negative ELBO per image (Gaussian decoder, unit variance), batch mean."""
        x_hat, mu, logvar = self.forward(x)
        reconstruction = 0.5 * F.mse_loss(x_hat, x, reduction="none").flatten(1).sum(1)
        return (reconstruction + kl_to_prior(mu, logvar).flatten(1).sum(1)).mean()


MODELS = {cls.name: cls for cls in (SampleFCN, SampleCNN, SampleVAE, WideFCN, ResNetAE, ConvVAE)}
MODEL_NAMES = tuple(MODELS)
SAMPLE_MODEL_NAMES = ("fcn", "cnn", "vae")


def build_model(name: str, image_shape: tuple[int, int, int] = HW8_SHAPE) -> Autoencoder:
    """Build a model by name for images of ``image_shape`` ``(C, H, W)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}.")
    if len(image_shape) != 3 or image_shape[0] not in (1, 3) or min(image_shape[1:]) < 8:
        raise ValueError(
            f"image shape {tuple(image_shape)}: expected (C, H, W) with C in (1, 3) and "
            "H, W >= 8, for example (3, 64, 64) for HW8 or (1, 28, 28) for Fashion-MNIST."
        )
    return MODELS[name](image_shape)
