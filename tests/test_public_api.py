import subprocess
import sys

import rlreward


def test_every_exported_name_resolves():
    for name in rlreward.__all__:
        assert getattr(rlreward, name) is not None, name


#: The public API. A name added to or dropped from ``rlreward.__all__`` must be added or
#: dropped here too, on purpose (this is the snapshot the test compares against).
EXPECTED_EXPORTS = {
    "__version__",
    "BackendUnavailableError",
    "BaseGrader",
    "ChatModelError",
    "CompositeReward",
    "ConfigError",
    "CorrectnessGrader",
    "DatasetError",
    "DependencyError",
    "FamilyMismatchError",
    "FunctionGrader",
    "Grader",
    "GraderAbstention",
    "GraderConfig",
    "GraderError",
    "GraderResult",
    "GraderScore",
    "GradingResults",
    "GradingRunner",
    "HallucinationGrader",
    "HarmfulnessGrader",
    "InstructionFollowingGrader",
    "LLMGrader",
    "LegacyRLRewardManager",
    "MissingFieldsError",
    "OpenAIChatModel",
    "RLRewardError",
    "RLRewardManager",
    "RLTrainer",
    "RLTrainingConfig",
    "RelevanceGrader",
    "ResultCache",
    "Reward",
    "RewardFuncs",
    "RewardFunction",
    "RewardFunctionGrader",
    "RewardLoggingCallback",
    "RewardModelGrader",
    "RewardModelSourceConfig",
    "RewardModelTrainer",
    "RewardModelTrainingConfig",
    "RewardRegistry",
    "RewardSpec",
    "RubricGrader",
    "UnknownNameError",
    "UsageBudget",
    "UsageSummary",
    "WeightedSumAggregator",
    "batched",
    "check_model_family",
    "create_rl_trainer",
    "get_reward_function",
    "list_reward_functions",
    "load_spec",
    "make_reward_funcs",
}


def test_all_is_the_expected_export_set_without_duplicates():
    assert len(rlreward.__all__) == len(set(rlreward.__all__)), "duplicate names in __all__"
    exported = set(rlreward.__all__)
    assert exported == EXPECTED_EXPORTS, (
        f"added: {sorted(exported - EXPECTED_EXPORTS)}, "
        f"dropped: {sorted(EXPECTED_EXPORTS - exported)}"
    )
    assert sorted(dir(rlreward)) == sorted(EXPECTED_EXPORTS)


def test_exceptions_are_in_the_errors_tree():
    """Every exception rlreward exports derives from RLRewardError and lives in errors.py."""
    from rlreward import errors

    for name in EXPECTED_EXPORTS:
        value = getattr(rlreward, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, errors.RLRewardError), name
            assert value.__module__ == "rlreward.errors", name


def test_import_is_light():
    code = (
        "import sys, rlreward; "
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'verl', 'datasets') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


def test_unknown_attribute_is_an_attribute_error():
    try:
        rlreward.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
