"""dcnn_helpers.plp_cifar: notebook 05's tiny CNN and its grid of CIFAR runs through the course trainer."""

import numpy as np
import pandas as pd
import pytest
import torch

from dcnn_helpers import data, plp_cifar, train


def test_tiny_cnn_parameter_count_and_model_names():
    # convs 3·16·9 + 16·32·9 + 32·64·9, BN 2·(16 + 32 + 64), linear 64·10 + 10
    expected = 3 * 16 * 9 + 16 * 32 * 9 + 32 * 64 * 9 + 2 * (16 + 32 + 64) + 64 * 10 + 10
    assert sum(p.numel() for p in plp_cifar.cifar_model("tiny-16").parameters()) == expected
    assert plp_cifar.tiny_cnn(4)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="width=0 must be at least 1"):
        plp_cifar.tiny_cnn(0)
    with pytest.raises(ValueError, match="not a notebook-05 model"):
        plp_cifar.cifar_model("resnet-20")


def test_paired_difference_pairs_by_seed():
    runs = pd.DataFrame(dict(
        lr=[0.1] * 4, prediction_step=[None, None, 1.0, 1.0], seed=[0, 1, 1, 0], test_acc=[0.5, 0.6, 0.65, 0.45],
    ))
    np.testing.assert_allclose(np.sort(plp_cifar.paired_difference(runs, 1.0)), [-0.05, 0.05])
    with pytest.raises(ValueError, match="prediction_step"):
        plp_cifar.paired_difference(runs, 2.0)


def test_run_grid_on_the_committed_sample():
    ds = data.course_cifar10(64, 32, "sample")
    runs = plp_cifar.run_grid("tiny-2", ds, lrs=[0.1], prediction_steps=[None, 1.0], seeds=[0], epochs=1, batch_size=16)
    assert list(runs["prediction_step"].isna()) == [True, False] and runs["test_acc"].between(0, 1).all()
    assert runs["curve"].map(len).tolist() == [1, 1]
    # same seed, same data order: the runs agree until the first prediction and then differ
    assert runs["train_loss"].iloc[0] != runs["train_loss"].iloc[1]


def test_trainer_batches_are_the_augmented_batches_of_an_epoch_plan():
    split, _ = train.to_device(data.course_cifar10(20, 4, "sample"), torch.device("cpu"))
    batches = list(plp_cifar.trainer_batches(split, steps=5, batch_size=8))
    assert [len(y) for _, y in batches] == [8, 8, 8, 8, 8]  # 2 full steps per epoch of 20, then a new epoch
    assert all(x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 for x, _ in batches)
    again = list(plp_cifar.trainer_batches(split, steps=5, batch_size=8))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again))
    with pytest.raises(ValueError, match="steps"):
        next(plp_cifar.trainer_batches(split, steps=0, batch_size=8))
