"""math_answer reads the markers inside an <answer> block (####, "the answer is", boxed)."""

from __future__ import annotations

import pytest

from rlreward.rewards.reference import extract_final_answer
from rlreward.rewards.registry import get_reward_function


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("<answer>#### 42</answer>", 1.0),
        ("<answer>The answer is 42</answer>", 1.0),
        ("<answer>The final answer is: **42**.</answer>", 1.0),
        ("<answer>\\boxed{42}</answer>", 1.0),
        ("<think>maybe 41</think><answer>Answer: 42</answer>", 1.0),
        ("<answer>#### 41</answer>", 0.0),
        ("<answer>The answer is 41, not 42</answer>", 0.0),
        ("<answer>x = 42</answer>", 1.0),
    ],
)
def test_math_answer_reads_markers_inside_the_answer_tag(response: str, expected: float):
    fn = get_reward_function("math_answer")
    assert fn.score(response, reference="42") == expected


def test_a_plain_answer_block_is_still_the_answer_text():
    assert extract_final_answer("<answer>x^2 + 1</answer>") == "x^2 + 1"
    assert extract_final_answer("<answer> 3.5 </answer> and 7 later") == "3.5"
    fn = get_reward_function("math_answer")
    assert fn.score("<answer>x^{2}+1</answer>", reference="x^2 + 1") == 1.0
