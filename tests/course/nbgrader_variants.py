"""Submissions that test the grader's fairness (tests/course/test_round_trip.py).

- ``ALTERNATIVES``: correct answers written differently from the model solutions (another
  formula, a reused activation module, another valid way to draw random numbers on the
  input's device). Two sets, ``"a"`` and ``"b"``, each handed in as one submission: every
  autograded cell must get full marks.
- ``TRICKS``: a planted wrong answer plus code that tries to fool the tests (patching
  ``hw8.checks.assertions``, numpy or torch, a rigged result object, silencing IPython's error
  display, rebinding the notebook's names, switching the re-check off, ending the kernel).
  A submission with a trick must score no more than the same wrong answer without it.

Each entry replaces the whole source of one solution cell; a trick may also add a cell
right after it (``cell``), as a student can.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from nbgrader_plants import PLANTS, Plant


@dataclass(frozen=True)
class Variant:
    """Replace solution cell ``solution`` by ``source`` (and add ``cell`` after it)."""

    solution: str
    source: str
    what: str
    cell: str = ""

    def __post_init__(self) -> None:
        for field in ("source", "cell"):
            object.__setattr__(self, field, textwrap.dedent(getattr(self, field)).strip("\n"))


def _plant(notebook: str, test: str) -> Plant:
    return next(plant for plant in PLANTS[notebook] if plant.test == test)


ALTERNATIVES: dict[str, dict[str, list[Variant]]] = {
    "a": {
        "01_vanilla_autoencoder": [
            Variant(
                "ae01-solution-mse-loss",
                """
                def mse_loss(x_hat, x):
                    return torch.mean((x_hat - x) ** 2)
                """,
                "torch.mean of the squared difference",
            ),
            Variant(
                "ae01-solution-bce-loss",
                """
                def bce_loss(x_hat, x, eps=1e-7):
                    p = torch.clamp(x_hat, min=eps, max=1 - eps)
                    return -torch.mean(x * torch.log(p) + (1 - x) * torch.log(1 - p))
                """,
                "log(1 - p) instead of log1p(-p)",
            ),
            Variant(
                "ae01-solution-dense-autoencoder",
                """
                class DenseAutoencoder(Autoencoder):
                    name = "dense_ae"

                    def __init__(self, bottleneck=2, image_shape=(1, 28, 28)):
                        super().__init__(image_shape)
                        self.bottleneck = bottleneck
                        size = math.prod(self.image_shape)
                        self.act = nn.ReLU()  # one module, used four times
                        self.e1, self.e2 = nn.Linear(size, 256), nn.Linear(256, 64)
                        self.e3 = nn.Linear(64, bottleneck)
                        self.d1, self.d2 = nn.Linear(bottleneck, 64), nn.Linear(64, 256)
                        self.d3 = nn.Linear(256, size)

                    def encode(self, x):
                        hidden = self.act(self.e2(self.act(self.e1(x.reshape(len(x), -1)))))
                        return self.e3(hidden)

                    def decode(self, z):
                        hidden = self.act(self.d2(self.act(self.d1(z))))
                        return torch.tanh(self.d3(hidden)).reshape(-1, *self.image_shape)

                    def loss(self, x):
                        return mse_loss(self(x), x)
                """,
                "one ReLU module reused four times, torch.tanh in decode",
            ),
        ],
        "02_denoising_autoencoder": [
            Variant(
                "ae02-solution-gaussian-noise",
                """
                def gaussian_noise(x, std=0.4, generator=None):
                    return x + torch.empty_like(x).normal_(0.0, std, generator=generator)
                """,
                "normal_ on a new tensor of x's device and dtype",
            ),
            Variant(
                "ae02-solution-salt-and-pepper",
                """
                def salt_and_pepper(x, amount=0.2, low=-1.0, high=1.0, generator=None):
                    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                    coin = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                    salt, pepper = torch.full_like(x, high), torch.full_like(x, low)
                    value = torch.where(coin < 0.5, pepper, salt)
                    return torch.where(u < amount, value, x)
                """,
                "a second draw decides salt or pepper",
            ),
            Variant(
                "ae02-solution-mask-patches",
                """
                import torch.nn.functional as F


                def mask_patches(x, patch=7, amount=0.25, generator=None):
                    n, _, h, w = x.shape
                    u = torch.rand(
                        (n, 1, h // patch, w // patch),
                        generator=generator,
                        device=x.device,
                        dtype=x.dtype,
                    )
                    keep = F.interpolate((u >= amount).to(x.dtype), scale_factor=patch)
                    return x * keep
                """,
                "the mask enlarged by nearest-neighbour interpolation",
            ),
            Variant(
                "ae02-solution-dropout-noise",
                """
                def dropout_noise(x, p=0.3, generator=None):
                    keep = torch.bernoulli(torch.full_like(x, 1 - p), generator=generator)
                    return x * keep / (1 - p)
                """,
                "torch.bernoulli with the generator",
            ),
        ],
        "03_variational_autoencoder": [
            Variant(
                "ae03-solution-reparameterize",
                """
                def reparameterize(mu, logvar, generator=None):
                    std = logvar.mul(0.5).exp()
                    eps = torch.randn(std.shape, generator=generator, device=std.device,
                                      dtype=std.dtype)
                    return eps.mul(std).add(mu)
                """,
                "method chaining, eps drawn on std's device",
            ),
            Variant(
                "ae03-solution-gaussian-kl",
                """
                def gaussian_kl(mu, logvar):
                    return -0.5 * torch.sum(1 + logvar - mu**2 - torch.exp(logvar), dim=-1)
                """,
                "the textbook sign convention, dim=-1",
            ),
            Variant(
                "ae03-solution-vae-loss",
                """
                def vae_loss(x, x_hat, mu, logvar, beta=1.0):
                    reconstruction = 0.5 * ((x_hat - x) ** 2).reshape(len(x), -1).sum(1)
                    return reconstruction.mean() + beta * gaussian_kl(mu, logvar).mean()
                """,
                "two means instead of the mean of a sum",
            ),
        ],
        "04_elbo": [
            Variant(
                "ae04-solution-true-posterior",
                """
                def true_posterior(x, W, b, s):
                    d = W.shape[1]
                    precision = torch.eye(d, dtype=W.dtype, device=W.device) + W.T @ W / s**2
                    mean = torch.linalg.solve(precision, W.T @ (x - b)) / s**2
                    return mean, torch.cholesky_inverse(torch.linalg.cholesky(precision))
                """,
                "solve and cholesky_inverse instead of inv",
            ),
            Variant(
                "ae04-solution-iwae-bound",
                """
                def iwae_bound(log_weight, K, num_estimates=1000, generator=None):
                    log_w = log_weight((num_estimates, K), generator)
                    return log_w.logsumexp(dim=1).mean(dim=0) - math.log(K)
                """,
                "log K subtracted after the mean",
            ),
            Variant(
                "ae04-solution-decoder-variance",
                """
                def fit_decoder_variance(x, x_hat, per_pixel=False):
                    total = ((x_hat - x) ** 2).sum(dim=0)
                    return total / x.shape[0] if per_pixel else total.sum() / x.numel()
                """,
                "sums over the images, then divides by their number or by all elements",
            ),
        ],
        "05_anomaly_detection": [
            Variant(
                "ae05-solution-anomaly-scores",
                """
                def anomaly_scores(model, images, batch_size=500):
                    device = next(model.parameters()).device
                    model.eval()
                    with torch.inference_mode():
                        parts = [
                            torch.linalg.vector_norm((model.reconstruct(b) - b).flatten(1), dim=1)
                            for b in iterate_batches(to_device(images, device), batch_size)
                        ]
                    return torch.cat(parts).cpu().numpy().astype(np.float64)
                """,
                "torch.linalg.vector_norm under inference_mode",
            ),
            Variant(
                "ae05-solution-roc-auc",
                """
                def roc_auc(labels, scores):
                    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
                    n1 = int((labels == 1).sum())
                    n0 = len(labels) - n1
                    if n1 == 0 or n0 == 0:
                        raise ValueError("the AUC needs both classes")
                    _, inverse = np.unique(scores, return_inverse=True)
                    order = np.argsort(scores, kind="mergesort")
                    ranks = np.empty(len(scores))
                    ranks[order] = np.arange(1, len(scores) + 1)
                    ranks = (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]
                    return float((ranks[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
                """,
                "the Mann-Whitney U statistic from average ranks",
            ),
            Variant(
                "ae05-solution-center-crop",
                """
                def center_crop(images, size):
                    height, width = images.shape[1], images.shape[2]
                    if size <= 0 or size > height or size > width:
                        raise ValueError(f"no {size} x {size} window in {height} x {width}")
                    top = (height - size) // 2
                    left = (width - size) // 2
                    return np.ascontiguousarray(images[:, top:][:, :size, left:][:, :, :size])
                """,
                "two slices each, made contiguous",
            ),
            Variant(
                "ae05-solution-standardized-scores",
                """
                def standardized_scores(train_errors, test_errors, floor=1e-3):
                    sigma = torch.std(train_errors, dim=0, unbiased=True)
                    z = (test_errors - train_errors.mean(dim=0)) / (sigma + floor)
                    return torch.einsum("md,md->m", z, z)
                """,
                "torch.std and einsum",
            ),
            Variant(
                "ae05-solution-choose-score",
                """
                def choose_score(labels, candidate_scores, k=2.0, draws=1000):
                    names = list(candidate_scores)
                    aucs = np.array([roc_auc(labels, candidate_scores[n]) for n in names])
                    best = names[int(np.argmax(aucs))]  # argmax: the first of the highest
                    gaps = [
                        paired_auc_difference(
                            labels, candidate_scores[best], candidate_scores[n], draws=draws
                        )
                        for n in names
                    ]
                    within = [g.value <= k * g.standard_error for g in gaps]
                    return names[within.index(True)]
                """,
                "np.argmax, and a paired bootstrap for every candidate (the best included)",
            ),
            Variant(
                "ae05-solution-choose-fit",
                """
                def choose_fit(labels, errors, fit_errors, k=2.0, floor=1e-3, draws=1000):
                    scores = {}
                    for name, fit in fit_errors.items():
                        z = (errors - fit.mean(0)) / (fit.std(0) + floor)
                        scores[name] = (z * z).sum(1).cpu().numpy()
                    return choose_score(labels, scores, k, draws)
                """,
                "the z-scores written inline instead of calling standardized_scores",
            ),
        ],
    },
    "b": {
        "01_vanilla_autoencoder": [
            Variant(
                "ae01-solution-mse-loss",
                """
                def mse_loss(x_hat, x):
                    # prints what a student might print while the tests run: its input
                    # history, its arguments and its globals (none may reach feedback)
                    print(get_ipython().user_ns.get("In", [])[-2:], x_hat.flatten()[:4], x)
                    print(sorted(name for name in globals() if not name.startswith("__")))
                    difference = (x_hat - x).double()  # float64 inside
                    total = (difference * difference).sum() / difference.numel()
                    return total.to(x_hat.dtype)
                """,
                "a sum divided by the number of elements, in float64, printing its inputs",
            ),
            Variant(
                "ae01-solution-bce-loss",
                """
                def bce_loss(x_hat, x, eps=1e-7):
                    p = x_hat.clamp(eps, 1 - eps)
                    terms = torch.xlogy(x, p) + torch.xlogy(1 - x, 1 - p)
                    return -terms.sum() / terms.numel()
                """,
                "torch.xlogy",
            ),
            Variant(
                "ae01-solution-dense-autoencoder",
                """
                print(f"the demonstration's BCE floor: {target_entropy:.4f}")  # a demo's name


                class DenseAutoencoder(Autoencoder):
                    name = "dense_ae"

                    def __init__(self, bottleneck=2, image_shape=(1, 28, 28)):
                        super().__init__(image_shape)
                        self.bottleneck = bottleneck
                        size = math.prod(self.image_shape)
                        self.encoder = nn.Sequential(
                            nn.Flatten(), nn.Linear(size, 256), nn.ReLU(), nn.Linear(256, 64),
                            nn.ReLU(), nn.Linear(64, bottleneck),
                        )
                        self.decoder = nn.Sequential(
                            nn.Linear(bottleneck, 64), nn.ReLU(), nn.Linear(64, 256), nn.ReLU(),
                            nn.Linear(256, size), nn.Tanh(), nn.Unflatten(1, self.image_shape),
                        )

                    def encode(self, x):
                        return self.encoder(x)

                    def decode(self, z):
                        return self.decoder(z)

                    def loss(self, x):
                        return mse_loss(self(x), x)
                """,
                "nn.Flatten and nn.Unflatten; the cell first prints a demonstration's variable",
            ),
        ],
        "02_denoising_autoencoder": [
            Variant(
                "ae02-solution-gaussian-noise",
                """
                def gaussian_noise(x, std=0.4, generator=None):
                    noise = x.new_empty(x.shape).normal_(generator=generator)
                    return noise * std + x
                """,
                "new_empty(...).normal_(), scaled afterwards",
            ),
            Variant(
                "ae02-solution-salt-and-pepper",
                """
                def salt_and_pepper(x, amount=0.2, low=-1.0, high=1.0, generator=None):
                    u = x.new_empty(x.shape).uniform_(generator=generator)
                    return torch.where(u < amount / 2, low, torch.where(u < amount, high, x))
                """,
                "uniform_ and torch.where with Python numbers",
            ),
            Variant(
                "ae02-solution-dropout-noise",
                """
                def dropout_noise(x, p=0.3, generator=None):
                    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                    return torch.where(u > p, x / (1 - p), torch.zeros_like(x))
                """,
                "torch.where with a strict comparison",
            ),
        ],
        "03_variational_autoencoder": [
            Variant(
                "ae03-solution-reparameterize",
                """
                def reparameterize(mu, logvar, generator=None):
                    eps = torch.randn(mu.size(), generator=generator, device=mu.device,
                                      dtype=mu.dtype)
                    return mu + torch.sqrt(torch.exp(logvar)) * eps
                """,
                "sqrt(exp(logvar)) for sigma",
            ),
            Variant(
                "ae03-solution-vae-loss",
                """
                def vae_loss(x, x_hat, mu, logvar, beta=1.0):
                    total = 0.5 * (x_hat - x).pow(2).sum() + beta * gaussian_kl(mu, logvar).sum()
                    return total / x.shape[0]
                """,
                "sums over the batch divided by its size",
            ),
            Variant(
                "ae03-solution-vae-model",
                """
                class VAE(Autoencoder):
                    name = "dense_vae"

                    def __init__(self, latent=2, image_shape=(1, 28, 28), beta=1.0):
                        super().__init__(image_shape)
                        self.latent, self.beta = latent, beta
                        size = math.prod(self.image_shape)
                        self.hidden = nn.Linear(size, 256)
                        self.heads = nn.Linear(256, 2 * latent)  # mu and logvar in one layer
                        self.up, self.out = nn.Linear(latent, 256), nn.Linear(256, size)

                    def encode_distribution(self, x):
                        h = torch.relu(self.hidden(x.flatten(1)))
                        mu, logvar = self.heads(h).chunk(2, dim=1)
                        return mu, logvar

                    def decode(self, z):
                        h = torch.relu(self.up(z))
                        return torch.tanh(self.out(h)).view(-1, *self.image_shape)

                    def forward(self, x):
                        mu, logvar = self.encode_distribution(x)
                        return self.decode(reparameterize(mu, logvar)), mu, logvar

                    def encode(self, x):
                        return self.encode_distribution(x)[0]

                    def reconstruct(self, x):
                        return self.decode(self.encode(x))

                    def loss(self, x):
                        x_hat, mu, logvar = self(x)
                        return vae_loss(x, x_hat, mu, logvar, beta=self.beta)
                """,
                "one Linear layer for both heads, functional activations",
            ),
        ],
        "04_elbo": [
            Variant(
                "ae04-solution-log-joint",
                """
                def log_joint(x, z, W, b, s):
                    D, d = W.shape
                    mean = torch.einsum("ij,...j->...i", W, z) + b
                    log_prior = -0.5 * (z * z).sum(-1) - 0.5 * d * math.log(2 * math.pi)
                    squared = ((x - mean) / s).pow(2).sum(-1)
                    log_lik = -0.5 * squared - D * math.log(s) - 0.5 * D * math.log(2 * math.pi)
                    return log_prior + log_lik
                """,
                "einsum and the constants written another way",
            ),
            Variant(
                "ae04-solution-elbo-estimate",
                """
                def elbo_estimate(x, W, b, s, q_mean, q_scale_tril, num_samples=1000,
                                  generator=None):
                    eps = torch.randn(num_samples, q_mean.numel(), generator=generator,
                                      device=q_mean.device, dtype=q_mean.dtype)
                    z = q_mean + (q_scale_tril @ eps.T).T
                    log_q = MultivariateNormal(q_mean, scale_tril=q_scale_tril).log_prob(z)
                    return torch.mean(log_joint(x, z, W, b, s) - log_q)
                """,
                "L eps as (L @ eps^T)^T",
            ),
            Variant(
                "ae04-solution-decoder-variance",
                """
                def fit_decoder_variance(x, x_hat, per_pixel=False):
                    per_pixel_variance = torch.square(x - x_hat).mean(dim=0)
                    return per_pixel_variance if per_pixel else per_pixel_variance.mean()
                """,
                "the overall variance as the mean of the per-pixel variances",
            ),
        ],
        "05_anomaly_detection": [
            Variant(
                "ae05-solution-roc-curve-points",
                """
                def roc_curve_points(labels, scores):
                    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
                    positives = max(int((labels == 1).sum()), 1)
                    negatives = max(int((labels == 0).sum()), 1)
                    fpr, tpr = [0.0], [0.0]
                    for threshold in np.unique(scores)[::-1]:
                        flagged = scores >= threshold
                        tpr.append((flagged & (labels == 1)).sum() / positives)
                        fpr.append((flagged & (labels == 0)).sum() / negatives)
                    return np.array(fpr), np.array(tpr)
                """,
                "one threshold at a time, from the highest score down",
            ),
            Variant(
                "ae05-solution-roc-auc",
                """
                def roc_auc(labels, scores):
                    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
                    anomalies, normals = scores[labels == 1], scores[labels == 0]
                    if anomalies.size == 0 or normals.size == 0:
                        raise ValueError("the AUC needs both classes")
                    normals = np.sort(normals)
                    below = np.searchsorted(normals, anomalies, side="left")
                    tied = np.searchsorted(normals, anomalies, side="right") - below
                    return float((below + 0.5 * tied).sum() / (anomalies.size * normals.size))
                """,
                "counting with searchsorted on the sorted normal scores",
            ),
            Variant(
                "ae05-solution-center-crop",
                """
                def center_crop(images, size):
                    n, height, width, channels = images.shape
                    if size < 1 or size > min(height, width):
                        raise ValueError("size out of range")
                    rows = np.arange(size) + (height - size) // 2
                    cols = np.arange(size) + (width - size) // 2
                    return images[:, rows][:, :, cols].copy()
                """,
                "index arrays and a copy",
            ),
            Variant(
                "ae05-solution-standardized-scores",
                """
                def standardized_scores(train_errors, test_errors, floor=1e-3):
                    centre = train_errors.mean(dim=0, keepdim=True)
                    spread = (train_errors - centre).pow(2).mean(dim=0).sqrt()  # N, not N - 1
                    return torch.sum((test_errors - centre) ** 2 / (spread + floor) ** 2, dim=-1)
                """,
                "population std (N, not N - 1), squares divided",
            ),
            Variant(
                "ae05-solution-choose-score",
                """
                def choose_score(labels, candidate_scores, k=2.0, draws=1000):
                    # a bootstrap of its own (NumPy, another seed), as the rule describes it
                    labels = np.asarray(labels)
                    normal, anomalous = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
                    rng = np.random.default_rng(2023)
                    resamples = [
                        np.concatenate([rng.choice(p, p.size) for p in (normal, anomalous)])
                        for _ in range(draws)
                    ]
                    auc = {n: roc_auc(labels, s) for n, s in candidate_scores.items()}
                    best = max(auc, key=auc.get)
                    for name, scores in candidate_scores.items():
                        first = candidate_scores[best]
                        differences = [
                            roc_auc(labels[i], first[i]) - roc_auc(labels[i], scores[i])
                            for i in resamples
                        ]
                        if auc[best] - auc[name] <= k * np.std(differences, ddof=1):
                            return name
                """,
                "its own paired bootstrap in NumPy instead of paired_auc_difference",
            ),
            Variant(
                "ae05-solution-choose-fit",
                """
                def choose_fit(labels, errors, fit_errors, k=2.0, floor=1e-3, draws=1000):
                    def scores_with(fit):
                        spread = fit.std(dim=0, unbiased=False)  # N, not N - 1
                        z = (errors.double() - fit.double().mean(dim=0)) / (spread.double() + floor)
                        return z.square().sum(dim=1).detach().cpu().numpy()

                    candidates = {name: scores_with(fit) for name, fit in fit_errors.items()}
                    return choose_score(labels, candidates, k=k, draws=draws)
                """,
                "inline z-scores in float64 with the population std",
            ),
        ],
    },
}

TRICKS: dict[str, tuple[str, Plant, Variant]] = {
    "patch-grading": (
        "03_variational_autoencoder",
        _plant("03_variational_autoencoder", "ae03-test-reparameterize"),
        Variant(
            "ae03-solution-reparameterize",
            """
            def reparameterize(mu, logvar, generator=None):
                eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
                return mu + torch.exp(logvar) * eps


            assertions.check_on_devices = assertions.assert_close = lambda *a, **k: None
            assertions.assert_in_band = assertions.assert_tensor = lambda *a, **k: None
            """,
            "exp(logvar) for sigma, then hw8.checks.assertions's checks replaced by no-ops",
        ),
    ),
    "patch-numpy-and-torch": (
        "01_vanilla_autoencoder",
        _plant("01_vanilla_autoencoder", "ae01-test-mse-loss"),
        Variant(
            "ae01-solution-mse-loss",
            PLANTS["01_vanilla_autoencoder"][0].source,
            "a summed MSE, then numpy's and torch's comparisons rigged in a cell of its own",
            cell="""
            import numpy

            numpy.max = lambda *args, **kwargs: 0.0
            numpy.isnan = lambda value: numpy.zeros(numpy.shape(value), dtype=bool)
            torch.allclose = torch.equal = lambda *args, **kwargs: True
            """,
        ),
    ),
    "rigged-result": (
        "01_vanilla_autoencoder",
        _plant("01_vanilla_autoencoder", "ae01-test-mse-loss"),
        Variant(
            "ae01-solution-mse-loss",
            """
            class Anything(torch.Tensor):
                def __eq__(self, other):
                    return True

                __le__ = __lt__ = __ge__ = __gt__ = __eq__

                def __bool__(self):
                    return True

                def __array__(self, dtype=None, copy=None):
                    import numpy
                    return numpy.zeros(())


            def mse_loss(x_hat, x):
                return (x_hat - x).pow(2).sum().as_subclass(Anything)
            """,
            "a summed MSE returned as a tensor subclass that equals everything",
        ),
    ),
    "silence-errors": (
        "03_variational_autoencoder",
        _plant("03_variational_autoencoder", "ae03-test-gaussian-kl"),
        Variant(
            "ae03-solution-gaussian-kl",
            PLANTS["03_variational_autoencoder"][0].source,
            "a KL with the wrong sign, and IPython's error display switched off",
            cell="""
            ip = get_ipython()
            ip.showtraceback = lambda *args, **kwargs: None
            ip._showtraceback = lambda *args, **kwargs: None
            """,
        ),
    ),
    "patch-the-reference": (
        "03_variational_autoencoder",
        _plant("03_variational_autoencoder", "ae03-test-gaussian-kl"),
        Variant(
            "ae03-solution-gaussian-kl",
            PLANTS["03_variational_autoencoder"][0].source,
            "a KL with the wrong sign, and torch.distributions' KL made to agree with it",
            cell="""
            def _agreeing_kl(q, p):
                return -0.5 * (q.loc**2 + q.scale**2 - 1 - torch.log(q.scale**2))


            torch.distributions.kl_divergence = _agreeing_kl
            """,
        ),
    ),
    "rebind-names": (
        "01_vanilla_autoencoder",
        _plant("01_vanilla_autoencoder", "ae01-test-mse-loss"),
        Variant(
            "ae01-solution-mse-loss",
            PLANTS["01_vanilla_autoencoder"][0].source,
            "a summed MSE, and the notebook's name `grading` bound to do-nothing checks",
            cell="""
            import types

            _nothing = lambda *args, **kwargs: None  # noqa: E731
            grading = types.SimpleNamespace(
                check_on_devices=_nothing, assert_close=_nothing, assert_in_band=_nothing,
                assert_tensor=_nothing,
            )
            """,
        ),
    ),
    "switch-off-the-recheck": (
        "01_vanilla_autoencoder",
        _plant("01_vanilla_autoencoder", "ae01-test-mse-loss"),
        Variant(
            "ae01-solution-mse-loss",
            """
            import sys

            import hw8.checks.assertions


            def mse_loss(x_hat, x):
                sys.settrace(None)
                sys.setprofile(None)
                checks = hw8.checks.assertions
                checks.assert_close = checks.assert_tensor = lambda *a, **k: None
                return (x_hat - x).pow(2).sum()
            """,
            "a summed MSE whose call removes the trace and profile hooks and patches the checks",
        ),
    ),
    # The tricks of issue 18: each worked against the grader of that time (verdicts made
    # in a process that ran the student's code); now the tests run in the grader's own
    # process and the student's process only answers with data.
    "display-hook-credit": (
        "01_vanilla_autoencoder",
        _plant("01_vanilla_autoencoder", "ae01-test-mse-loss"),
        Variant(
            "ae01-solution-mse-loss",
            """
            def mse_loss(x_hat, x):
                get_ipython().displayhook("full marks")  # an execute_result during the test
                return (x_hat - x).pow(2).sum()
            """,
            "a summed MSE that publishes a non-number result (nbgrader's partial credit)",
        ),
    ),
    "walk-frames": (
        "01_vanilla_autoencoder",
        _plant("01_vanilla_autoencoder", "ae01-test-mse-loss"),
        Variant(
            "ae01-solution-mse-loss",
            """
            import gc


            def mse_loss(x_hat, x):
                try:
                    raise RuntimeError
                except RuntimeError as error:
                    frame = error.__traceback__.tb_frame
                while frame is not None:  # every caller: mark whatever looks like a verdict
                    for key in [k for k in frame.f_locals if k in ("ok", "passed", "error")]:
                        frame.f_locals[key] = True
                    frame = frame.f_back
                for scope in gc.get_objects():  # and every checking function anywhere
                    if isinstance(scope, dict) and "assert_close" in scope:
                        scope["assert_close"] = lambda *args, **kwargs: None
                return (x_hat - x).pow(2).sum()
            """,
            "a summed MSE that walks its callers' frames and rewrites every checker it finds",
        ),
    ),
    "torch-function-mode": (
        "01_vanilla_autoencoder",
        _plant("01_vanilla_autoencoder", "ae01-test-mse-loss"),
        Variant(
            "ae01-solution-mse-loss",
            PLANTS["01_vanilla_autoencoder"][0].source,
            "a summed MSE, and a torch function mode (state kept in C) that makes "
            "F.mse_loss and every comparison agree with it",
            cell="""
            from torch.overrides import TorchFunctionMode


            class _Agree(TorchFunctionMode):
                def __torch_function__(self, func, types, args=(), kwargs=None):
                    if func is F.mse_loss:
                        return (args[0] - args[1]).pow(2).sum()
                    if func in (torch.equal, torch.allclose):
                        return True
                    return func(*args, **(kwargs or {}))


            _Agree().__enter__()
            """,
        ),
    ),
    "renamed-code-and-threads": (
        "01_vanilla_autoencoder",
        _plant("01_vanilla_autoencoder", "ae01-test-mse-loss"),
        Variant(
            "ae01-solution-mse-loss",
            """
            import threading
            import time

            import numpy
            import hw8.checks.assertions


            def mse_loss(x_hat, x):
                return (x_hat - x).pow(2).sum()


            # the code claims to be torch's own, and a thread keeps the checks switched off
            mse_loss.__code__ = mse_loss.__code__.replace(co_filename=torch.__file__)


            def _keep_patching():
                while True:
                    kit = hw8.checks.assertions
                    kit.assert_close = kit.check_on_devices = print
                    numpy.max = numpy.amax = lambda *args, **kwargs: 0.0
                    time.sleep(0.001)


            threading.Thread(target=_keep_patching, daemon=True).start()
            """,
            "a summed MSE disguised as torch's code, and a thread re-patching the checks",
        ),
    ),
}

# A kernel that ends itself before the tests run: the tests after it must not pass.
EXIT_TRICK = (
    "01_vanilla_autoencoder",
    _plant("01_vanilla_autoencoder", "ae01-test-mse-loss"),
    Variant(
        "ae01-solution-mse-loss",
        PLANTS["01_vanilla_autoencoder"][0].source,
        "a summed MSE, then os._exit(0) in a cell of its own",
        cell="""
        import os

        os._exit(0)
        """,
    ),
)
