"""The reward ``create_rl_trainer`` trains on: one ``Reward``, built before any model loads.

The rule (it adds, it never re-derives what a spec says):

- **a spec alone**: the spec's own ``Reward`` (``load_reward(reward_spec)``), as it is:
  its graders, bounds, ``on_error``, aggregators and ``reward:`` choice untouched;
- **rule functions and/or a reward model beside a spec**: a new ``Reward`` whose graders
  are ``{"spec": <the spec's Reward, nested>, <function names>..., "reward_model": ...}``
  under one ``WeightedSumAggregator("reward")`` with weights ``reward_spec_weight``
  (the spec), ``reward_function_weights`` (the functions, default 1 each) and
  ``reward_model_weight``, and ``on_error="error"``: a row where any member failed is
  a failure (PPO stops the step with the reason, GRPO gets None for the row), never a
  made-up score. A spec's monitors are lifted to the new reward (graded once,
  reported beside it, never weighed);
- **no spec**: a ``Reward`` of the added graders under the same aggregator;
- **gates** (``reward_function_gates`` with a reward model trained here): the gate
  graders join as members that are graded on every row and applied to the weighted sum
  (cap, multiply, floor), never weighed: the model learns the ungated composite, and
  the constraint is computed, not learned, so the policy cannot trade it away.

A reward model joined to bounded graders (rule functions, or a spec whose reward is on
[0, 1]) must be on a known scale, or its raw logit would swamp or vanish beside them:
declared (``reward_model_normalize="sigmoid"``, or ``reward_model_bounds=(low, high)``,
scores clipped to them) or known from its training (a model trained by rlreward learns
labels on its label reward's range: ``label_range`` in its metadata, else the measured
``label_stats`` min/max; a model trained in this run: the label reward's range).
Otherwise ``create_rl_trainer`` raises a ConfigError with the fix. A reward model alone
keeps its raw score (PPO's usual reward).

The reward model is a ``DeferredRewardModel``: a grader that declares its fields and
range now and loads the network on its first row (after stage 1 has trained it), so
``trainer.reward`` exists as soon as ``create_rl_trainer`` returns.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from rlreward.aggregators import WeightedSumAggregator
from rlreward.errors import ConfigError
from rlreward.graders.base import BaseGrader
from rlreward.reward import Reward
from rlreward.schema import ScoreRange

__all__ = [
    "REWARD_MODEL_NAME",
    "REWARD_NAME",
    "SPEC_NAME",
    "DeferredRewardModel",
    "build_reward",
    "expected_reward",
    "measured_bounds",
]

logger = logging.getLogger(__name__)

#: the names of the members ``create_rl_trainer`` adds, and of its aggregator
SPEC_NAME = "spec"
REWARD_MODEL_NAME = "reward_model"
REWARD_NAME = "reward"
NORMALIZE_CHOICES = (None, "sigmoid")


class DeferredRewardModel(BaseGrader):
    """A ``RewardModelGrader`` that loads its model on the first row it grades.

    Its name, fields, range and direction are known without the model, so a ``Reward``
    can hold it before the model exists (a model trained in stage 1) or loads. It
    pickles as its reference; a copy loads its own model.

    Args:
        model: a hub id or a local directory (need not exist yet).
        normalize: None (raw, unbounded) or ``"sigmoid"`` (to (0, 1)).
        **options: other ``RewardModelGrader`` keywords (``batch_size``, ``dtype``, ...).
    """

    required_fields = ("response",)
    optional_fields = ("query",)

    def __init__(
        self,
        model: str,
        name: str = REWARD_MODEL_NAME,
        *,
        normalize: str | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(model, (str, os.PathLike)) or not os.fspath(model).strip():
            raise ConfigError(
                f"DeferredRewardModel: model must be a hub id or a directory, got {model!r}"
            )
        if normalize not in NORMALIZE_CHOICES:
            raise ConfigError(
                f"reward_model_normalize={normalize!r} is not allowed; use 'sigmoid' (scores "
                "squashed to (0, 1)) or None (raw scores; give reward_model_bounds to join "
                "bounded graders)"
            )
        self.model = os.fspath(model)
        self.name = name
        self.normalize = normalize
        self.options = dict(options)
        self.score_range: ScoreRange | None = None if normalize is None else (0.0, 1.0)
        self.higher_is_better = True
        self._grader: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._grader is not None

    def load(self) -> Any:
        """The ``RewardModelGrader`` (loaded on the first call)."""
        with self._lock:
            if self._grader is None:
                from rlreward.graders.reward_model import RewardModelGrader

                logger.info("loading reward model %s", self.model)
                self._grader = RewardModelGrader(
                    self.model, name=self.name, normalize=self.normalize, **self.options
                )
        return self._grader

    async def _aevaluate(self, **fields: Any) -> Any:
        return await self.load().aevaluate(**fields)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_grader"] = None
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model, "normalize": self.normalize}

    def __repr__(self) -> str:
        return f"DeferredRewardModel({self.model!r}, normalize={self.normalize!r})"


def _trained_metadata(model_dir: str | None) -> dict[str, Any]:
    """The rlreward metadata of a local reward model; {} for a hub id or none recorded."""
    from rlreward.models.reward_model_io import read_metadata

    if not model_dir or not os.path.isdir(model_dir):
        return {}
    return read_metadata(model_dir) or {}


def measured_bounds(model_dir: str) -> tuple[float, float] | None:
    """The label range a model trained by rlreward learned (from its metadata), or None.

    ``label_range`` (the label reward's declared range) when recorded, else the measured
    ``label_stats`` min/max; None for a hub id or a model without rlreward metadata.
    """
    meta = _trained_metadata(model_dir)
    if not meta:
        return None
    rng = meta.get("label_range")
    if rng is None and isinstance(meta.get("label_stats"), Mapping):
        rng = (meta["label_stats"].get("min"), meta["label_stats"].get("max"))
    try:
        low, high = (float(v) for v in rng)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return (low, high) if low < high else None


def expected_reward(model_dir: str | None) -> float:
    """The mean label of a reward model trained by rlreward (its metadata), else 0: where
    a fresh PPO value head starts."""
    stats = _trained_metadata(model_dir).get("label_stats")
    mean = stats.get("mean") if isinstance(stats, Mapping) else None
    return float(mean) if isinstance(mean, (int, float)) and math.isfinite(mean) else 0.0


def _without_monitors(reward: Reward) -> Reward:
    """The same reward (graders, aggregators, reward choice) without its monitors."""
    runner = reward.runner
    return Reward(
        runner.grader_configs,
        list(runner.aggregators.values()),
        reward=reward.name,
        max_concurrency=runner.max_concurrency,
        timeout=runner.timeout,
    )


def build_reward(
    *,
    spec: Any = None,
    spec_weight: float = 1.0,
    functions: Sequence[Any] | None = None,
    function_weights: Sequence[float] | None = None,
    reward_model: DeferredRewardModel | None = None,
    reward_model_weight: float = 1.0,
    reward_model_bounds: Sequence[float] | None = None,
    known_bounds: Sequence[float] | None = None,
    gates: Mapping[str, Mapping[str, Any]] | None = None,
    owner: str = "create_rl_trainer",
) -> Reward:
    """The one reward of a spec plus added rule functions and reward model (module docstring).

    ``spec``: anything ``load_reward`` takes (a Reward, RewardSpec, dict, YAML path).
    ``reward_model_bounds``: the declared range the reward model is normalised by
    (clipped); ``known_bounds``: its range as known from its training
    (``measured_bounds``), used only when it joins bounded graders.
    ``gates``: ``{rule function name: {mode, floor, bounds}}`` (``training.labels.
    gate_graders``): graders graded on every row and applied to the weighted sum as
    gates (cap, multiply, floor), never weighed; the reward model then needs a known
    scale, as beside any bounded grader.
    """
    from rlreward.integrations.spec import load_reward
    from rlreward.training.labels import function_graders, gate_graders

    spec_reward = None if spec is None else load_reward(spec)
    if spec_reward is not None and not functions and reward_model is None and not gates:
        return spec_reward  # the spec's own Reward: nothing added, nothing re-derived
    graders: dict[str, Any] = {}
    weights: dict[str, float] = {}
    monitors: Mapping[str, Any] = {}
    if spec_reward is not None:
        monitors = spec_reward.monitors
        graders[SPEC_NAME] = _without_monitors(spec_reward) if monitors else spec_reward
        weights[SPEC_NAME] = float(spec_weight)
    if functions:
        added = function_graders(functions)
        fw = list(function_weights) if function_weights is not None else [1.0] * len(added)
        for (name, grader), w in zip(added.items(), fw, strict=True):
            if name in (SPEC_NAME, REWARD_MODEL_NAME, REWARD_NAME):
                raise ConfigError(
                    f"{owner}: a reward function is named {name!r}, a name the trainer's reward "
                    f"gives to {'its aggregator' if name == REWARD_NAME else 'a member'}; pass "
                    "reward_functions={'<another name>': function} (a dict names them)"
                )
            graders[name] = grader
            weights[name] = float(w)
    gate_members, gate_specs, gate_bounds = gate_graders(gates)
    for name in gate_members:
        if name in graders or name in (SPEC_NAME, REWARD_MODEL_NAME, REWARD_NAME):
            raise ConfigError(
                f"{owner}: gate {name!r} is also a member of the reward (a weighted function "
                "or a name the trainer gives); a gate is graded once and never weighed"
            )
    graders.update(gate_members)
    bounds: dict[str, tuple[float, ...]] = dict(gate_bounds)
    if reward_model is not None:
        graders[REWARD_MODEL_NAME] = reward_model
        weights[REWARD_MODEL_NAME] = float(reward_model_weight)
        others = {n: g for n, g in graders.items() if n != REWARD_MODEL_NAME}
        bounded = sorted(n for n, g in others.items() if g.score_range is not None)
        declared = reward_model_bounds
        if declared is None and bounded:
            declared = known_bounds
        if declared is not None and reward_model.score_range is None:
            low, high = (float(v) for v in declared)
            bounds[REWARD_MODEL_NAME] = (low, high)
        elif bounded and reward_model.score_range is None:
            raise ConfigError(
                f"{owner}: the reward model {reward_model.model!r} gives raw, unbounded scores "
                f"and would be averaged with {bounded}, whose values lie in [0, 1], so the "
                "weights would not mean what they say; declare its scale with "
                "reward_model_normalize='sigmoid' (scores squashed to (0, 1)) or "
                "reward_model_bounds=(low, high) (the range its scores are normalised by, "
                "clipped), or use a reward model trained by rlreward (its label range is in "
                "its metadata)"
            )
    aggregator = WeightedSumAggregator(
        REWARD_NAME,
        weights=weights,
        on_error="error",
        bounds=bounds or None,
        gates=gate_specs or None,
    )
    max_concurrency, timeout = 32, None
    if spec_reward is not None:
        max_concurrency = spec_reward.runner.max_concurrency
        timeout = spec_reward.runner.timeout
    return Reward(
        graders,
        aggregator,
        monitors=dict(monitors) or None,
        max_concurrency=max_concurrency,
        timeout=timeout,
    )
