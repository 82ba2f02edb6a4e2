"""Planted wrong answers for the nbgrader round trip (tests/course/test_round_trip.py).

Each notebook in notebooks/hw8/ registers at least one :class:`Plant` under its name
(the file name without ``.ipynb``): a typical student mistake that replaces the whole source
of one solution cell, the grade_id of the test cell that must catch it, and the points
that must be lost, no more and no less. The round trip plants every mistake of every
notebook into one submission ("wrong") and grades it with the others in one ``nbgrader
autograde`` call, so the plants of one notebook must be independent: each costs exactly
its points and no other test cell fails (test cells that reuse an earlier exercise swap
in a reference for it while they run, so one mistake is not punished twice).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Plant:
    """One wrong answer: replace cell ``solution`` by ``source``; ``test`` loses ``points``."""

    solution: str
    source: str
    test: str
    points: float
    what: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", textwrap.dedent(self.source).strip("\n"))


# The VAE of exercise 4 with the sample's ReLU after the mean head (its codes are never
# negative): everything else as in the model solution.
SAMPLE_VAE_WITH_RELU_MEAN = """
class VAE(Autoencoder):
    name = "dense_vae"

    def __init__(self, latent=2, image_shape=(1, 28, 28), beta=1.0):
        super().__init__(image_shape)
        self.latent, self.beta = latent, beta
        size = math.prod(self.image_shape)
        self.encoder = nn.Sequential(nn.Linear(size, 256), nn.ReLU())
        self.mu_head = nn.Sequential(nn.Linear(256, latent), nn.ReLU())
        self.logvar_head = nn.Linear(256, latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent, 256), nn.ReLU(), nn.Linear(256, size), nn.Tanh()
        )

    def encode_distribution(self, x):
        hidden = self.encoder(x.flatten(1))
        return self.mu_head(hidden), self.logvar_head(hidden)

    def decode(self, z):
        return self.decoder(z).view(-1, *self.image_shape)

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
"""

PLANTS: dict[str, list[Plant]] = {
    "01_vanilla_autoencoder": [
        Plant(
            solution="ae01-solution-mse-loss",
            source="""
                def mse_loss(x_hat, x):
                    return (x_hat - x).pow(2).sum()
            """,
            test="ae01-test-mse-loss",
            points=2,
            what="sums the squared errors instead of averaging them",
        ),
        Plant(
            solution="ae01-solution-bce-loss",
            source="""
                def bce_loss(x_hat, x, eps=1e-7):
                    return -(x * torch.log(x_hat) + (1 - x) * torch.log(1 - x_hat)).mean()
            """,
            test="ae01-test-bce-loss",
            points=2,
            what="BCE without clamping: nan at x_hat = 0 or 1",
        ),
    ],
    "02_denoising_autoencoder": [
        Plant(
            solution="ae02-solution-gaussian-noise",
            source="""
                def gaussian_noise(x, std=0.4, generator=None):
                    shape, device, dtype = x.shape, x.device, x.dtype
                    noise = torch.randn(shape, generator=generator, device=device, dtype=dtype)
                    return x.add_(std * noise)
            """,
            test="ae02-test-gaussian-noise",
            points=2,
            what="adds the noise in place, changing the clean batch",
        ),
        Plant(
            solution="ae02-solution-dropout-noise",
            source="""
                def dropout_noise(x, p=0.3, generator=None):
                    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                    return x * (u >= p).to(x.dtype)
            """,
            test="ae02-test-dropout-noise",
            points=2,
            what="drops elements but forgets to rescale the survivors by 1 / (1 - p)",
        ),
        Plant(
            solution="ae02-solution-salt-and-pepper",
            source="""
                def salt_and_pepper(x, amount=0.2, low=-1.0, high=1.0, generator=None):
                    u = torch.rand(x.shape, generator=generator, dtype=x.dtype)
                    out = torch.where(u < amount, torch.full_like(x, high), x)
                    return torch.where(u < amount / 2, torch.full_like(x, low), out)
            """,
            test="ae02-test-salt-and-pepper",
            points=2,
            what="draws on the CPU whatever x's device (no device=): right on a CPU, "
            "a crash on a GPU; caught on the meta device",
        ),
    ],
    "03_variational_autoencoder": [
        Plant(
            solution="ae03-solution-gaussian-kl",
            source="""
                def gaussian_kl(mu, logvar):
                    return -0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)
            """,
            test="ae03-test-gaussian-kl",
            points=3,
            what="KL divergence with the wrong sign",
        ),
        Plant(
            solution="ae03-solution-reparameterize",
            source="""
                def reparameterize(mu, logvar, generator=None):
                    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
                    eps = eps.to(mu.device)
                    return (mu + torch.exp(0.5 * logvar) * eps).detach()
            """,
            test="ae03-test-reparameterize",
            points=3,
            what="reparameterize that blocks the gradients (.detach())",
        ),
        Plant(
            solution="ae03-solution-vae-model",
            source=SAMPLE_VAE_WITH_RELU_MEAN,
            test="ae03-test-vae-model",
            points=3,
            what="the course sample's flaw on the mean head: a ReLU after mu_head",
        ),
    ],
    "04_elbo": [
        Plant(
            solution="ae04-solution-iwae-bound",
            source="""
                def iwae_bound(log_weight, K, num_estimates=1000, generator=None):
                    return log_weight((num_estimates, K), generator).mean(dim=(0, 1))
            """,
            test="ae04-test-iwae-bound",
            points=3,
            what="IWAE that averages the log-weights (the ELBO again) instead of the weights",
        ),
        Plant(
            solution="ae04-solution-decoder-variance",
            source="""
                def fit_decoder_variance(x, x_hat, per_pixel=False):
                    squared = (x - x_hat).pow(2)
                    return squared.mean(dim=0) if per_pixel else squared.flatten(1).sum(1).mean()
            """,
            test="ae04-test-decoder-variance",
            points=2,
            what="the squared error summed over the pixels instead of averaged",
        ),
        Plant(
            solution="ae04-solution-elbo-estimate",
            source="""
                def elbo_estimate(x, W, b, s, q_mean, q_scale_tril, num_samples=1000,
                                  generator=None):
                    q = MultivariateNormal(q_mean, scale_tril=q_scale_tril)
                    z = q.sample((num_samples,))
                    return (log_joint(x, z, W, b, s) - q.log_prob(z)).mean()
            """,
            test="ae04-test-elbo-estimate",
            points=3,
            what="ELBO from q.sample(): no reparameterisation, no gradient to q_mean",
        ),
    ],
    "05_anomaly_detection": [
        Plant(
            solution="ae05-solution-anomaly-scores",
            source="""
                def anomaly_scores(model, images, batch_size=500):
                    device = next(model.parameters()).device
                    model.eval()
                    scores = []
                    with torch.no_grad():
                        for batch in iterate_batches(to_device(images, device), batch_size):
                            error = (model.reconstruct(batch) - batch).flatten(1)
                            scores.append(error.pow(2).mean(1).cpu())
                    return torch.cat(scores).double().numpy()
            """,
            test="ae05-test-anomaly-scores",
            points=3,
            what="mean squared error per image instead of the sample's sqrt of the summed error",
        ),
        Plant(
            solution="ae05-solution-roc-auc",
            source="""
                def roc_auc(labels, scores):
                    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
                    s1, s0 = scores[labels == 1], scores[labels == 0]
                    if len(s1) == 0 or len(s0) == 0:
                        raise ValueError("the AUC needs both classes")
                    return float((s1[:, None] > s0[None, :]).mean())
            """,
            test="ae05-test-roc-auc",
            points=2,
            what="AUC that counts ties as losses instead of one half",
        ),
        Plant(
            solution="ae05-solution-roc-curve-points",
            source="""
                def roc_curve_points(labels, scores):
                    from sklearn.metrics import roc_curve

                    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
                    return fpr, tpr
            """,
            test="ae05-test-roc-curve-points",
            points=2,
            what="the ROC curve from sklearn.metrics.roc_curve, which the exercise forbids",
        ),
        Plant(
            solution="ae05-solution-center-crop",
            source="""
                def center_crop(images, size):
                    height, width = images.shape[1:3]
                    if not 1 <= size <= min(height, width):
                        raise ValueError(f"size must be between 1 and {min(height, width)}")
                    top, left = (height - size + 1) // 2, (width - size + 1) // 2
                    return images[:, top : top + size, left : left + size]
            """,
            test="ae05-test-center-crop",
            points=1,
            what="the window rounded down-right on odd margins (only the hidden test sees it)",
        ),
        Plant(
            solution="ae05-solution-standardized-scores",
            source="""
                def standardized_scores(train_errors, test_errors, floor=1e-3):
                    spread = train_errors.var(dim=0) + floor
                    return (test_errors / spread).pow(2).sum(dim=1)
            """,
            test="ae05-test-standardized-scores",
            points=2,
            what="divides by the variance instead of the standard deviation",
        ),
        Plant(
            solution="ae05-solution-choose-score",
            source="""
                def choose_score(labels, candidate_scores, k=2.0, draws=1000):
                    aucs = {n: roc_auc(labels, s) for n, s in candidate_scores.items()}
                    return max(aucs, key=aucs.get)
            """,
            test="ae05-test-choose-score",
            points=3,
            what="picks the highest validation AUC and ignores its standard error",
        ),
        Plant(
            solution="ae05-solution-choose-fit",
            source="""
                def choose_fit(labels, errors, fit_errors, k=2.0, floor=1e-3, draws=1000):
                    # fits on the validation normals (found with the labels) as well
                    normals = errors[torch.as_tensor(labels, device=errors.device) == 0]
                    scores = {
                        name: standardized_scores(torch.cat([fit, normals]), errors, floor)
                        .cpu()
                        .numpy()
                        for name, fit in fit_errors.items()
                    }
                    return choose_score(labels, scores, k=k, draws=draws)
            """,
            test="ae05-test-choose-fit",
            points=2,
            what="adds the validation normals (found with the labels) to every fit set",
        ),
        # improved_scores that hands in the package's recipe: each of the four leaderboard
        # cells gives 0 (the handed-in file has AUC 1, so only the own-method check fails)
        *(
            Plant(
                solution="ae05-solution-improved-scores",
                source="""
                    def improved_scores(task):
                        from hw8 import house_recipe

                        return house_recipe.recipe_scores(task, progress=False)
                """,
                test=f"ae05-test-leaderboard-{level}",
                points=1,
                what="improved_scores that calls the package's recipe hw8.house_recipe",
            )
            for level in ("simple", "medium", "strong", "boss")
        ),
    ],
}

# Notebook 01's bce_loss loops forever: its test cell must time out and lose its points,
# and the rest of the batch must still be graded.
HANGING = Plant(
    solution="ae01-solution-bce-loss",
    source="""
        def bce_loss(x_hat, x, eps=1e-7):
            while True:
                pass
    """,
    test="ae01-test-bce-loss",
    points=2,
    what="an endless loop",
)
HANGING_NOTEBOOK = "01_vanilla_autoencoder"

# A student who got mse_loss wrong and "fixed" its locked test cell: autograde must put
# the original test back, which then fails.
TAMPERED_NOTEBOOK = "01_vanilla_autoencoder"
TAMPERED_PLANT = PLANTS[TAMPERED_NOTEBOOK][0]
TAMPERED_TEST_SOURCE = 'print("all tests pass")'
