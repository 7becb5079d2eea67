"""The reward-hacking monitor in a real TRL 1.12 GRPO/RLOO run (RewardMonitorCallback), and
RewardReference: a Reward as the monitor's reference."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import pytest

pytest.importorskip("trl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.errors import ConfigError
from rlreward.integrations.reward_monitor import MonitorConfig, RewardReference, build_monitor
from rlreward.integrations.spec import load_reward
from rlreward.integrations.trl import RewardMonitorCallback, make_reward_funcs
from rlreward.monitoring import StepRecord, Verdict
from tests.integrations import adapter_helpers as H
from tests.integrations import trl_host as T

KEYS = {
    "monitor/reward_mean",
    "monitor/reference_mean",
    "monitor/length_mean",
    "monitor/rows_scored",
    "monitor/alerts",
    "monitor/monitor/words",
}


@dataclass(frozen=True)
class FiresFrom:
    """A detector that fires at the first check at or after ``step`` (a known answer)."""

    step: int
    name: str = "fires_from"

    def __call__(self, records: list[StepRecord]) -> list[Verdict]:
        hit = next((r.step for r in records if r.step >= self.step), None)
        return [Verdict(self.name, "test", hit is not None, hit, f"step >= {self.step}")]


@pytest.fixture(scope="module")
def tok():
    return H.tokenizer()


def test_reference_columns_are_the_reward_its_aligned_components_and_its_monitors():
    reward = H.trl_reward("zero_bounds")  # brevity 2, judge 1 (fails on some), length 1
    ref = RewardReference(reward)
    assert ref.columns == (
        "reference",
        "brevity__aligned",
        "judge__aligned",
        "length__aligned",
        "words",
    )
    texts = ["it is 4", "x y z", "bad bad", "hello there friend", "q", "a longer text"]
    rows = [{"response": t} for t in texts]
    got = ref(rows)
    results = reward.grade(rows)
    assert got["reference"] == reward.values(results)
    for i, r in enumerate(reward.results(results)):
        components = r.metadata["components"]
        for g in ("brevity", "judge", "length"):
            assert got[f"{g}__aligned"][i] == components.get(g)  # None where judge failed
    assert got["words"] == [r.score for r in results["words"]]
    failed = results.errors("judge")
    assert failed and all(got["judge__aligned"][i] == 0.0 for i in failed)  # what on_error=
    # "zero" weighed; a grader that did not apply has no component: None, never a number
    abstaining = RewardReference(H.trl_reward("abstaining"))
    assert None in abstaining(rows)["abstains__aligned"]
    # a callable aggregator publishes no components: the reference and the monitors only
    assert RewardReference(H.trl_reward("callable")).columns == ("reference", "words")


def test_monitor_config_errors_name_the_option_and_the_fix():
    with pytest.raises(ConfigError, match=r"no option \['evry'\]"):
        MonitorConfig.from_options({"evry": 2}, "here")
    with pytest.raises(ConfigError, match="every = 0"):
        build_monitor(MonitorConfig(every=0), load_reward(H.spec_dict()))
    funcs, _ = make_reward_funcs(H.spec_dict())
    with pytest.raises(ConfigError, match="not both"):
        RewardMonitorCallback(funcs, MonitorConfig(), every=2)
    with pytest.raises(ConfigError, match="RewardMonitorCallback needs the functions"):
        RewardMonitorCallback([len])


@pytest.mark.slow
def test_grpo_logs_the_monitor_every_k_steps_and_writes_the_jsonl(tok, tmp_path):
    reward = H.trl_reward("zero_bounds")
    funcs, weights = make_reward_funcs(reward)
    path = tmp_path / "monitor.jsonl"
    cb = RewardMonitorCallback(funcs, every=2, sample_size=3, jsonl_path=path)
    # logging every 5 steps: the callback still logs each checked step
    trainer = T.grpo_trainer(
        tok,
        funcs,
        weights,
        T.arith_rows(),
        tmp_path,
        max_steps=6,
        logging_steps=5,
        per_device_train_batch_size=4,  # 4 rollouts per step: 2 prompts x 2 generations
    )
    cb.install(trainer)
    trainer.train()
    logged = [h for h in trainer.state.log_history if any(k.startswith("monitor/") for k in h)]
    assert [h["step"] for h in logged] == [2, 4, 6]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4, 6]
    for h, line in zip(logged, lines, strict=True):
        assert set(h) >= KEYS
        assert {k for k in h if k.startswith("monitor/")} == {*line, "monitor/alerts"} - {"step"}
        assert all(h[k] == pytest.approx(v) for k, v in line.items() if k != "step")
        assert h["monitor/rows_scored"] == 3  # the cap: 3 of the step's 4 rows
        assert h["monitor/gap"] == pytest.approx(0.0, abs=1e-12)  # reference = trained reward
        assert h["monitor/zero_spread_groups"] in (0.0, 0.5, 1.0)  # 2 groups of 2 per step
        assert "monitor/kl" not in h  # beta = 0: TRL logs no KL, none is made up
        assert math.isfinite(h["monitor/entropy"]) and h["monitor/entropy"] == h["entropy"]
    # step 6 is the only step in its log (5 was logged): TRL's own reward mean is the same
    assert logged[-1]["monitor/reward_mean"] == pytest.approx(logged[-1]["reward"], abs=1e-5)
    assert cb.monitor.cost.reference_calls == 3 and cb.monitor.cost.rows_scored == 9
    assert cb.monitor.summary()["checks"] == 3


@pytest.mark.slow
def test_rloo_with_another_reference_stops_on_an_alert_and_saves_the_best(tok, tmp_path):
    trained = H.trl_reward("two_aggregators")  # a "learned" reward the trainer optimises
    funcs, weights = make_reward_funcs(trained)
    reference = H.spec_dict(on_error="zero")  # the true composite, as a spec dict
    config = MonitorConfig(
        every=1,
        sample_size=4,
        reference=reference,
        jsonl_path=tmp_path / "m.jsonl",
        on_alert="best_checkpoint",
        detectors=[FiresFrom(3)],
    )
    cb = RewardMonitorCallback(funcs, config)
    trainer = T.grpo_trainer(
        tok, funcs, weights, T.arith_rows(), tmp_path, [cb], rloo=True, max_steps=8
    )
    trainer.train()
    assert trainer.state.global_step == 3  # stopped after the step that raised the alert
    assert [a.step for a in cb.monitor.alerts] == [3]
    last = trainer.state.log_history[-2]  # the last step's log (the summary line follows)
    assert last["step"] == 3 and last["monitor/alerts"] == 1.0
    for g in ("match", "brevity", "tox"):  # the reference's components, not the trained one's
        assert f"monitor/component/{g}__aligned" in last
    assert "monitor/rank_corr" in last or "monitor/gap" in last
    best = cb.monitor.best_step
    assert (tmp_path / f"checkpoint-{best}").is_dir()  # saved when it became the best


@pytest.mark.slow
def test_eval_batches_are_not_rollouts_and_a_second_process_refuses_stop(tok, tmp_path):
    from datasets import Dataset

    funcs, weights = make_reward_funcs(H.spec_dict())
    cb = RewardMonitorCallback(funcs, every=1, sample_size=4)
    trainer = T.grpo_trainer(
        tok,
        funcs,
        weights,
        T.arith_rows(),
        tmp_path,
        [cb],
        max_steps=1,
        per_device_eval_batch_size=2,
    )
    trainer.train()
    seen = cb._latest()
    trainer.eval_dataset = Dataset.from_list([{"prompt": "name a colour", "ground_truth": "red"}])
    metrics = trainer.evaluate()
    assert math.isfinite(metrics["eval_reward"])  # the reward functions ran on it
    assert cb._latest() is seen  # the evaluation batch was graded, not taken as rollouts
    rows = cb._latest().rows  # the training batch, not the evaluation one
    assert all(r["query"].startswith("what is") for r in rows)
    assert [h["step"] for h in trainer.state.log_history if "monitor/reward_mean" in h] == [1]

    stop = RewardMonitorCallback(funcs, on_alert="stop")
    args = type("Args", (), {"world_size": 2})()
    with pytest.raises(ConfigError, match="on_alert='log'"):
        stop.on_train_begin(args, None, None)
