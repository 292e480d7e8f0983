"""purerl.recorded: the notebooks' reader of benchmarks/results/ (values with gaps, device and provenance
lines), and every record a notebook names by a literal exists."""

import re
from pathlib import Path

import numpy as np
import pytest

from purerl import recorded

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_values_turn_missing_points_into_nan():
    out = recorded.values([[1, None, 3.5], [None, 2, 0]])
    assert out.shape == (2, 3) and out.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(out), [[False, True, False], [True, False, False]])
    assert out[0, 2] == 3.5 and out[1, 1] == 2.0


def test_device_names_the_accelerator_or_the_cpu_cores():
    assert recorded.device({"machine": {"platform": "gpu", "device_kind": "NVIDIA H200"}}) == "NVIDIA H200"
    assert recorded.device({"machine": {"platform": "cpu", "cpu_count": 2}}) == "CPU (2 cores)"
    assert recorded.device({}) == "device not recorded"


def test_provenance_of_a_harness_record():
    record = {"machine": {"platform": "cpu", "cpu_count": 16}, "budget": 100000, "budget_unit": "env steps",
              "seeds": [0, 1], "command": "python -m benchmarks.run --suite smoke",
              "recorded_at": "2026-12-05T14:34:07+00:00"}
    assert recorded.provenance(record) == (
        "CPU (16 cores) | 100,000 env steps per seed | seeds [0, 1] | "
        "`python -m benchmarks.run --suite smoke` | recorded 2026-12-05")


def test_provenance_leaves_out_what_a_record_lacks_and_structured_budgets():
    record = {"machine": {"platform": "gpu", "device_kind": "NVIDIA H100"}, "budget": {"updates": 40}}
    assert recorded.provenance(record) == "NVIDIA H100"
    assert recorded.provenance({**record, "seeds": list(range(1024))}) == "NVIDIA H100 | 1024 seeds"
    assert recorded.provenance({**record, "seeds": 5}) == "NVIDIA H100 | 5 seeds"


def test_a_missing_record_names_its_path():
    with pytest.raises(FileNotFoundError, match="no_such_record.json"):
        recorded.load("no_such_record")


def test_every_record_a_notebook_names_loads():
    names = {name for source in NOTEBOOKS.glob("*.py")
             for name in re.findall(r'recorded\.load\("([^"]+)"\)', source.read_text())}
    assert len(names) >= 8, names  # the notebooks read their figures from records
    for name in sorted(names):
        assert recorded.load(name)["schema"] == "purerl-benchmark/1", name  # one schema for every record
