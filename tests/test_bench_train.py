"""dlb_bench train's figures, along the path a GPU takes (the run's images copied to the device)."""

import pytest
import torch

import dlbench.train.loop
from dlbench.bench import bench_train


def test_bench_train_times_both_loops_when_a_run_copies_the_images_to_a_device(monkeypatch):
    # on a GPU a run's copy of the images is not a view of the host array, so the dataset is asked
    # to release its host copy: the benchmark's in-memory images must stay for the DataLoader loop
    monkeypatch.setattr(dlbench.train.loop, "shares_memory", lambda tensor, array: False)
    figures = bench_train(torch.device("cpu"), steps=2, warmup=1, rounds=1, architectures=("mlp",))
    row = figures["mlp"]
    assert row["dlbench_images_per_second"] > 0 and row["dataloader_images_per_second"] > 0
    assert row["ratio"] == pytest.approx(row["dlbench_images_per_second"] / row["dataloader_images_per_second"])
