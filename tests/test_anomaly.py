import numpy as np
import pytest
import torch
from conftest import cuda

from hw8 import anomaly
from hw8.models import build_model


class Identity(torch.nn.Module):
    def reconstruct(self, x):
        return x


class Blank(torch.nn.Module):
    def reconstruct(self, x):
        return torch.full_like(x, -1.0)


def test_sample_score_is_sqrt_of_summed_squared_error():
    images = np.zeros((3, 4, 4, 1), np.uint8)
    images[1] = 255
    images[2, :2] = 255
    scores = anomaly.reconstruction_scores(Blank(), images, device="cpu", batch_size=2)
    # blank reconstruction is -1; a white pixel is +1, so each white pixel adds 2**2
    np.testing.assert_allclose(scores, [0.0, np.sqrt(16 * 4), np.sqrt(8 * 4)], rtol=1e-6)
    mse = anomaly.reconstruction_scores(Blank(), images, metric="mse", device="cpu")
    np.testing.assert_allclose(mse, [0.0, 4.0, 2.0], rtol=1e-6)
    l1 = anomaly.reconstruction_scores(Blank(), images, metric="l1", device="cpu")
    np.testing.assert_allclose(l1, [0.0, 2.0, 1.0], rtol=1e-6)
    assert not anomaly.reconstruction_scores(Identity(), images, device="cpu").any()


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="l2, mse, l1"):
        anomaly.reconstruction_scores(Identity(), np.zeros((1, 4, 4, 1), np.uint8), metric="ssim")


def test_scoring_leaves_the_model_mode_alone(small_task):
    model = build_model("cnn", small_task.image_shape).train()
    anomaly.reconstruction_scores(model, small_task.test_images[:4], device="cpu")
    assert model.training


def test_roc_auc_extremes_and_errors():
    labels = np.array([0, 0, 1, 1])
    assert anomaly.roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert anomaly.roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    with pytest.raises(anomaly.SubmissionError, match="NaN"):
        anomaly.roc_auc(labels, np.array([0.1, np.nan, 0.8, 0.9]))
    with pytest.raises(anomaly.SubmissionError, match="one score per label"):
        anomaly.roc_auc(labels, np.array([0.1, 0.2]))


def test_rank_average_ignores_scale():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([1e6, 3e6, 2e6, 4e6])
    ranked = anomaly.rank_average([a, b])
    np.testing.assert_allclose(ranked, [0.25, 0.625, 0.625, 1.0])
    np.testing.assert_allclose(anomaly.rank_average([a, a * 1000]), anomaly.rank_average([a]))
    with pytest.raises(ValueError, match="same length"):
        anomaly.rank_average([a, a[:2]])


def test_submission_round_trip_in_hw8_format(tmp_path):
    scores = np.array([0.5, 2.25, 1e-9, 7.0])
    path = anomaly.write_submission(scores, tmp_path / "prediction.csv", expected_rows=4)
    lines = path.read_text().splitlines()
    assert lines[0] == "ID,score"
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2", "3"]
    np.testing.assert_array_equal(anomaly.read_submission(path, expected_rows=4), scores)


def test_bad_submissions_are_refused_and_nothing_is_half_written(tmp_path):
    path = tmp_path / "prediction.csv"
    with pytest.raises(anomaly.SubmissionError, match="expected 5 scores.*found 4"):
        anomaly.write_submission(np.zeros(4), path, expected_rows=5)
    with pytest.raises(anomaly.SubmissionError, match="NaN or infinite at IDs \\[1\\]"):
        anomaly.write_submission(np.array([0.0, np.nan]), path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(anomaly.SubmissionError, match="does not exist"):
        anomaly.write_submission(np.zeros(2), tmp_path / "no" / "p.csv")
    path.write_text("id,score\n0,1\n")
    with pytest.raises(anomaly.SubmissionError, match="header ID,score"):
        anomaly.read_submission(path)
    path.write_text("ID,score\n0,1\n2,1\n")
    with pytest.raises(anomaly.SubmissionError, match="IDs must run"):
        anomaly.read_submission(path)


@cuda
def test_scores_on_cuda_match_cpu(small_task):
    model = build_model("cnn", small_task.image_shape)
    cpu = anomaly.reconstruction_scores(model, small_task.test_images, device="cpu")
    gpu = anomaly.reconstruction_scores(model, small_task.test_images, device="cuda")
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3)
    assert next(model.parameters()).device.type == "cuda"
