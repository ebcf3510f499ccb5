"""read_history: valid JSON and CSV histories read back; every kind of bad file is a HistoryFileError naming it."""

from __future__ import annotations

import json
import math
import os

import pytest
from helpers import error_reading_fifo

from portable_nn.history import HistoryFileError, read_history

ROWS = [
    {"epoch": 1, "seconds": 1.5, "correct": 9000, "n_test": 10000, "accuracy": 0.9},
    {"epoch": 2, "seconds": 1.25, "correct": None, "n_test": None, "accuracy": None},
]
CSV = "epoch,seconds,correct,n_test,accuracy\n1,1.5,9000,10000,0.9\n2,1.25,,,\n"


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_json_history_reads_back(tmp_path):
    assert read_history(_write(tmp_path, "h.json", json.dumps(ROWS, indent=1))) == ROWS


def test_csv_history_reads_back_with_types(tmp_path):
    rows = read_history(_write(tmp_path, "h.CSV", CSV))
    assert rows == ROWS
    assert isinstance(rows[0]["epoch"], int) and isinstance(rows[0]["seconds"], float)


def test_csv_with_a_byte_order_mark_and_blank_lines_reads(tmp_path):
    assert read_history(_write(tmp_path, "h.csv", "\ufeff" + CSV.replace("\n1,", "\n\n1,"))) == ROWS


def test_extra_numeric_series_are_accepted(tmp_path):
    rows = [dict(ROWS[0], training_cost=[0.5, None, float("nan")], evaluation_accuracy=0.91, note=None)]
    (row,) = read_history(_write(tmp_path, "h.json", json.dumps(rows)))
    assert row["evaluation_accuracy"] == 0.91 and row["training_cost"][:2] == [0.5, None]
    assert math.isnan(row["training_cost"][2])
    (csv_row,) = read_history(_write(tmp_path, "h.csv", "epoch,training_cost\n3,0.25\n"))
    assert csv_row == {"epoch": 3, "training_cost": 0.25}


def test_chapter3_monitoring_fields_read_back_from_csv(tmp_path):
    header = "epoch,seconds,correct,n_test,accuracy,evaluation_cost,training_cost,training_correct,n_train,"
    text = header + "training_accuracy,eta\n1,2.0,90,100,0.9,0.31,nan,45,50,0.9,0.5\n2,2.0,,,,,,,,,0.25\n"
    first, second = read_history(_write(tmp_path, "h.csv", text))
    assert first["training_correct"] == 45 and isinstance(first["training_correct"], int)
    assert first["training_accuracy"] == 0.9 and first["eta"] == 0.5 and math.isnan(first["training_cost"])
    assert second["n_train"] is None and second["eta"] == 0.25


def test_an_empty_list_is_an_empty_history(tmp_path):
    assert read_history(_write(tmp_path, "h.json", "[]")) == []


BAD = [
    ("suffix", "h.txt", "[]", r"h\.txt: expected a \.json or \.csv history file, not '\.txt'"),
    ("no suffix", "history", "[]", r"history: expected a \.json or \.csv history file, not 'no suffix'"),
    ("not utf-8", "h.json", b'[{"epoch": 1, "x": "\xff"}]', r"h\.json: not UTF-8 text \(byte 0xff at offset 20\)"),
    ("bad json", "h.json", '[{"epoch": 1', r"h\.json: not valid JSON \(Expecting .* line 1 column"),
    ("huge integer", "h.json", '[{"epoch": ' + "9" * 5000 + "}]", r"h\.json: not valid JSON \(.*digits"),
    ("deep nesting", "h.json", "[" * 100_000 + "]" * 100_000, r"h\.json: JSON nested too deeply"),
    ("object", "h.json", '{"epoch": 1}', r"expected a JSON list of objects \(one per epoch\), got an object"),
    ("row not object", "h.json", "[[1]]", r"h\.json: row 1: expected an object \(one epoch\), got a list"),
    ("missing epoch", "h.json", '[{"epoch": 1}, {"accuracy": 0.5}]', r"row 2: missing the 'epoch' field"),
    ("null epoch", "h.json", '[{"epoch": null}]', r"row 1: field 'epoch' must be a non-negative integer, got None"),
    ("string epoch", "h.json", '[{"epoch": "1"}]', r"field 'epoch' must be a non-negative integer, got '1'"),
    ("boolean epoch", "h.json", '[{"epoch": true}]', r"field 'epoch' must be a non-negative integer, got True"),
    ("float count", "h.json", '[{"epoch": 1, "n_test": 10.5}]', r"field 'n_test' must be a non-negative integer"),
    ("accuracy > 1", "h.json", '[{"epoch": 1, "accuracy": 1.5}]', r"field 'accuracy' must be a number in \[0, 1\]"),
    ("accuracy NaN", "h.json", '[{"epoch": 1, "accuracy": NaN}]', r"field 'accuracy' must be a number in \[0, 1\]"),
    ("negative seconds", "h.json", '[{"epoch": 1, "seconds": -2}]', r"'seconds' must be a finite number >= 0"),
    ("infinite seconds", "h.json", '[{"epoch": 1, "seconds": Infinity}]', r"'seconds' must be a finite number"),
    ("correct > n_test", "h.json", '[{"epoch": 1, "correct": 11, "n_test": 10}]',
     r"'correct' \(11\) is larger than 'n_test' \(10\)"),
    ("training_correct > n_train", "h.json", '[{"epoch": 1, "training_correct": 6, "n_train": 5}]',
     r"'training_correct' \(6\) is larger than 'n_train' \(5\)"),
    ("training_accuracy < 0", "h.json", '[{"epoch": 1, "training_accuracy": -0.1}]',
     r"field 'training_accuracy' must be a number in \[0, 1\]"),
    ("float n_train", "h.csv", "epoch,n_train\n1,5.5\n", r"line 2, column 'n_train': expected an integer"),
    ("string series", "h.json", '[{"epoch": 1, "note": "hi"}]',
     r"field 'note' must be a number, null or a list of numbers, got a string 'hi'"),
    ("nested series", "h.json", '[{"epoch": 1, "cost": [[1]]}]', r"field 'cost' must be a number, null or a list"),
    ("object series", "h.json", '[{"epoch": 1, "cost": {"a": 1}}]', r"field 'cost' must be .* got an object"),
    ("duplicate key", "h.json", '[{"epoch": 1, "epoch": 2}]', r"h\.json: key 'epoch' appears twice in one object"),
    ("empty csv", "h.csv", "", r"h\.csv: empty, expected a CSV header line"),
    ("no epoch column", "h.csv", "seconds,accuracy\n1,0.5\n", r"the CSV header has no 'epoch' column"),
    ("repeated column", "h.csv", "epoch,epoch\n1,2\n", r"empty or repeated column names"),
    ("extra cell", "h.csv", "epoch,accuracy\n1,0.5,7\n", r"h\.csv: line 2: 3 cells, the header has 2"),
    ("bad number", "h.csv", "epoch,accuracy\n1,high\n", r"line 2, column 'accuracy': expected a number .* 'high'"),
    ("float epoch", "h.csv", "epoch\n1.0\n", r"line 2, column 'epoch': expected an integer or an empty cell"),
    ("nul byte", "h.csv", b"epoch\n1\x00\n", r"h\.csv: line 2, column 'epoch': expected an integer"),
    ("huge field", "h.csv", "epoch\n" + "1" * 200_000 + "\n", r"h\.csv: line \d: not valid CSV \(field larger"),
    ("csv range", "h.csv", "epoch,accuracy\n1,2.5\n", r"line 2: field 'accuracy' must be a number in \[0, 1\]"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "pattern"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_history_files_raise_history_file_error_naming_them(tmp_path, name, content, pattern):
    path = _write(tmp_path, name, content)
    with pytest.raises(HistoryFileError, match=pattern) as info:
        read_history(path)
    assert str(info.value).startswith(str(path))
    assert isinstance(info.value, ValueError)


def test_files_over_the_size_limit_are_refused_before_reading(tmp_path, monkeypatch):
    path = _write(tmp_path, "h.json", json.dumps(ROWS * 3))
    monkeypatch.setenv("PORTABLE_NN_MAX_HISTORY_BYTES", "100")
    with pytest.raises(HistoryFileError, match=rf"h\.json: {path.stat().st_size} bytes, more than the limit of 100 "
                                               r"for history files \(set \$PORTABLE_NN_MAX_HISTORY_BYTES"):  # fmt: skip
        read_history(path)
    monkeypatch.setenv("PORTABLE_NN_MAX_HISTORY_BYTES", str(path.stat().st_size))
    assert len(read_history(path)) == 6


def test_a_directory_or_missing_file_is_an_os_error(tmp_path):
    (tmp_path / "d.json").mkdir()
    with pytest.raises(IsADirectoryError, match=r"is a directory, expected a history file: .*d\.json"):
        read_history(tmp_path / "d.json")
    with pytest.raises(FileNotFoundError, match=r"gone\.csv"):
        read_history(tmp_path / "gone.csv")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    error = error_reading_fifo(read_history, fifo)
    assert error is not None, "read_history blocked on a FIFO"
    assert isinstance(error, HistoryFileError) and "pipe.json: not a regular file" in str(error)


# -- the run's settings (issue 18 point 9) ---------------------------------------------------------------
SETTINGS = {"eta": 3.0, "seed": 0, "sizes": [784, 30, 10], "stopped": "all 2 epochs done", "preset": None}


@pytest.mark.parametrize("name", ["h.json", "h.csv"])
def test_settings_are_written_and_read_back_beside_the_rows(tmp_path, name):
    from portable_nn._train.loop import EpochResult
    from portable_nn.history import plot_title, read_history_settings, write_history

    history = [EpochResult(epoch=0, seconds=1.5, correct=9000, n_test=10000, eta=3.0)]
    path = write_history(history, tmp_path / name, settings=SETTINGS)
    plain = write_history(history, tmp_path / ("plain-" + name))
    assert read_history(path) == read_history(plain) and read_history(path)[0]["epoch"] == 1
    assert read_history_settings(path) == SETTINGS and read_history_settings(plain) == {}
    assert plot_title(path) == "h" + name[1:] + ": eta 3.0, seed 0\n(all 2 epochs done)"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("h.csv", "# settings: {not json\nepoch\n1\n"),
        ("h.csv", "# settings: [1, 2]\nepoch\n1\n"),
        ("h.json", json.dumps({"settings": "eta 3", "epochs": [{"epoch": 1}]})),
        ("h.json", json.dumps({"settings": {"nested": {"a": 1}}, "epochs": [{"epoch": 1}]})),
    ],
)
def test_damaged_settings_are_ignored_and_the_rows_still_read(tmp_path, name, content):
    from portable_nn.history import read_history_settings

    path = _write(tmp_path, name, content)
    assert read_history(path) == [{"epoch": 1}]
    assert read_history_settings(path) == {}


def test_a_settings_line_keeps_the_csv_line_numbers_right(tmp_path):
    path = _write(tmp_path, "h.csv", '# settings: {"eta": 1}\nepoch,correct\n1,x\n')
    with pytest.raises(HistoryFileError, match=r"line 3, column 'correct': expected an integer"):
        read_history(path)


def test_an_object_that_is_not_the_settings_form_is_refused(tmp_path):
    path = _write(tmp_path, "h.json", json.dumps({"epochs": [{"epoch": 1}], "other": 1}))
    with pytest.raises(HistoryFileError, match="expected a JSON list of objects"):
        read_history(path)
