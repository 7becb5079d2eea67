"""RewardFunctionGrader: a rule function (a ``RewardFunction``) as a Grader.

It is what a rule-function grader type builds (``{type: length}``, see
``rlreward.graders.registry``). A user's own function is graded by a FunctionGrader,
the grader every entrance builds from it (``rlreward.graders.registry.as_grader``);
given here, it is seen through ``CallableReward``: the same calling convention and the
same values.

Fields: ``response`` (required), ``query`` (required when the function needs a prompt,
passed when it uses one) and ``reference_response`` (required when it needs a
reference). The grader carries the function's range and direction, so aggregators
normalise it like any other grader.

Cheap rule functions run inline on the event loop (a thread hop would cost more than
the call). Expensive ones (``expensive = True``: the semantic functions) go through a
MicroBatcher: concurrent ``aevaluate`` calls from the runner become one batched call in
a worker thread.

Chat-format fields (a list of ``{"role", "content"}`` messages, as TRL passes for
conversational datasets) become text by the one rule of ``rlreward.messages``: the
response is its last assistant message, the query its last user message.
"""

from __future__ import annotations

from typing import Any

from rlreward.checks import number_rule
from rlreward.errors import ConfigError
from rlreward.graders.base import BaseGrader
from rlreward.graders.batching import MicroBatcher
from rlreward.messages import field_text
from rlreward.rewards.base import RewardFunction
from rlreward.rewards.registry import RewardRegistry
from rlreward.rewards.wrap import as_reward_function

__all__ = ["RewardFunctionGrader"]

_Item = tuple[str, str | None, str | None]


class RewardFunctionGrader(BaseGrader):
    """A reward function (by registry name, or an instance / callable) as a Grader.

    Args:
        function: a registry name (``"length"``), a RewardFunction, or a plain callable.
        name: result key; defaults to the function's name.
        registry: where a name is looked up (default: the process-wide registry).
        max_batch_size: largest batch for expensive functions.
        **params: parameters of a function given by name (``target_min=50``).
    """

    def __init__(
        self,
        function: str | RewardFunction | Any,
        name: str | None = None,
        *,
        registry: RewardRegistry | None = None,
        max_batch_size: int = 64,
        **params: Any,
    ) -> None:
        if isinstance(function, str):
            fn = (registry or RewardRegistry()).get_reward_function(function, **params)
        else:
            if params:
                raise ConfigError(
                    f"RewardFunctionGrader: parameters {sorted(params)} apply only to a function "
                    "given by name; configure the instance you passed instead"
                )
            fn = as_reward_function(function)
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigError(f"RewardFunctionGrader: name must be a non-empty str, got {name!r}")
        self.function = fn
        self.name = name or fn.name
        required, optional = ["response"], []
        for needs, uses, field in (
            (fn.needs_prompt, fn.uses_prompt, "query"),
            (fn.needs_reference, fn.uses_reference, "reference_response"),
        ):
            if needs:
                required.append(field)
            elif uses:
                optional.append(field)
        self.required_fields = tuple(required)
        self.optional_fields = tuple(optional)
        self.score_range = (float(fn.score_range[0]), float(fn.score_range[1]))
        self.higher_is_better = bool(fn.higher_is_better)
        if number_rule(max_batch_size, integer=True, low=1) is not None:
            raise ConfigError(
                f"RewardFunctionGrader: max_batch_size must be an int >= 1, got {max_batch_size!r}"
            )
        self.max_batch_size = max_batch_size
        self._batcher: MicroBatcher[_Item, float] | None = None
        if fn.expensive:
            self._batcher = MicroBatcher(self._score_items, max_batch_size, run_in_thread=True)

    def _score_items(self, items: list[_Item]) -> list[float]:
        """Score a batch, grouping items by which optional inputs they carry."""
        out: list[float] = [0.0] * len(items)
        groups: dict[tuple[bool, bool], list[int]] = {}
        for i, (_, p, r) in enumerate(items):
            groups.setdefault((p is not None, r is not None), []).append(i)
        for (has_p, has_r), idx in groups.items():
            scores = self.function(
                [items[i][0] for i in idx],
                prompts=[items[i][1] for i in idx] if has_p else None,  # type: ignore[misc]
                references=[items[i][2] for i in idx] if has_r else None,  # type: ignore[misc]
            )
            for i, s in zip(idx, scores, strict=True):
                out[i] = s
        return out

    async def _aevaluate(self, **fields: Any) -> float:
        text = field_text(fields["response"], "response")
        query, reference = fields.get("query"), fields.get("reference_response")
        prompt = None if query is None else field_text(query, "query")
        ref = None if reference is None else field_text(reference, "reference_response")
        if self._batcher is not None:
            return await self._batcher.submit((text, prompt, ref))
        return self.function.score(text, prompt=prompt, reference=ref)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_batcher"] = None  # loop-bound; rebuilt on unpickling
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.function.expensive:
            self._batcher = MicroBatcher(self._score_items, self.max_batch_size, run_in_thread=True)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "function": self.function.describe()}

    def __repr__(self) -> str:
        return f"RewardFunctionGrader({self.function.name!r}, name={self.name!r})"
