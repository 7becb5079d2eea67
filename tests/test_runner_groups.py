"""The runner's group-grader path: one call per whole group, wrong-size groups refused."""

import asyncio

import pytest

from rlreward import GradingRunner
from rlreward.errors import ConfigError
from rlreward.graders.group import form_groups, is_group_grader
from rlreward.reward import Reward
from rlreward.schema import GraderAbstention, GraderError, GraderScore


class LengthRank:
    """A group grader: each response's length rank within its group, on [0, 1]."""

    name = "rank"
    score_range = (0.0, 1.0)
    higher_is_better = True
    required_fields = ("query", "response")

    def __init__(self, group_size, group_key=None, fail_on=None, delay=0.0):
        self.group_size = group_size
        self.group_key = group_key
        if group_key:
            self.required_fields = ("query", "response", group_key)
        self.fail_on = fail_on
        self.delay = delay
        self.calls = []
        self.in_flight = self.max_in_flight = 0

    async def aevaluate(self, **fields):
        raise AssertionError("a group grader is never called per row")

    async def aevaluate_group(self, rows):
        self.calls.append([r["response"] for r in rows])
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.fail_on is not None and any(r["query"] == self.fail_on for r in rows):
                raise RuntimeError("judge down")
            order = sorted(range(len(rows)), key=lambda i: len(rows[i]["response"]))
            ranks = {i: k / max(len(rows) - 1, 1) for k, i in enumerate(order)}
            return [GraderScore(self.name, ranks[i]) for i in range(len(rows))]
        finally:
            self.in_flight -= 1


def rows_for(prompts, n, key=False):
    out = []
    for p in prompts:
        for k in range(n):
            row = {"query": p, "response": "x" * (k + 1)}
            if key:
                row["uid"] = f"id-{p}"
            out.append(row)
    return out


def scores(col):
    return [r.score if isinstance(r, GraderScore) else None for r in col]


def test_protocol_detection():
    assert is_group_grader(LengthRank(4))
    assert not is_group_grader(lambda **f: 1.0)


def test_one_call_per_whole_group_in_row_order():
    g = LengthRank(4)
    res = GradingRunner({"rank": g}, show_progress=False).run(rows_for(["a", "b"], 4))
    assert len(g.calls) == 2
    assert all(len(c) == 4 for c in g.calls)
    assert scores(res["rank"]) == [0, 1 / 3, 2 / 3, 1] * 2


def test_a_partial_group_is_never_judged_smaller():
    g = LengthRank(4)
    rows = rows_for(["a"], 4) + rows_for(["b"], 3)
    res = GradingRunner({"rank": g}, show_progress=False).run(rows)
    assert len(g.calls) == 1  # only the whole group
    assert scores(res["rank"][:4]) == [0, 1 / 3, 2 / 3, 1]
    for r in res["rank"][4:]:
        assert isinstance(r, GraderError)
        assert "group of 3 rows, group_size 4" in r.error and "split" in r.error
        assert r.metadata["group_error"] is True


def test_a_run_not_a_multiple_of_group_size_is_refused_whole():
    g = LengthRank(4)
    rows = rows_for(["a"], 8) + rows_for(["b"], 6)  # two groups of a; 6 rows of b
    res = GradingRunner({"rank": g}, show_progress=False).run(rows)
    assert len(g.calls) == 2
    assert all(isinstance(r, GraderScore) for r in res["rank"][:8])
    errors = res["rank"][8:]
    assert all(isinstance(r, GraderError) for r in errors)
    assert "6 consecutive rows share one prompt" in errors[0].error


def test_group_key_gathers_rows_wherever_they_sit():
    g = LengthRank(3, group_key="uid")
    a, b = rows_for(["a"], 3, key=True), rows_for(["b"], 3, key=True)
    rows = [a[0], b[0], a[1], b[1], a[2], b[2]]
    res = GradingRunner({"rank": g}, show_progress=False).run(rows)
    assert sorted(map(sorted, g.calls)) == [["x", "xx", "xxx"]] * 2
    assert scores(res["rank"]) == [0, 0, 0.5, 0.5, 1, 1]


def test_group_key_with_the_wrong_count_or_mixed_prompts_is_an_error():
    g = LengthRank(3, group_key="uid")
    rows = rows_for(["a"], 2, key=True) + rows_for(["b"], 3, key=True)
    rows[-1] = {**rows[-1], "query": "other"}
    res = GradingRunner({"rank": g}, show_progress=False).run(rows)
    assert g.calls == []
    assert "group uid='id-a' has 2 rows, group_size 3" in res["rank"][0].error
    assert "different 'query' values" in res["rank"][2].error


def test_a_failed_group_fails_its_members_only():
    g = LengthRank(2, fail_on="b")
    res = GradingRunner({"rank": g}, show_progress=False).run(rows_for(["a", "b", "c"], 2))
    assert scores(res["rank"]) == [0, 1, None, None, 0, 1]
    assert "judge down" in res["rank"][2].error and "judge down" in res["rank"][3].error


def test_group_timeout_and_wrong_result_count_are_errors():
    slow = LengthRank(2, delay=0.5)
    res = GradingRunner({"rank": slow}, show_progress=False, timeout=0.05).run(rows_for(["a"], 2))
    assert all("timed out" in r.error for r in res["rank"])

    class Short(LengthRank):
        async def aevaluate_group(self, rows):
            return [1.0]

    res = GradingRunner({"rank": Short(2)}, show_progress=False).run(rows_for(["a"], 2))
    assert all("returned 1 results for a group of 2" in r.error for r in res["rank"])


def test_out_of_range_group_scores_are_errors_for_base_graders():
    from rlreward.graders.base import BaseGrader

    class Wide(BaseGrader):
        name = "wide"
        required_fields = ("query", "response")
        group_size = 2
        group_key = None

        async def aevaluate_group(self, rows):
            return [0.5, 3.0]

    res = GradingRunner({"wide": Wide()}, show_progress=False).run(rows_for(["a"], 2))
    assert res["wide"][0].score == 0.5
    assert "outside the declared range" in res["wide"][1].error


def test_groups_share_the_concurrency_bound():
    g = LengthRank(2, delay=0.05)
    GradingRunner({"rank": g}, show_progress=False, max_concurrency=3).run(
        rows_for([str(i) for i in range(12)], 2)
    )
    assert len(g.calls) == 12 and g.max_in_flight == 3


def test_rows_the_grader_does_not_apply_to_keep_their_abstention():
    g = LengthRank(2)
    rows = [*rows_for(["a"], 2), {"query": "b"}]
    res = GradingRunner({"rank": g}, show_progress=False).run(rows, on_missing="skip")
    assert scores(res["rank"][:2]) == [0, 1]
    assert isinstance(res["rank"][2], GraderAbstention)


def test_group_grader_combines_with_per_row_graders_in_one_reward():
    g = LengthRank(2)
    reward = Reward({"rank": g, "short": lambda response: 1.0 / len(response)})
    res = reward.grade(rows_for(["a", "b"], 2) + rows_for(["c"], 1))
    assert res["short"][0].score == 1.0 and res["short"][1].score == 0.5
    assert scores(res["rank"][:4]) == [0, 1, 0, 1]
    values = reward.values(res)
    assert values[:4] == pytest.approx([0.5, 0.75, 0.5, 0.75])
    assert values[4] is None  # the rank grader failed (partial group): error under on_error


def test_group_size_below_one_is_a_config_error():
    with pytest.raises(ConfigError, match="group_size must be >= 1"):
        GradingRunner({"rank": LengthRank(0)}, show_progress=False)


def test_form_groups_passes_over_decided_rows():
    entries = [{"query": "a"}, GraderAbstention("g", "n/a"), {"query": "a"}, {"query": "b"}]
    groups = form_groups(entries, 2)
    assert groups[0].indices == (0, 2) and groups[0].error is None
    assert groups[1].indices == (3,) and "group of 1 rows, group_size 2" in groups[1].error


def test_a_group_grader_as_a_monitor_is_graded_and_never_weighed():
    g = LengthRank(2)
    reward = Reward({"short": lambda response: 1.0 / len(response)}, monitors={"rank": g})
    res = reward.grade(rows_for(["a"], 2))
    assert scores(res["rank"]) == [0, 1] and len(g.calls) == 1
    assert reward.values(res) == [1.0, 0.5]


def test_a_single_row_through_a_reward_is_a_partial_group():
    reward = Reward({"rank": LengthRank(2)})
    result = asyncio.run(reward.aevaluate(query="a", response="x"))
    assert isinstance(result, GraderError)
    assert result.metadata["graders"] == {"rank": None}


def test_a_nested_reward_with_a_group_grader_gets_whole_groups():
    # a reward holding a group grader is a group grader itself: the outer runner hands it
    # whole groups and its inner agrade judges each in one call
    g = LengthRank(2)
    inner = Reward({"rank": g, "short": lambda response: 1.0 / len(response)})
    assert is_group_grader(inner) and (inner.group_size, inner.group_key) == (2, None)
    outer = Reward({"inner": inner, "one": lambda response: 1.0})
    rows = rows_for(["a", "b"], 2)
    res = outer.grade(rows)
    assert g.calls == [["x", "xx"], ["x", "xx"]]  # one call per group, never per row
    flat = Reward({"rank": LengthRank(2), "short": lambda response: 1.0 / len(response)})
    want = flat.values(flat.grade(rows))
    assert scores(res["inner"]) == pytest.approx(want)
    assert res["inner"][1].metadata["graders"] == {"rank": 1.0, "short": 0.5}
    assert outer.values(res) == pytest.approx([(w + 1.0) / 2 for w in want])


def test_a_nested_reward_groups_by_key_and_refuses_partial_groups():
    g = LengthRank(2, group_key="uid")
    outer = Reward({"inner": Reward({"rank": g})})
    rows = rows_for(["a", "b"], 2, key=True)
    rows = [rows[0], rows[2], rows[1], rows[3]]  # a group's rows need not be consecutive
    res = outer.grade(rows)
    assert scores(res["inner"]) == [0, 0, 1, 1] and len(g.calls) == 2
    res = outer.grade(rows[:3])  # uid "id-b" has one row: never judged as a group of 1
    assert scores(res["inner"]) == [0, None, 1]
    bad = res["inner"][1]  # refused by the outer runner, before any call
    assert bad.metadata["group_error"] and "has 1 rows, group_size 2" in bad.error


def test_a_nested_reward_whose_group_graders_disagree_grades_row_by_row():
    # no one group size to hand it: it stays a per-row grader, and its group graders refuse
    inner = Reward({"two": LengthRank(2), "three": LengthRank(3)})
    assert inner.group_size is None and not is_group_grader(inner)
    assert Reward({"plain": lambda response: 1.0}).group_size is None
    res = Reward({"inner": inner}).grade(rows_for(["a"], 2))
    assert all(isinstance(r, GraderError) for r in res["inner"])
