import math

import numpy as np
import pytest

from rlreward.schema import GraderError, GraderScore, is_score


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_scores_are_rejected(bad):
    with pytest.raises(ValueError, match="must be finite"):
        GraderScore("g", bad)


@pytest.mark.parametrize("bad", ["0.5", True, None, [1.0]])
def test_non_numeric_scores_are_rejected(bad):
    with pytest.raises(TypeError, match="real number"):
        GraderScore("g", bad)


def test_scores_are_coerced_to_float():
    s = GraderScore("g", np.float32(0.25))
    assert type(s.score) is float and s.score == 0.25
    assert GraderScore("g", 1).score == 1.0


def test_error_has_no_score_and_is_not_ok():
    e = GraderError("g", "boom", {"k": 1})
    assert not hasattr(e, "score")
    assert e.ok is False and GraderScore("g", 0.0).ok is True
    assert not is_score(e) and is_score(GraderScore("g", 0.0))
