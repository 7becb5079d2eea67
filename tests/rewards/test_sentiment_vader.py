"""The fast VADER path gives exactly stock vaderSentiment's scores."""

from __future__ import annotations

import random

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from rlreward.rewards.sentiment import _FastVader, vader_compound

SENTENCES = [
    "VADER is smart, handsome, and funny.",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "VADER is not smart, handsome, nor funny.",
    "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today only kinda sux! But I'll get by, lol",
    "Make sure you :) or :D today!",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "Not bad at all",
    "Never so good, without doubt the best, kiss of death, yeah right, the shit.",
    "no no no good",
    "",
    "   ",
    "no",
    "least good, at least good, very least bad",
    "NO GOOD. not BAD! KIND OF great?? So what?!?!",
    "kind",
    "but",
    "good but bad but good",
]


def test_matches_stock_vader_on_examples_and_random_text():
    stock, fast = SentimentIntensityAnalyzer(), _FastVader()
    rng = random.Random(0)
    vocab = " ".join(
        [
            "the good bad great terrible love hate not never so this without doubt kind of but",
            "very extremely barely least at no nor or isn't GREAT HORRIBLE !! ? :) the shit",
            "bus stop yeah right kiss death sort of",
        ]
    ).split()
    texts = SENTENCES + [
        " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 60))) + rng.choice([".", "!", "?"])
        for _ in range(600)
    ]
    for t in texts:
        expected = stock.polarity_scores(t)
        assert fast.polarity_scores(t) == expected, t
        assert fast.compound(t) == expected["compound"], t
    assert vader_compound("I love it") > 0 > vader_compound("I hate it")
