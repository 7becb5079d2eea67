"""Listwise and pairwise group judges against the real openai client and a local judge
with a KNOWN ranking and a KNOWN position bias (tests/openai_server.RankingJudge)."""

from __future__ import annotations

import pickle
import re

import pytest

from rlreward import GraderError, GraderScore, GradingRunner, ResultCache
from rlreward.errors import ConfigError, JudgeReplyError
from rlreward.graders.group_judges import ListwiseJudgeGrader, PairwiseJudgeGrader
from rlreward.graders.judge_io import parse_pairwise, parse_scores
from rlreward.integrations.spec import load_spec
from rlreward.reward import Reward
from rlreward.schema import GraderAbstention
from tests.openai_server import Action, OpenAIServer, RankingJudge, local_model

KEY = "sk-group-judge-0123456789"
BLOCK = re.compile(r'<response id="(\d+)">\n(.*?)\n</response>', re.DOTALL)


def model(server: OpenAIServer):
    return local_model(server, KEY)


def group(g: int, qualities: list[float]) -> list[dict]:
    return [
        {"query": f"prompt {g}", "response": f"answer {i} of group {g}: q={q}"}
        for i, q in enumerate(qualities)
    ]


def quality(text: str) -> float:
    return float(text.rsplit("q=", 1)[1])


def scores(col) -> list[float | None]:
    return [r.score if isinstance(r, GraderScore) else None for r in col]


def shown(body: dict) -> list[str]:
    return [text for _, text in BLOCK.findall(body["messages"][-1]["content"])]


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(x: list[float]) -> list[float]:
        order = sorted(range(len(x)), key=lambda i: x[i])
        out = [0.0] * len(x)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out

    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var


def grade(server, grader, rows, **kw):
    return GradingRunner({grader.name: grader}, show_progress=False, **kw).run(rows)


QS = [0.3, 0.1, 0.6, 0.4]  # a known ranking, shown in a shuffled row order


# -- listwise ----------------------------------------------------------------------------
def test_listwise_scores_map_back_under_every_presentation_order(openai_server):
    openai_server.responder = RankingJudge(bias=0.0)
    g = ListwiseJudgeGrader(model(openai_server), group_size=4, debias=True)
    rows = group(0, QS) + group(1, QS[::-1])
    res = grade(openai_server, g, rows)
    assert scores(res["listwise_judge"]) == pytest.approx(QS + QS[::-1])
    assert openai_server.n_requests == 8  # 4 rotations per group
    for body in openai_server.requests:  # each request: one group's candidates, numbered
        texts = shown(body)
        assert len(texts) == 4 and len({t.split("group ")[1][0] for t in texts}) == 1
        assert body["messages"][-1]["content"].count("prompt ") == 1  # the prompt once
    meta = res["listwise_judge"][0].metadata
    assert sorted(meta["positions"]) == [1, 2, 3, 4] and meta["calls"] == 4


def test_listwise_debias_recovers_the_ranking_and_without_it_the_bias_shows(openai_server):
    openai_server.responder = RankingJudge(bias=0.3)
    rows = group(0, QS)
    plain = grade(
        openai_server, ListwiseJudgeGrader(model(openai_server), group_size=4, debias=False), rows
    )
    assert openai_server.n_requests == 1
    biased = scores(plain["listwise_judge"])
    assert biased == pytest.approx([0.6, 0.1, 0.6, 0.4])  # row 0 sat in position 1
    assert spearman(biased, QS) < 0.9
    openai_server.reset()
    openai_server.responder = RankingJudge(bias=0.3)
    fair = grade(openai_server, ListwiseJudgeGrader(model(openai_server), group_size=4), rows)
    assert openai_server.n_requests == 4
    assert scores(fair["listwise_judge"]) == pytest.approx([q + 0.3 / 4 for q in QS])
    assert spearman(scores(fair["listwise_judge"]), QS) == pytest.approx(1.0)


def test_listwise_reversed_orders_cost_two_calls_and_cancel_only_linear_bias(openai_server):
    openai_server.responder = RankingJudge(bias=0.3)
    g = ListwiseJudgeGrader(model(openai_server), group_size=4, orders="reversed")
    res = grade(openai_server, g, group(0, QS))
    assert openai_server.n_requests == 2
    # a bonus for position 1 lands on the first and the last row, half each: documented
    assert scores(res["listwise_judge"]) == pytest.approx([0.45, 0.1, 0.6, 0.55])


def test_listwise_identical_candidates_are_judged_once_and_share(openai_server):
    openai_server.responder = RankingJudge()
    rows = group(0, [0.2, 0.7, 0.2, 0.5])
    rows[2] = dict(rows[0])
    res = grade(openai_server, ListwiseJudgeGrader(model(openai_server), group_size=4), rows)
    assert openai_server.n_requests == 3  # 3 distinct candidates, 3 rotations
    assert all(len(shown(b)) == 3 for b in openai_server.requests)
    col = res["listwise_judge"]
    assert scores(col) == pytest.approx([0.2, 0.7, 0.2, 0.5])
    assert col[2].metadata["duplicate_of"] == 0 and "judged once" in col[2].metadata["note"]
    assert "duplicate_of" not in col[0].metadata


def test_an_unusable_reply_is_asked_again_then_fails_the_group(openai_server):
    openai_server.responder = RankingJudge()
    missing_id = Action.reply({"scores": [{"id": 1, "reason": "r", "score": 0.5}]})
    openai_server.script(missing_id)
    g = ListwiseJudgeGrader(model(openai_server), group_size=2, debias=False)
    res = grade(openai_server, g, group(0, [0.2, 0.8]))
    assert scores(res["listwise_judge"]) == pytest.approx([0.2, 0.8])  # the re-ask worked
    assert openai_server.n_requests == 2

    openai_server.reset()
    openai_server.responder = RankingJudge()
    openai_server.script(missing_id)
    g = ListwiseJudgeGrader(model(openai_server), group_size=2, debias=False, reply_retries=0)
    res = grade(openai_server, g, group(0, [0.2, 0.8]))
    for r in res["listwise_judge"]:
        assert isinstance(r, GraderError)
        assert "no score for ids [2]" in r.error and r.metadata["raw"]


def test_a_failed_group_gives_error_values_and_spares_the_others(openai_server):
    judge = RankingJudge()

    def responder(body):
        if "prompt 1" in body["messages"][-1]["content"]:
            return Action.error(400, message="judge refuses")
        return judge(body)

    openai_server.responder = responder
    g = ListwiseJudgeGrader(model(openai_server), group_size=2)
    res = grade(
        openai_server, g, group(0, [0.2, 0.8]) + group(1, [0.5, 0.6]) + group(2, [0.9, 0.1])
    )
    col = res["listwise_judge"]
    assert scores(col[:2]) == pytest.approx([0.2, 0.8])
    assert scores(col[4:]) == pytest.approx([0.9, 0.1])
    assert all(isinstance(r, GraderError) and "judge refuses" in r.error for r in col[2:4])


def test_partial_groups_are_errors_in_a_reward_with_per_row_graders(openai_server):
    openai_server.responder = RankingJudge()
    judge = ListwiseJudgeGrader(model(openai_server), group_size=4)
    reward = Reward(
        {"listwise_judge": judge, "length": lambda response: min(len(response) / 100, 1)}
    )
    rows = group(0, QS) + group(1, QS)[:3]
    res = reward.grade(rows)
    assert scores(res["listwise_judge"][:4]) == pytest.approx(QS)
    for r in res["listwise_judge"][4:]:
        assert isinstance(r, GraderError) and "group of 3 rows, group_size 4" in r.error
    assert all(isinstance(r, GraderScore) for r in res["length"])
    values = reward.values(res)
    assert all(v is not None for v in values[:4]) and values[4:] == [None] * 3
    assert openai_server.n_requests == 4  # the partial group never reached the judge


def test_group_key_groups_by_uid(openai_server):
    openai_server.responder = RankingJudge()
    rows = group(0, [0.1, 0.9]) + group(1, [0.4, 0.3])
    for r, uid in zip(rows, [7, 7, 8, 8], strict=True):  # verl's uid may be any value
        r["uid"] = uid
    rows = [rows[0], rows[2], rows[1], rows[3]]
    g = ListwiseJudgeGrader(model(openai_server), group_size=2, group_key="uid", debias=False)
    res = grade(openai_server, g, rows)
    assert scores(res["listwise_judge"]) == pytest.approx([0.1, 0.4, 0.9, 0.3])


def test_calls_are_cached_by_their_messages(openai_server, tmp_path):
    openai_server.responder = RankingJudge()
    cache = ResultCache(tmp_path / "c.sqlite")
    rows = group(0, QS)
    first = grade(
        openai_server, ListwiseJudgeGrader(model(openai_server), cache=cache, group_size=4), rows
    )
    assert openai_server.n_requests == 4
    again = grade(
        openai_server, ListwiseJudgeGrader(model(openai_server), cache=cache, group_size=4), rows
    )
    assert openai_server.n_requests == 4  # nothing asked twice
    assert scores(again["listwise_judge"]) == scores(first["listwise_judge"])
    assert again["listwise_judge"][0].metadata["cached_calls"] == 4


def test_a_single_row_call_says_to_use_the_runner(openai_server):
    import asyncio

    g = ListwiseJudgeGrader(model(openai_server), group_size=2)
    r = asyncio.run(g.aevaluate(query="q", response="r"))
    assert isinstance(r, GraderError) and "grades whole groups" in r.error


def test_options_are_checked():
    with pytest.raises(ConfigError, match="group_size must be an integer >= 2"):
        ListwiseJudgeGrader("judge", group_size=1)
    with pytest.raises(ConfigError, match="orders must be"):
        ListwiseJudgeGrader("judge", group_size=2, orders="random")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pairs must be"):
        PairwiseJudgeGrader("judge", group_size=2, pairs="swiss")  # type: ignore[arg-type]


def test_group_judges_pickle(openai_server):
    g = PairwiseJudgeGrader(model(openai_server), group_size=4, pairs="circular")
    copy = pickle.loads(pickle.dumps(g))
    assert (copy.group_size, copy.pairs, copy.debias) == (4, "circular", True)


# -- pairwise ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pairs", "debias", "calls"),
    [("all", True, 12), ("all", False, 6), ("circular", True, 8), ("circular", False, 4)],
)
def test_pairwise_call_counts(openai_server, pairs, debias, calls):
    openai_server.responder = RankingJudge()
    g = PairwiseJudgeGrader(model(openai_server), group_size=4, pairs=pairs, debias=debias)
    res = grade(openai_server, g, group(0, QS))
    assert openai_server.n_requests == calls
    assert all(len(shown(b)) == 2 for b in openai_server.requests)
    rho = spearman(scores(res["pairwise_judge"]), QS)
    # circular: two comparisons each, so .3 and .4 both win one (a tie in rank)
    assert rho == pytest.approx(1.0) if pairs == "all" else rho > 0.9


def test_pairwise_win_rates_map_back_to_the_candidates(openai_server):
    openai_server.responder = RankingJudge()
    g = PairwiseJudgeGrader(model(openai_server), group_size=4)
    col = grade(openai_server, g, group(0, QS))["pairwise_judge"]
    assert scores(col) == pytest.approx([1 / 3, 0.0, 1.0, 2 / 3])  # QS = .3 .1 .6 .4
    assert (col[2].metadata["wins"], col[2].metadata["comparisons"]) == (3, 3)


def test_pairwise_debias_turns_biased_close_calls_into_ties(openai_server):
    qs = [0.1, 0.2, 0.5, 0.9]
    openai_server.responder = RankingJudge(bias=0.15)
    plain = PairwiseJudgeGrader(model(openai_server), group_size=4, debias=False)
    biased = scores(grade(openai_server, plain, group(0, qs))["pairwise_judge"])
    assert biased[0] == pytest.approx(1 / 3)  # shown first, it beats the better row 1
    assert biased[0] > biased[1]  # the bias shows: the ranking is broken
    openai_server.reset()
    openai_server.responder = RankingJudge(bias=0.15)
    fair = PairwiseJudgeGrader(model(openai_server), group_size=4)
    col = grade(openai_server, fair, group(0, qs))["pairwise_judge"]
    assert scores(col) == pytest.approx([0.5 / 3, 0.5 / 3, 2 / 3, 1.0])
    assert col[0].metadata["ties"] == col[1].metadata["ties"] == 1  # orders disagreed
    assert spearman(scores(col), qs) > spearman(biased, qs)


def test_pairwise_all_identical_abstains(openai_server):
    openai_server.responder = RankingJudge()
    rows = [dict(group(0, [0.5])[0]) for _ in range(3)]
    col = grade(openai_server, PairwiseJudgeGrader(model(openai_server), group_size=3), rows)[
        "pairwise_judge"
    ]
    assert openai_server.n_requests == 0
    assert all(isinstance(r, GraderAbstention) for r in col)


# -- spec ----------------------------------------------------------------------------------
def test_both_types_load_from_a_spec_and_grade_with_per_row_graders(openai_server):
    openai_server.responder = RankingJudge(bias=0.3)
    spec = load_spec(
        {
            "judge_model": {"model": "judge", "base_url": openai_server.url, "api_key": KEY},
            "cache": False,
            "graders": {
                "listwise": {"type": "listwise_judge", "group_size": 4},
                "pairwise": {"type": "pairwise_judge", "group_size": 4, "pairs": "circular"},
                "length": {"type": "reward_function", "function": "length"},
            },
        }
    )
    assert isinstance(spec.graders["listwise"].grader, ListwiseJudgeGrader)
    res = spec.reward.grade(group(0, QS) + group(1, QS[::-1]))
    assert openai_server.n_requests == 2 * (4 + 8)  # rotations + circular both orders
    for body in openai_server.requests:  # every request holds one group's candidates
        assert len({t.split("group ")[1][0] for t in shown(body)}) == 1
    assert spearman(scores(res["listwise"]), QS + QS[::-1]) > 0.9
    assert spearman(scores(res["pairwise"])[:4], QS) > 0.9
    assert all(v is not None for v in spec.reward.values(res))


def test_spec_refuses_a_missing_group_size():
    with pytest.raises(ConfigError, match="group_size"):
        load_spec({"judge_model": {"model": "m"}, "graders": {"l": {"type": "listwise_judge"}}})


# -- replies -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ('{"scores": [{"id": 1, "score": 0.5}]}', r"no score for ids \[2\]"),
        ('{"scores": [{"id": 1, "score": 0.5}, {"id": 1, "score": 0.4}]}', "scored twice"),
        ('{"scores": [{"id": 1, "score": 0.5}, {"id": 3, "score": 0.4}]}', "ids shown"),
        ('{"scores": [{"id": 1, "score": 0.5}, {"id": 2, "score": 4}]}', r"not in \[0, 1\]"),
        ('{"scores": [{"id": 1, "score": 0.5}, {"id": 2, "score": null}]}', r"not in \[0, 1\]"),
        ('{"scores": {"1": 0.5}}', "must be a list"),
        ('{"scores": [{"id": 1, "score": 1}, {"id": 2, "score": 0}]} {"scores": []}', "disagree"),
        ("I like the second one", "no JSON object"),
    ],
)
def test_parse_scores_refuses_to_guess(reply, message):
    with pytest.raises(JudgeReplyError, match=message):
        parse_scores(reply, [1, 2])


def test_parse_scores_and_pairwise_read_good_replies():
    got = parse_scores(
        '```json\n{"scores": [{"id": 2, "score": 0.25}, {"id": "1", "score": 1}]}\n```', [1, 2]
    )
    assert got == {1: (1.0, ""), 2: (0.25, "")}
    assert parse_pairwise('<think>{"winner": 1}</think>{"reason": "b", "winner": 2}') == (2, "b")
    with pytest.raises(JudgeReplyError, match="winner must be 1 or 2"):
        parse_pairwise('{"winner": 3}')


def test_describe_names_the_group_settings(openai_server):
    info = ListwiseJudgeGrader(model(openai_server), group_size=8, group_key="uid").describe()
    assert (info["group_size"], info["group_key"], info["debias"]) == (8, "uid", True)
    assert info["required_fields"] == ["query", "response", "uid"]


# -- usage and budget --------------------------------------------------------------------
def usage_totals(col) -> dict[str, int]:
    keys = ("calls", "prompt_tokens", "completion_tokens")
    return {k: sum(r.metadata["usage"][k] for r in col) for k in keys}


def test_usage_records_count_each_group_once_and_equal_what_the_server_sent(openai_server):
    openai_server.responder = RankingJudge()
    g = PairwiseJudgeGrader(model(openai_server), group_size=4, pairs="circular")
    col = grade(openai_server, g, group(0, QS) + group(1, QS))["pairwise_judge"]
    assert usage_totals(col) == {
        "calls": openai_server.n_requests,
        "prompt_tokens": openai_server.counts["prompt_tokens"],
        "completion_tokens": openai_server.counts["completion_tokens"],
    }
    assert col[0].metadata["usage"]["calls"] == 8 and col[1].metadata["usage"]["calls"] == 0
    assert col[1].metadata["usage"]["counted_in_row"] == 0


def test_a_re_asked_call_counts_both_requests(openai_server):
    openai_server.responder = RankingJudge()
    openai_server.script(Action.reply({"scores": []}))
    g = ListwiseJudgeGrader(model(openai_server), group_size=2, debias=False)
    col = grade(openai_server, g, group(0, [0.2, 0.8]))["listwise_judge"]
    assert scores(col) == pytest.approx([0.2, 0.8])
    assert col[0].metadata["calls"] == 2 == usage_totals(col)["calls"]


class Budget:
    """The budget protocol the group judges use: exhausted() -> reason | None, spend()."""

    def __init__(self, max_calls):
        self.max_calls, self.spent = max_calls, []

    def exhausted(self):
        return (
            f"budget max_calls={self.max_calls} reached"
            if len(self.spent) >= self.max_calls
            else None
        )

    def spend(self, record):
        self.spent.append(record)


def test_a_spent_budget_starts_no_call_and_fails_the_group_naming_it(openai_server):
    openai_server.responder = RankingJudge()
    g = ListwiseJudgeGrader(model(openai_server), group_size=2, debias=False)
    budget = Budget(max_calls=1)
    g.set_budget(budget)
    col = grade(openai_server, g, group(0, [0.2, 0.8]) + group(1, [0.5, 0.6]), max_concurrency=1)[
        "listwise_judge"
    ]
    assert scores(col[:2]) == pytest.approx([0.2, 0.8])
    for r in col[2:]:
        assert isinstance(r, GraderError) and "budget max_calls=1 reached" in r.error
        assert r.metadata["budget_exhausted"] is True
    assert openai_server.n_requests == 1 and len(budget.spent) == 1
    assert budget.spent[0]["prompt_tokens"] == openai_server.counts["prompt_tokens"]
