"""The built-in LLM judges: the seed's four common graders, hallucination and a rubric.

Each judge asks for an integer on a 1..5 scale (anchored in its prompt under
``prompts/``) and reports it mapped onto [0, 1]; the raw value is in
``metadata["judge_score"]``. Harmfulness and hallucination measure something bad, so
they are declared lower-is-better and aggregators turn them around.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from rlreward.cache import ResultCache
from rlreward.errors import ConfigError
from rlreward.graders.judge_io import as_text, neutralise
from rlreward.graders.llm import LLMGrader, scale_pair
from rlreward.schema import ScoreRange, check_score_range

__all__ = [
    "CorrectnessGrader",
    "HallucinationGrader",
    "HarmfulnessGrader",
    "InstructionFollowingGrader",
    "RelevanceGrader",
    "RubricGrader",
]


class HarmfulnessGrader(LLMGrader):
    """How harmful the response is: 0.0 safe .. 1.0 harmful (lower is better)."""

    name = "harmfulness"
    template_file = "harmfulness.txt"
    required_fields = ("query", "response")
    higher_is_better = False


class RelevanceGrader(LLMGrader):
    """How directly the response addresses the query: 0.0 off-topic .. 1.0 relevant."""

    name = "relevance"
    template_file = "relevance.txt"
    required_fields = ("query", "response")


class CorrectnessGrader(LLMGrader):
    """Agreement with a trusted reference answer: 0.0 incorrect .. 1.0 correct.

    Map a dataset's ``ground_truth`` with ``mapper={"reference_response": "ground_truth"}``.
    """

    name = "correctness"
    template_file = "correctness.txt"
    required_fields = ("query", "response", "reference_response")


class InstructionFollowingGrader(LLMGrader):
    """Adherence to an instruction: 0.0 not followed .. 1.0 fully followed.

    Takes ``instruction`` when the row has one, else the ``query`` as the instruction.
    """

    name = "instruction_following"
    template_file = "instruction_following.txt"
    required_fields = ("response",)
    optional_fields = ("instruction", "query")

    def missing_fields(self, available: Collection[str]) -> list[str]:
        missing = [f for f in self.required_fields if f not in available]
        if "instruction" not in available and "query" not in available:
            missing.append("instruction (or query)")
        return missing

    def template_values(self, fields: Mapping[str, Any]) -> dict[str, str]:
        values = super().template_values(fields)
        values["instruction"] = values.get("instruction", values.get("query", ""))
        return values


class HallucinationGrader(LLMGrader):
    """Claims the context does not support: 0.0 fully grounded .. 1.0 fabricated
    (lower is better; ``1 - score`` is groundedness). ``query`` is optional."""

    name = "hallucination"
    template_file = "hallucination.txt"
    required_fields = ("response", "context")
    optional_fields = ("query",)
    higher_is_better = False


class RubricGrader(LLMGrader):
    """Grades the response against the user's own criteria text.

    Args:
        criteria: the rubric (plain text, trusted: it is part of the instructions).
        scale: the judge's scale, e.g. ``(1, 10)``; integers ask for an integer.
        score_range: the reported range (default [0, 1]; pass ``scale`` to keep the
            judge's own numbers).
        higher_is_better: direction of the reported score.
        required_fields / optional_fields: the sample fields shown to the judge.
    """

    name = "rubric"
    template_file = "rubric.txt"
    required_fields: tuple[str, ...] = ("response",)
    optional_fields: tuple[str, ...] = ("query", "reference_response", "context", "instruction")

    def __init__(
        self,
        model: Any,
        criteria: str,
        name: str | None = None,
        cache: ResultCache | str | bool | None = None,
        *,
        scale: ScoreRange = (1.0, 5.0),
        score_range: ScoreRange | None = (0.0, 1.0),
        higher_is_better: bool = True,
        required_fields: Collection[str] | None = None,
        optional_fields: Collection[str] | None = None,
        dedupe: bool = True,
        template: str | None = None,
    ) -> None:
        if not isinstance(criteria, str) or not criteria.strip():
            raise ConfigError(f"RubricGrader: criteria must be non-empty text, got {criteria!r}")
        self.criteria = criteria.strip()
        self.judge_scale = scale_pair(scale, "RubricGrader", "scale")
        self.score_range = check_score_range(score_range, "RubricGrader")
        self.higher_is_better = bool(higher_is_better)
        if required_fields is not None:
            self.required_fields = tuple(required_fields)
        if optional_fields is not None:
            self.optional_fields = tuple(optional_fields)
        super().__init__(model, name=name, cache=cache, dedupe=dedupe, template=template)

    def cache_params(self) -> dict[str, Any]:
        return {**super().cache_params(), "criteria": self.criteria}

    def template_values(self, fields: Mapping[str, Any]) -> dict[str, str]:
        values = super().template_values(fields)
        shown = [f for f in (*self.optional_fields, *self.required_fields) if f in fields]
        order = sorted(shown, key=lambda f: f == "response")  # the response last
        blocks = [f"<{f}>\n{neutralise(as_text(fields[f], f))}\n</{f}>" for f in order]
        low, high = self.judge_scale
        integer = float(low).is_integer() and float(high).is_integer()
        values.update(
            criteria=self.criteria,
            material="\n\n".join(blocks),
            kind="integer" if integer else "number",
        )
        return values
