"""dlb_bench encoding: a stack's K encoders applied to the dataset at once give each run the codes
its own encoder gives, and the benchmark reports both ways."""

import json

import numpy as np
import pytest
import torch

import dlbench.data
from dlbench.stack_benchmark import _conv_encoder, _FirstImages, bench_encoding, encode_stacked
from tests.commands import assert_one_line_error, run_command


@pytest.fixture
def data(tiny_dsprites):
    return dlbench.data.get_dataset("dsprites")


def test_stacked_encoders_give_each_run_the_codes_of_its_own_encoder(data):
    subset = _FirstImages(data, 100)
    representations = [_conv_encoder(seed, data.observation_shape, "cpu") for seed in range(3)]
    codes = encode_stacked(subset, representations, "cpu", batch_size=32)  # batches that do not divide 100
    assert codes.shape == (3, 100, 10)
    x = torch.as_tensor(data.observations_at(np.arange(100)))
    for k, representation in enumerate(representations):
        with torch.no_grad():
            alone = representation(x).numpy()
        np.testing.assert_allclose(codes[k], alone, rtol=1e-5, atol=1e-6)
    assert not np.allclose(codes[0], codes[1])  # the runs' own weights, not one run's three times


def test_bench_encoding_scales_each_way_to_the_whole_dataset(data):
    figures = bench_encoding(torch.device("cpu"), data, stacks=(1, 2), images=64)
    assert (figures["dataset_images"], figures["timed_images"]) == (len(data), 64)
    for row in figures["stacks"].values():
        assert row["alone_seconds_per_run"] > 0 and row["stacked_seconds_per_run"] > 0
        assert row["alone_over_stacked"] == pytest.approx(row["alone_seconds_per_run"] / row["stacked_seconds_per_run"])
        assert row["max_code_difference"] < 1e-5


def test_dlb_bench_encoding_prints_json_and_refuses_bad_counts(tiny_dsprites):
    result = run_command("dlb_bench", "encoding", "--device", "cpu", "--stack", "2", "--images", "1024", "--json",
                         data_root=tiny_dsprites)
    assert result.returncode == 0, result.stderr
    assert list(json.loads(result.stdout)["stacks"]) == ["K=2"]
    # 64 images had timed mostly a call's fixed cost, 9 times the whole grid's seconds per run once scaled
    for images in ("0", "64"):
        assert_one_line_error(run_command("dlb_bench", "encoding", "--device", "cpu", "--images", images,
                                          data_root=tiny_dsprites), "--images must be at least 1024")
    # the tiny grid has 384 images: what is timed is said
    table = run_command("dlb_bench", "encoding", "--device", "cpu", "--stack", "1", "--images", "2048",
                        data_root=tiny_dsprites)
    assert "dsprites: 384 of 384 images timed (all it has, of --images 2048)" in table.stdout, table.stdout
