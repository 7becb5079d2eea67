"""Graders: anything with ``async aevaluate(**fields) -> GraderScore | GraderError``."""

from rlreward.graders.base import Grader
from rlreward.graders.function import FunctionGrader

__all__ = ["FunctionGrader", "Grader"]
