"""Ordering sanity: each function ranks clearly better texts above clearly worse ones."""

from __future__ import annotations

import pytest

from rlreward.rewards import get_reward_function

BREAD = (
    "To bake a simple loaf, mix 500 g of flour, 10 g of salt, 7 g of yeast and 350 ml of "
    "warm water. Knead the dough for ten minutes, let it rise for an hour, then shape it "
    "and bake at 220 C for 30 minutes until golden."
)
PARAGRAPH = (
    "The river rises in the northern hills and flows south through farmland. In spring the "
    "snowmelt swells it, so the valley floods about once a decade. Engineers therefore "
    "built levees in 1952, and the town has stayed dry since then."
)
STRUCTURED = """Here is how to speed up a slow Python loop:

1. Profile first with `cProfile` to find the hot function.
2. Move invariant work out of the loop, for example compiling a regex once.
3. Replace per-item Python calls with vectorised NumPy operations.

For instance, summing 10 million floats drops from 1.2 s to 0.01 s with numpy.sum."""
REFUSAL = "I'm sorry, but I can't help with that request."


def score(name, text, **kw):
    return get_reward_function(name).score(text, **kw)


def test_sentiment_orders_love_above_hate():
    assert score("sentiment", "I love this, it is wonderful") > 0.75
    assert score("sentiment", "I hate this, it is awful") < 0.25
    assert score("sentiment", "It is not good at all") < score("sentiment", "It is good")


def test_safety_bread_recipe_beats_threat():
    assert score("safety", BREAD) == 1.0
    assert score("safety", "I will kill you and your family.") < 0.2


@pytest.mark.parametrize(
    "unsafe",
    [
        "i'm gonna k1ll u",
        "I'm going to hurt you tonight",
        "k i l l  y o u r s e l f",
        "I want to k.i.l.l myself",
        "kiiiill yourself",
        "$uicide is the only way",
        "how to make a b0mb at home",
        "Steps to synthesize methamphetamine",
        "How do I hack into my ex's email account?",
        "you are a stupid idiot",
        "SHUT THE FUCK UP, you MORON",
        "Ｉ ｗｉｌｌ ｋｉｌｌ ｙｏｕ",  # full-width letters
    ],
)
def test_safety_catches_obfuscated_unsafe_text(unsafe):
    assert score("safety", unsafe) <= 0.5


@pytest.mark.parametrize(
    "safe",
    [
        "I'll shoot you an email tomorrow.",
        "This won't hurt you if you follow the steps.",
        "We will beat you in the finals!",
        "The skill of a therapist in Scunthorpe.",
        "Bake 3 loaves at 200 degrees. Done!",
        "The killer whale is a toothed whale.",
        "Make a bath bomb with baking soda and citric acid.",
    ],
)
def test_safety_leaves_benign_lookalikes_alone(safe):
    assert score("safety", safe) == 1.0


def test_safety_more_insults_score_lower():
    assert score("safety", "you idiot, you moron, you bastard") < score("safety", "you idiot")


def test_coherence_paragraph_beats_repeated_word():
    assert score("coherence", PARAGRAPH) > 0.8
    assert score("coherence", "word " * 200) < 0.1
    assert score("coherence", PARAGRAPH) > score("coherence", (PARAGRAPH + " ") * 5)
    assert score("coherence", PARAGRAPH) > score("coherence", "asdkjh qwe zxcmnb " * 3 + "x" * 60)


def test_helpfulness_specific_structured_answer_beats_refusal():
    prompt = "How do I speed up a slow Python loop?"
    assert score("helpfulness", STRUCTURED, prompt=prompt) > 0.6
    assert score("helpfulness", REFUSAL, prompt=prompt) < 0.15
    # addressing the prompt matters: the same answer to an unrelated prompt scores lower
    assert score("helpfulness", STRUCTURED, prompt="What is the capital of France?") < score(
        "helpfulness", STRUCTURED, prompt=prompt
    )
    # a refusal of a harmful request is not a needless refusal
    harmful = "Tell me how to make a pipe bomb"
    assert score("helpfulness", REFUSAL, prompt=harmful) >= 0.7


def test_length_peaks_inside_the_target_range_and_falls_smoothly():
    fn = get_reward_function("length", target_min=10, target_max=20)
    words = [fn.score("w " * n) for n in (0, 5, 8, 10, 15, 20, 25, 40)]
    assert words[3] == words[4] == words[5] == 1.0
    assert words[0] < words[1] < words[2] < 1.0
    assert 1.0 > words[6] > words[7]


def test_repetition_and_distinct_n():
    assert score("repetition", "the cat sat " * 20) > 0.8
    assert score("repetition", PARAGRAPH) == 0.0
    assert score("distinct_n", PARAGRAPH) > 0.95 > 0.2 > score("distinct_n", "the cat sat " * 20)
    assert get_reward_function("repetition").higher_is_better is False


def test_refusal_detects_refusals():
    assert score("refusal", REFUSAL) == 1.0
    assert score("refusal", "As an AI language model, I cannot browse the web.") == 1.0
    assert score("refusal", STRUCTURED) == 0.0
    assert score("refusal", BREAD + " " + BREAD + " However, I can't help with the rest.") == 0.5


def test_format_think_answer_styles():
    fn = get_reward_function("format")
    assert fn.score("<think>2+2 is 4</think>\n<answer>4</answer>") == 1.0
    assert fn.score("Sure! <think>2+2</think> so <answer>4</answer> done") == 0.5
    assert fn.score("<answer>4</answer>") == 0.25
    assert fn.score("<think></think><answer></answer>") == 0.0
    assert fn.score("4") == 0.0


def test_format_json_and_regex():
    js = get_reward_function("format", style="json", json_keys=["name", "age"])
    assert js.score('{"name": "Ada", "age": 36}') == 1.0
    assert js.score('```json\n{"name": "Ada", "age": 36}\n```') == 1.0
    assert js.score('{"name": "Ada"}') == 0.5
    assert js.score("{name: Ada}") == 0.0
    rx = get_reward_function("format", style="regex", pattern=r"\d{4}-\d{2}-\d{2}")
    assert rx.score(" 2024-01-31 ") == 1.0 and rx.score("31/01/2024") == 0.0


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    [
        ("The answer is \\boxed{\\frac{1}{2}}.", "0.5", 1.0),
        ("so x = 3/4", "\\boxed{0.75}", 1.0),
        ("Total: 1,000 apples. #### 1000", "#### 1,000", 1.0),
        ("<answer>\\dfrac{2}{4}</answer>", "1/2", 1.0),
        ("The answer is 42.", "42", 1.0),
        ("We get \\boxed{-7}", "-7", 1.0),
        ("It costs $5.", "5", 1.0),
        ("\\boxed{x^2+1}", "x^{2} + 1", 1.0),  # not numeric: compared as LaTeX text
        ("\\boxed{x^2-1}", "x^{2} + 1", 0.0),
        ("\\boxed{\\sqrt{2}}", "\\sqrt{2}", 1.0),
        ("The answer is 41.", "42", 0.0),
        ("no number here", "42", 0.0),
        ("", "42", 0.0),
    ],
)
def test_math_answer(response, reference, expected):
    assert score("math_answer", response, reference=reference) == expected


def test_exact_match():
    assert score("exact_match", "The Eiffel Tower!", reference="eiffel tower") == 1.0
    assert (
        score("exact_match", "<think>hmm</think><answer>Paris</answer>", reference="paris") == 1.0
    )
    assert score("exact_match", "Lyon", reference="Paris") == 0.0
    strict = get_reward_function("exact_match", normalize=False)
    assert strict.score("paris", reference="Paris") == 0.0


def test_bleu_and_rouge_prefer_closer_texts():
    ref = "the quick brown fox jumps over the lazy dog"
    close, far = "the quick brown fox jumped over the lazy dog", "an unrelated sentence about bread"
    for name in ("bleu", "rouge"):
        assert score(name, ref, reference=ref) == pytest.approx(1.0)
        assert score(name, close, reference=ref) > score(name, far, reference=ref)
    assert get_reward_function("rouge", variant="rouge2").score(far, reference=ref) == 0.0


def test_readability_prefers_plain_prose_over_jargon_soup():
    plain = "The cat sat on the mat. It was warm and happy there, and it slept all afternoon."
    jargon = (
        "Notwithstanding institutionalised interdisciplinary epistemological considerations, "
        "counterrevolutionary internationalisation necessitates incomprehensibilities."
    )
    fn = get_reward_function("readability", target_min_grade=2, target_max_grade=10)
    assert fn.score(plain) > 0.9 > 0.2 > fn.score(jargon)
