"""Graders: anything with ``async aevaluate(**fields) -> GraderScore | GraderError``."""

from rlreward.graders.base import BaseGrader, Grader
from rlreward.graders.function import FunctionGrader

__all__ = ["BaseGrader", "FunctionGrader", "Grader"]
