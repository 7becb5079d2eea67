"""One ground-truth rule for both trainers' rows (``_rows.ground_truth_fields``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlreward.graders.fields import Unusable
from rlreward.integrations._rows import ground_truth_fields, trl_rows, verl_row
from rlreward.runner import GraderConfig, GradingRunner
from rlreward.schema import GraderAbstention, GraderError, GraderScore
from tests.integrations import adapter_helpers as H


def both_rows(ground_truth):
    """The row VERL builds for a sample and the row TRL builds for a dataset row."""
    verl = verl_row(
        data_source="d", solution_str="it is 42", ground_truth=ground_truth, extra_info={}
    ).row
    (trl,) = trl_rows(["q"], ["it is 42"], {"ground_truth": [ground_truth]})
    return verl, trl


@pytest.mark.parametrize(
    ("ground_truth", "text"),
    [
        ("42", "42"),
        (42, "42"),
        (np.int64(42), "42"),
        (np.int32(42), "42"),
        (2.5, "2.5"),
        (np.float64(2.5), "2.5"),
        (np.float32(0.1), "0.1"),
        (np.array(42), "42"),
    ],
)
def test_numbers_and_numpy_scalars_become_the_same_text_on_both_paths(ground_truth, text):
    for row in both_rows(ground_truth):
        assert row["ground_truth"] == text and row["reference_response"] == text


REFUSED = [
    (math.nan, "ground_truth is nan"),
    (np.float64("nan"), "ground_truth is nan"),
    (np.float32("nan"), "ground_truth is nan"),
    (math.inf, "ground_truth is inf"),
    (-math.inf, "ground_truth is -inf"),
    (True, "ground_truth is a bool (True)"),
    (np.bool_(False), "ground_truth is a bool"),
    (object(), "ground_truth is a object"),
]


@pytest.mark.parametrize(("ground_truth", "cause"), REFUSED)
def test_nan_inf_and_bool_are_refused_on_both_paths_with_the_cause(ground_truth, cause):
    runner = GradingRunner(
        {"ref": GraderConfig(H.exact_match), "brev": GraderConfig(H.brevity)}, aggregators=[]
    )
    for row in both_rows(ground_truth):
        assert isinstance(row["reference_response"], Unusable)  # never the text "nan"
        results = runner.run([row], on_missing="skip")
        ref, brev = results["ref"][0], results["brev"][0]
        assert isinstance(ref, GraderError) and cause in ref.error
        assert "'reference_response' is unusable" in ref.error
        assert not isinstance(ref, GraderAbstention)  # a broken row, not "does not apply"
        assert isinstance(brev, GraderScore)  # graders that do not read it still grade


def test_none_is_no_answer_on_both_paths():
    assert ground_truth_fields(None) == ({}, "ground_truth is None (the dataset row has no answer)")
    runner = GradingRunner({"ref": GraderConfig(H.exact_match)}, aggregators=[])
    for row in both_rows(None):
        assert "ground_truth" not in row and "reference_response" not in row
        (ref,) = runner.run([row], on_missing="skip")["ref"]
        assert isinstance(ref, GraderAbstention)  # does not apply: not a failure


def test_a_list_stays_for_mappers_on_both_paths():
    for row in both_rows(np.array(["42", "forty-two"])):
        assert row["ground_truth"] == ["42", "forty-two"] and "reference_response" not in row


def test_a_trl_reference_column_is_kept_and_the_ground_truth_still_checked():
    cols = {"ground_truth": [math.nan, np.int64(4)], "reference_response": ["4", "four"]}
    rows = trl_rows(["q", "q"], ["c", "c"], cols)
    assert [r["reference_response"] for r in rows] == ["4", "four"]
    assert isinstance(rows[0]["ground_truth"], Unusable) and rows[1]["ground_truth"] == "4"
