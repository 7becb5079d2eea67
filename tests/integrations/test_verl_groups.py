"""Whole uid groups for a group judge under verl's reward loop (``_groups``).

verl's ``RewardLoopManager.compute_rm_score`` cuts the batch into one chunk per
reward-loop worker and each worker calls ``RLRewardManager.run_single`` per sample, so
with the rows ordered ``a b c a b c`` and two workers every uid group straddles both
workers. The judge is the local server's ``RankingJudge`` (real openai client); every
request it gets must hold exactly one uid group's candidates, and the scores must equal
one in-process ``Reward.grade`` over the whole batch.
"""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from rlreward.embedded import embedded_model_path
from rlreward.integrations.spec import load_reward
from rlreward.integrations.verl._batch import item_row
from tests.integrations import adapter_helpers as H
from tests.integrations import verl_helpers as V
from tests.openai_server import RankingJudge

pytest.importorskip("verl")
ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-verl-groups-0123456789"
BLOCK = re.compile(r'<response id="(\d+)">\n(.*?)\n</response>', re.DOTALL)
# the embedded tokenizer decodes "q=0.3" as "q = 0. 3": the judge reads that form
_Q = re.compile(r"q = (\d)\. (\d)")


class DecodedRankingJudge(RankingJudge):
    """RankingJudge reading the quality from the tokenizer's decoded text."""

    def quality(self, text: str) -> float:
        m = _Q.search(text)
        return float(f"{m.group(1)}.{m.group(2)}") if m else self.default


def group_spec(url: str) -> dict[str, Any]:
    return {
        "judge_model": {"model": "judge", "base_url": url, "api_key": KEY},
        "graders": {
            "listwise": {
                "type": "listwise_judge",
                "group_size": 2,
                "group_key": "uid",
                "cache": False,  # count every call (specs cache on disk by default)
            },
            "brevity": {"callable": f"{V.H}:brevity"},
        },
    }


def samples(groups: dict[str, list[float]], order: list[str]) -> tuple[list[dict], list[str]]:
    """Rows in ``order`` (uids), each uid's next quality; returns (samples, uids)."""
    taken = {g: 0 for g in groups}
    out = []
    for g in order:
        q = groups[g][taken[g]]
        out.append(
            {
                "prompt": f"question {g}",
                "response": f"answer {taken[g]} of {g}: q={q}",
                "ground_truth": "x",
            }
        )
        taken[g] += 1
    return out, order


def dataproto(tok: Any, groups: dict[str, list[float]], order: list[str]) -> Any:
    rows, uids = samples(groups, order)
    data = H.make_dataproto(tok, rows)
    data.non_tensor_batch["uid"] = np.array(uids, dtype=object)
    return data


def config(spec: Any, n: int = 2, group_timeout: float | None = None) -> Any:
    cfg = H.verl_config(
        str(embedded_model_path()), str(spec), manager="RLRewardManager", custom_fn=False
    )
    cfg.actor_rollout_ref.rollout = {"n": n}
    if group_timeout is not None:
        cfg.reward.reward_kwargs.group_timeout = group_timeout
    return cfg


def reference(tok: Any, spec: dict[str, Any], data: Any) -> list[float | None]:
    """One in-process ``Reward.grade`` over the whole batch."""
    reward = load_reward(spec)
    rows = [item_row(data[i], tok).row for i in range(len(data))]
    return reward.values(reward.grade(rows))


def group_of_request(body: dict[str, Any]) -> set[str]:
    texts = [t for _, t in BLOCK.findall(body["messages"][-1]["content"])]
    return {re.search(r"of (\w+) :", t).group(1) for t in texts}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def tok():
    return H.tokenizer()


# -- in-process barrier (no Ray): one manager, samples arriving one at a time ----------
def run_single_each(manager: Any, data: Any) -> list[dict[str, Any]]:
    async def main() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(*(manager.run_single(data[i : i + 1]) for i in range(len(data))))
        )

    return asyncio.run(main())


def test_in_process_barrier_grades_whole_groups(openai_server, tok):
    from rlreward.integrations.verl import RLRewardManager

    openai_server.responder = DecodedRankingJudge()
    spec = group_spec(openai_server.url)
    data = dataproto(tok, {"a": [0.3, 0.8], "b": [0.6, 0.1]}, ["a", "b", "a", "b"])
    manager = RLRewardManager(config("unused.yaml"), tok, spec=spec)
    assert manager._groups is not None
    manager._groups._use_ray = False
    out = run_single_each(manager, data)
    bodies = list(openai_server.requests)
    assert all(len(group_of_request(b)) == 1 for b in bodies)
    # one judging per group (debias: 2 presentation orders), not one per member
    assert sorted(tuple(group_of_request(b)) for b in bodies) == [("a",)] * 2 + [("b",)] * 2
    got = [o["reward_extra_info"]["listwise"] for o in out]
    assert got == pytest.approx([0.3, 0.6, 0.8, 0.1])
    openai_server.reset()
    openai_server.responder = DecodedRankingJudge()
    want = reference(tok, spec, data)
    assert [o["reward_score"] for o in out] == pytest.approx(want)


def test_in_process_incomplete_group_times_out_into_error_values(openai_server, tok, caplog):
    from rlreward.integrations.verl import RLRewardManager

    openai_server.responder = DecodedRankingJudge()
    data = dataproto(tok, {"c": [0.3, 0.8], "d": [0.6]}, ["c", "d", "c"])
    manager = RLRewardManager(
        config("unused.yaml"), tok, spec=group_spec(openai_server.url), group_timeout=0.5
    )
    manager._groups._use_ray = False
    out = run_single_each(manager, data)
    assert [o["reward_extra_info"]["score__error"] for o in out] == [0, 1, 0]
    assert math.isnan(out[1]["reward_score"])
    assert "only 1 of the 2 rows of uid 'd'" in caplog.text


def test_no_group_grader_no_barrier(tok, tmp_path):
    from rlreward.integrations.verl import RLRewardManager

    manager = RLRewardManager(config("unused.yaml"), tok, spec=V.rules_spec())
    assert manager._groups is None


def test_group_size_must_match_rollout_n(openai_server, tok):
    from rlreward.errors import ConfigError
    from rlreward.integrations.verl import RLRewardManager

    with pytest.raises(ConfigError, match=r"rollout.n \(4\)"):
        RLRewardManager(config("unused.yaml", n=4), tok, spec=group_spec(openai_server.url))


# -- two Ray reward-loop workers ------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env}
    )
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_workers_judge_whole_uid_groups(ray_cluster, openai_server, tok, tmp_path):
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    openai_server.responder = DecodedRankingJudge()
    spec = group_spec(openai_server.url)
    path = tmp_path / "groups.yaml"
    path.write_text(yaml.safe_dump(spec))
    groups = {"e": [0.3, 0.8], "f": [0.6, 0.1], "g": [0.5, 0.9]}
    data = dataproto(tok, groups, ["e", "f", "g", "e", "f", "g"])  # chunks: e f g | e f g
    cfg = config(path)
    cfg.reward.num_workers = 2
    out = RewardLoopManager(cfg).compute_rm_score(data)
    bodies = list(openai_server.requests)
    assert bodies and all(len(group_of_request(b)) == 1 for b in bodies)
    per_group = {g: sum(group_of_request(b) == {g} for b in bodies) for g in groups}
    assert per_group == {g: 2 for g in groups}  # one judging per group (2 orders), not per member
    valid = H.valid_response_lengths(data)
    got = [out.batch["rm_scores"][i, valid[i] - 1].item() for i in range(len(data))]
    assert out.non_tensor_batch["listwise"].tolist() == pytest.approx(
        [0.3, 0.6, 0.5, 0.8, 0.1, 0.9]
    )
    openai_server.reset()
    openai_server.responder = DecodedRankingJudge()
    want = reference(tok, spec, data)
    assert got == pytest.approx(want, abs=1e-6)


@pytest.mark.slow
def test_ray_incomplete_group_times_out_into_error_values(
    ray_cluster, openai_server, tok, tmp_path
):
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    openai_server.responder = DecodedRankingJudge()
    path = tmp_path / "groups.yaml"
    path.write_text(yaml.safe_dump(group_spec(openai_server.url)))
    # 4 rows, so verl does not pad the batch (it pads with copies of the first rows)
    data = dataproto(tok, {"h": [0.3, 0.8], "k": [0.6], "m": [0.2]}, ["h", "k", "h", "m"])
    cfg = config(path, group_timeout=2.0)
    cfg.reward.num_workers = 2
    out = RewardLoopManager(cfg).compute_rm_score(data)
    cols = out.non_tensor_batch
    assert cols["score__error"].tolist() == [0, 1, 0, 1]
    assert cols["listwise__error"].tolist() == [0, 1, 0, 1]
    assert all(group_of_request(b) == {"h"} for b in openai_server.requests)
