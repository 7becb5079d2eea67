"""`rlreward grade` keeps groups whole: its chunks end on group boundaries (issue 19).

The real CLI (in-process ``main``) with a listwise group judge against the local judge
server (``RankingJudge``): every request the judge sends holds exactly one group's
candidates, the values equal grading the whole file in one ``Reward.grade``, and a
partial group gets error values, never numbers.
"""

from __future__ import annotations

import json
import re

import pytest

from rlreward.cli import CHUNK_ROWS, main
from rlreward.integrations.spec import load_spec
from tests.openai_server import RankingJudge

BLOCK = re.compile(r'<response id="(\d+)">\n(.*?)\n</response>', re.DOTALL)
QS = [0.3, 0.1, 0.6, 0.4, 0.9, 0.2, 0.8, 0.5, 0.7, 0.05, 0.35, 0.65]


def _spec(tmp_path, server, group_size, *, group_key=None, nested=False):
    judge = {"type": "listwise_judge", "group_size": group_size, "debias": False}
    if group_key:
        judge["group_key"] = group_key
    graders = {"listwise": judge, "length": {"type": "reward_function", "function": "length"}}
    model = {
        "model": "judge",
        "base_url": server.url,
        "api_key": "sk-cli-groups-0123456789",
        "timeout": 10,
        "max_retries": 0,
    }
    if nested:  # the group judge inside a nested reward: the outer runner hands it groups
        inner = {"judge_model": model, "cache": False, "graders": graders}
        (tmp_path / "inner.yaml").write_text(json.dumps(inner))
        graders = {"inner": {"type": "reward", "spec": "inner.yaml"}}
    spec = {
        "judge_model": model,
        "cache": False,
        "graders": graders,
        "runner": {"max_concurrency": 8},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(spec))
    return path


def _rows(prompts, size, key=False):
    out = []
    for p, n in prompts:
        for i in range(n):
            row = {"query": f"prompt {p}", "response": f"answer {i} of {p}: q={QS[i % len(QS)]}"}
            if key:
                row["uid"] = f"u{p}"
            out.append(row)
    return out


def _grade(tmp_path, spec, rows):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    code = main(["grade", "-q", "-c", str(spec), str(data), "-o", str(out)])
    return code, [json.loads(line) for line in out.read_text().splitlines()]


def _requests_hold_one_group_each(server, size):
    for body in server.requests:
        text = body["messages"][-1]["content"]
        shown = BLOCK.findall(text)
        assert len(shown) == size, len(shown)
        prompts = {t.split(":")[0].rsplit(" of ", 1)[1] for _, t in shown}
        assert len(prompts) == 1, prompts  # one prompt's candidates, never two groups


@pytest.mark.parametrize(
    ("size", "prompts", "key", "nested"),
    [
        (4, [(0, 4), (1, 4), (2, 4)], False, False),  # 12 rows of 3 prompts
        (3, [(0, 3), (1, 3), (2, 3), (3, 3)], False, False),  # 8-row chunks would split one
        (12, [(0, 12), (1, 12)], False, False),  # a group larger than a chunk of 8
        (4, [(0, 8), (1, 4)], False, False),  # one prompt's run of 2 groups
        (4, [(0, 4), (1, 4), (2, 4)], True, False),  # groups by group_key
        (4, [(0, 4), (1, 4), (2, 4)], False, True),  # inside a nested reward
    ],
)
def test_the_cli_hands_the_group_judge_whole_groups(
    tmp_path, openai_server, size, prompts, key, nested
):
    openai_server.responder = RankingJudge(bias=0.0)
    spec = _spec(tmp_path, openai_server, size, group_key="uid" if key else None, nested=nested)
    rows = _rows(prompts, size, key=key)
    assert len(rows) > CHUNK_ROWS
    code, out = _grade(tmp_path, spec, rows)
    assert code == 0
    assert len(openai_server.requests) == len(rows) // size  # one call per group
    _requests_hold_one_group_each(openai_server, size)
    reward = load_spec(spec).reward
    whole = reward.values(reward.grade(rows))  # the file in one batch
    assert None not in whole
    got = [r["grades"][reward.name]["score"] for r in out]
    assert got == pytest.approx(whole)
    if not nested:  # the judge's own column: the known quality of each response
        assert [r["grades"]["listwise"]["score"] for r in out] == pytest.approx(
            [float(r["response"].rsplit("q=", 1)[1]) for r in rows]
        )


def test_a_partial_group_in_the_file_gets_error_rows_never_numbers(tmp_path, openai_server):
    openai_server.responder = RankingJudge(bias=0.0)
    spec = _spec(tmp_path, openai_server, 4)
    rows = _rows([(0, 4), (1, 3), (2, 4), (3, 4)], 4)  # prompt 1 has 3 rollouts of 4
    code, out = _grade(tmp_path, spec, rows)
    assert code == 0  # the judge failed on 3 of 15 rows: under the default error limit
    judged = [r["grades"]["listwise"] for r in out]
    for i, grades in enumerate(judged):
        if 4 <= i < 7:
            assert "score" not in grades
            assert "group of 3 rows, group_size 4" in grades["error"]
            assert "error" in out[i]["grades"]["reward"]  # the reward of those rows too
        else:
            assert "score" in grades
    assert len(openai_server.requests) == 3
    _requests_hold_one_group_each(openai_server, 4)
