"""Ray workers the cluster has no room for are refused before anything is written: a worker Ray
cannot place never starts, and the study had hung on the runs given to it (a 0.5-GPU worker on a
machine without a GPU, --workers 4 on two CPUs). Without Ray itself: check_room is given the
cluster's resources."""

import pytest

from dlbench.errors import UserError
from dlbench.study.ray_executor import check_room, worker_count
from tests.commands import assert_one_line_error, run_in_process


def test_workers_that_fit_pass_silently():
    said = []
    check_room({"CPU": 4.0, "GPU": 2.0}, 4, 0.5, None, said.append)
    check_room({"CPU": 2.0}, 2, 0.0, None, said.append)
    assert said == []


@pytest.mark.parametrize("resources, count, gpus, fix", [
    ({"CPU": 2.0}, 1, 0.5, "drop --gpus_per_worker and --device cuda"),
    ({"CPU": 2.0}, 4, 0.0, "give --workers 2 or fewer"),
    ({"CPU": 8.0, "GPU": 1.0}, 4, 0.5, "give --workers 2 or fewer"),
])
def test_the_local_instance_refuses_workers_it_cannot_place(resources, count, gpus, fix):
    with pytest.raises(UserError, match=f"wait for good; {fix}"):
        check_room(resources, count, gpus, None)


def test_a_cluster_that_may_grow_gets_a_note_instead():
    said = []
    check_room({"CPU": 2.0}, 4, 1.0, "10.0.0.1:6379", said.append)
    assert len(said) == 1 and said[0].startswith("note: the Ray cluster has 2 CPUs and 0 GPUs now"), said


def test_the_default_count_is_what_the_cluster_holds():
    assert worker_count({"CPU": 3.0, "GPU": 2.0}, None, 0.0) == 3
    assert worker_count({"CPU": 3.0, "GPU": 2.0}, None, 0.25) == 8
    assert worker_count({"CPU": 3.0}, 5, 0.0) == 5


def test_a_fractional_gpu_share_above_one_is_refused_before_ray_starts(tmp_path):
    # Ray's own ValueError had come as a traceback, after Ray had started
    result = run_in_process("dlb_study", "quickstart", "--runs_root", tmp_path / "r", "--executor", "ray",
                            "--gpus_per_worker", "1.5")
    assert_one_line_error(result, "--gpus_per_worker above 1 must be a whole number of GPUs")
    assert not (tmp_path / "r").exists()
