"""Each representation metric says how many observations it encodes (the evaluation stage adds
them up to decide whether to encode the whole dataset once): checked against the observations a
recording representation actually receives."""

import numpy as np
import pytest

from dlbench import metrics
from tests.test_encode_once import SMALL  # protocols shrunk to a toy grid, shared
from tests.toy_data import Recorder, ToyData


def test_every_representation_metric_is_counted():
    assert set(SMALL) == set(metrics.REPRESENTATION_METRICS)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_count_is_what_the_metric_encodes(name):
    data = ToyData((3, 4, 5))
    rotation = np.linalg.qr(np.random.RandomState(0).randn(3, 3))[0]
    recorder = Recorder(data, lambda f: f @ rotation)
    metrics.evaluate(name, data, recorder, seed=1, **SMALL[name])
    assert sum(recorder.call_sizes) == metrics.observations_encoded(name, SMALL[name])


def test_the_default_sets_are_counted_as_the_issue_says():
    count = lambda names: sum(metrics.observations_encoded(name) for name in names)
    assert count(["mig", "factor_vae"]) == 980_000  # the default set's representation metrics
    dl_set = ["mig", "factor_vae", "beta_vae", "sap", "modularity_explicitness", "unsupervised"]
    assert count(dl_set) == 2_940_000
