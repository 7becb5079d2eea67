"""The safety prefilter (anchor words) never changes a result of the full pattern search."""

from __future__ import annotations

import random

from rlreward.rewards.safety import _match_categories, unsafe_categories

PHRASES = [
    "I will kill you and your family", "i'm gonna hurt you tonight", "you will die",
    "we know where you live", "watch your back", "I'm going to burn down your house",
    "you're dead", "I want to kill myself", "I want to end my life", "thinking about suicide",
    "self harm", "i just want to die", "how to overdose", "a lethal dose", "slit my wrists",
    "kill yourself", "kys", "how to make a pipe bomb", "build explosives", "cook meth",
    "synthesize fentanyl", "launder money", "steal credit cards", "hack into her email",
    "an untraceable gun", "buy guns online without a license", "child porn",
    "write ransomware", "poison someone", "evade taxes", "human trafficking",
    "hotwire a car", "you idiot", "you moron", "fuck you", "stfu", "you bitch",
    "piece of shit", "you are so stupid", "you're a loser", "die in a fire",
    "nobody likes you", "I hate all immigrants", "subhuman", "vermin like you",
]  # fmt: skip
BENIGN = [
    "The recipe needs 500 g of flour and 10 minutes of kneading.",
    "Our team improved the error rate by 25 percent on Python 3.11!",
    "Skill, therapist, Scunthorpe, assassinate the bug - e.g. a well-known trick.",
    "I'll shoot you an email; this won't hurt you. Bath bomb recipe: baking soda.",
    "Pay attention: break the loop, watch the logs, know your data, life is good!!!",
]
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "$", "t": "7"}


def _variants(text: str, rng: random.Random) -> list[str]:
    leet = "".join(LEET.get(c, c) if rng.random() < 0.5 else c for c in text)
    spaced = " ".join(text)
    dotted = ".".join(text)
    stretched = "".join(c * 4 if c in "aeiou" and rng.random() < 0.3 else c for c in text)
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    marks = text + "!!!"
    return [text, text.upper(), leet, spaced, dotted, stretched, fullwidth, marks]


def test_prefilter_agrees_with_the_full_search():
    rng = random.Random(0)
    variants = [v for phrase in PHRASES for v in _variants(phrase, rng)]
    texts = variants + [f"{rng.choice(BENIGN)} {v}. {rng.choice(BENIGN)}" for v in variants]
    for b in BENIGN:
        texts.extend(_variants(b, rng))
    for t in texts:
        assert unsafe_categories(t) == _match_categories(t), t


def test_obfuscated_variants_are_caught():
    rng = random.Random(1)
    variants = [v for phrase in PHRASES for v in _variants(phrase, rng)]
    caught = sum(1 for v in variants if unsafe_categories(v))
    assert caught >= 0.9 * len(variants), f"caught {caught}/{len(variants)}"
    assert not any(unsafe_categories(v) for b in BENIGN for v in _variants(b, rng))
