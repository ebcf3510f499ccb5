"""Fuzzing the sweep's file readers with Hypothesis: damage is skipped and named, never raised; memory stays bounded.

For ``read_results`` (``trials.jsonl``: arbitrary bytes, mutated valid
files, arbitrary JSON lines shaped like records) and ``read_json`` with the
``chosen.json`` and ``sweep.json`` schemas: no exception escapes; every line
is either a record that passes the documented invariants or one entry of
``bad``; the peak memory traced while reading is bounded by the file's size.
Every test is bounded (``max_examples``), the whole file runs in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import mutate_bytes, read_in_tmp, sweep_record
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portable_nn.sweep import STATES, config_key
from portable_nn.sweep.files import read_json, read_results
from portable_nn.sweep.schema import check_chosen, check_manifest

FUZZ = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
#: Allocation overhead allowed on top of a multiple of the file: parser buffers, exception objects.
OVERHEAD = 2 << 20
VALID = [sweep_record(eta=0.5), sweep_record("pruned", eta=3.0), sweep_record("failed", epochs=1, lmbda=0.0)]


def _lines(content: bytes) -> int:
    return sum(1 for line in content.split(b"\n") if line.strip())


def _check_results(content: bytes) -> list[dict]:
    results, error, peak = read_in_tmp(read_results, "trials.jsonl", content)
    assert error is None, f"{type(error).__name__}: {error}"
    assert peak <= 64 * len(content) + OVERHEAD, f"peak {peak} bytes for a {len(content)}-byte file"
    assert len(results.records) + len(results.bad) == _lines(content)
    for record in results.records:
        assert record["state"] in STATES and record["key"] == config_key(record["config"])
        for name in ("best_accuracy", "final_accuracy"):
            assert record.get(name) is None or 0 <= record[name] <= 1
        for row in record["history"]:
            assert 0 <= row["accuracy"] <= 1 and 0 <= row["correct"] <= row["n"]
        assert all(record["params"][k] == record["config"][k] for k in record["params"])
    for line in results.bad:
        assert line.startswith("line ") and "\n" not in line
    return results.records


@FUZZ
@given(st.binary(max_size=600))
def test_read_results_on_arbitrary_bytes(content):
    _check_results(content)


@FUZZ
@given(st.data())
def test_read_results_on_mutated_valid_files(data):
    content = b"".join(json.dumps(r).encode() + b"\n" for r in VALID)
    assert len(_check_results(content)) == len(VALID)  # unchanged, every record reads back
    _check_results(mutate_bytes(data, content))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
FIELDS = ["config", "params", "state", "key", "history", "final_accuracy", "best_accuracy", "best_epoch", "attempts"]


@FUZZ
@given(st.sampled_from(VALID), st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=3))
def test_read_results_on_records_with_fields_replaced(record, replaced):
    _check_results(json.dumps({**record, **replaced}).encode() + b"\n")


@FUZZ
@given(
    st.sampled_from(VALID),
    st.sampled_from(["eta", "lmbda", "hidden", "batch", "epochs", "cost", "seed", "train_size", "data"]),
    json_values,
)
def test_read_results_on_configs_with_an_option_replaced(record, option, value):
    config = {**record["config"], option: value}
    _check_results(json.dumps({**record, "config": config, "key": config_key(config)}).encode() + b"\n")


@pytest.mark.parametrize(("name", "check"), [("chosen.json", check_chosen), ("sweep.json", check_manifest)])
@FUZZ
@given(value=json_values | st.dictionaries(st.sampled_from(["metric", "names", "test_key", "config"]), json_values))
def test_read_json_on_arbitrary_json(name, check, value):
    def reader(path: Path):
        return read_json(path, check)

    returned, error, _ = read_in_tmp(reader, name, json.dumps(value).encode())
    assert error is None, f"{type(error).__name__}: {error}"
    result, problem = returned
    assert (result is None) != (problem is None)
    assert problem is None or name in problem
