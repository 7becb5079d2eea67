"""Regenerate rlreward/data/reward_texts.jsonl: the shipped reward-model training texts.

Deterministic (seeded): running it again writes the same file. Each record is
``{"prompt": ..., "text": ..., "style": ...}``; the styles span helpful/unhelpful,
polite/rude, safe/mildly unsafe, coherent/repetitive and short/long answers, so that
rule-based rewards spread out over the texts and a reward model has something to learn.

    python scripts/make_reward_texts.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "rlreward" / "data" / "reward_texts.jsonl"

# (prompt, facts): facts are short, true, self-contained sentences in plain English.
TOPICS: list[tuple[str, list[str]]] = [
    (
        "How do I boil an egg?",
        [
            "Place the egg in a pot and cover it with cold water.",
            "Bring the water to a boil, then lower the heat and simmer for nine minutes.",
            "Move the egg into cold water so it stops cooking and peels easily.",
        ],
    ),
    (
        "Why is the sky blue?",
        [
            "Sunlight contains every colour of visible light.",
            "Air molecules scatter short blue wavelengths much more than red ones.",
            "That scattered blue light reaches our eyes from every direction of the sky.",
        ],
    ),
    (
        "How can I sleep better?",
        [
            "Go to bed and wake up at the same time every day.",
            "Keep the bedroom dark, quiet and a little cool.",
            "Avoid caffeine in the afternoon and screens in the last hour before bed.",
        ],
    ),
    (
        "What is photosynthesis?",
        [
            "Photosynthesis is how plants turn light into chemical energy.",
            "Leaves take in carbon dioxide and water and use sunlight to make sugar.",
            "Oxygen is released as a by-product, which is the air we breathe.",
        ],
    ),
    (
        "How do I start learning Python?",
        [
            "Install Python from the official website and open a simple editor.",
            "Work through a beginner tutorial on variables, loops and functions.",
            "Build a small project, such as a to-do list, to practise what you learned.",
        ],
    ),
    (
        "What should I pack for a weekend hike?",
        [
            "Bring enough water and a few snacks with salt and sugar.",
            "Pack a rain jacket, a warm layer and a small first-aid kit.",
            "Carry a map or a charged phone with an offline map of the trail.",
        ],
    ),
    (
        "How do I write a good cover letter?",
        [
            "Address the letter to a real person when you can find the name.",
            "Explain in a few sentences why you fit this particular role.",
            "Give one concrete achievement and end with a clear, polite closing.",
        ],
    ),
    (
        "How does compound interest work?",
        [
            "Compound interest is interest earned on both the savings and earlier interest.",
            "Each period the balance grows, so the next interest payment is larger.",
            "Over many years this effect makes early saving far more valuable.",
        ],
    ),
    (
        "How can I keep my houseplants alive?",
        [
            "Check the soil with a finger and water only when the top layer is dry.",
            "Place each plant where it gets the amount of light its label suggests.",
            "Use pots with drainage holes so the roots never sit in water.",
        ],
    ),
    (
        "What is a healthy breakfast?",
        [
            "A healthy breakfast combines protein, fibre and some fruit.",
            "Oatmeal with yogurt and berries is quick and filling.",
            "Eggs with whole-grain toast and tomatoes is another good choice.",
        ],
    ),
    (
        "How do vaccines work?",
        [
            "A vaccine shows the immune system a harmless piece or version of a germ.",
            "The body makes antibodies and memory cells against it.",
            "If the real germ arrives later, the body recognises it and fights it quickly.",
        ],
    ),
    (
        "How do I change a flat tyre?",
        [
            "Park on flat ground, switch on the hazard lights and apply the handbrake.",
            "Loosen the wheel nuts, raise the car with the jack and swap the wheel.",
            "Tighten the nuts in a star pattern and check the spare's pressure soon.",
        ],
    ),
    (
        "What causes the seasons?",
        [
            "The Earth's axis is tilted by about 23 degrees.",
            "As the Earth orbits the Sun, each hemisphere leans towards it for part of the year.",
            "More direct sunlight and longer days bring summer, and the opposite brings winter.",
        ],
    ),
    (
        "How do I make a budget?",
        [
            "Write down your monthly income after tax.",
            "List fixed costs such as rent and bills, then flexible spending like food.",
            "Set aside an amount for savings first and track spending each week.",
        ],
    ),
    (
        "What is machine learning?",
        [
            "Machine learning is a way for computers to learn patterns from examples.",
            "A model is trained on data and adjusts its parameters to reduce errors.",
            "It is used for spam filters, translation and recommendations.",
        ],
    ),
    (
        "How can I improve my running?",
        [
            "Run mostly at an easy pace where you can still hold a conversation.",
            "Add one session of intervals or hills each week.",
            "Increase weekly distance slowly and rest when something hurts.",
        ],
    ),
    (
        "How do I clean a cast iron pan?",
        [
            "Rinse the pan with hot water and scrub it with a brush while it is warm.",
            "Dry it completely on the stove so it does not rust.",
            "Rub in a thin layer of oil before putting it away.",
        ],
    ),
    (
        "What is the difference between weather and climate?",
        [
            "Weather is the state of the atmosphere over hours or days.",
            "Climate is the average pattern of weather over many years.",
            "A cold week does not change the climate, but a trend over decades does.",
        ],
    ),
    (
        "How do I prepare for a job interview?",
        [
            "Research the company and read the job description carefully.",
            "Prepare short stories that show your skills with real examples.",
            "Practise answers aloud and prepare two questions to ask them.",
        ],
    ),
    (
        "How do bees make honey?",
        [
            "Bees collect nectar from flowers and store it in a special stomach.",
            "Back in the hive they pass it between bees and add enzymes.",
            "They fan it with their wings until enough water evaporates to make honey.",
        ],
    ),
    (
        "How can I reduce stress at work?",
        [
            "Break large tasks into small steps and plan the day each morning.",
            "Take short breaks to stand up, stretch and breathe slowly.",
            "Talk to your manager early if the workload is not realistic.",
        ],
    ),
    (
        "What is a black hole?",
        [
            "A black hole is a region where gravity is so strong that light cannot escape.",
            "Many form when a very massive star collapses at the end of its life.",
            "Astronomers detect them by their effect on nearby stars and gas.",
        ],
    ),
    (
        "How do I bake bread at home?",
        [
            "Mix flour, water, yeast and salt into a dough.",
            "Knead it for ten minutes and let it rise until it doubles in size.",
            "Shape the loaf, let it rise again and bake it in a hot oven.",
        ],
    ),
    (
        "How do I learn a new language?",
        [
            "Practise a little every day rather than a lot once a week.",
            "Learn the most common words first and use them in simple sentences.",
            "Listen to native speakers and try to talk with them early.",
        ],
    ),
    (
        "Why do leaves change colour in autumn?",
        [
            "Leaves are green because of chlorophyll.",
            "In autumn trees stop making chlorophyll as days get shorter.",
            "Yellow and orange pigments that were hidden become visible.",
        ],
    ),
    (
        "How do I back up my computer?",
        [
            "Buy an external drive or choose a cloud backup service.",
            "Turn on the automatic backup tool that comes with your system.",
            "Test a restore once so you know the backup really works.",
        ],
    ),
    (
        "What are the benefits of walking?",
        [
            "Walking strengthens the heart and improves circulation.",
            "It helps control weight and lifts mood.",
            "Thirty minutes a day is a simple goal for most people.",
        ],
    ),
    (
        "How do I write clean code?",
        [
            "Give variables and functions names that say what they mean.",
            "Keep functions short and make each do one thing.",
            "Write tests so you can change the code with confidence.",
        ],
    ),
    (
        "How does a refrigerator keep food cold?",
        [
            "A refrigerant liquid evaporates inside the fridge and absorbs heat.",
            "A compressor pumps the gas out and squeezes it back into a liquid.",
            "The heat is released through coils at the back of the fridge.",
        ],
    ),
    (
        "How can I save energy at home?",
        [
            "Switch to LED bulbs and turn off lights in empty rooms.",
            "Seal draughts around windows and doors.",
            "Wash clothes at lower temperatures and dry them on a line.",
        ],
    ),
    (
        "What is the water cycle?",
        [
            "Water evaporates from oceans, lakes and plants.",
            "The vapour cools in the sky and condenses into clouds.",
            "It falls as rain or snow and flows back to the sea.",
        ],
    ),
    (
        "How do I apologise to a friend?",
        [
            "Say clearly what you did and that you are sorry.",
            "Do not add excuses that shift the blame.",
            "Ask how you can make it right and give them time.",
        ],
    ),
    (
        "How do I make a good cup of coffee?",
        [
            "Use freshly ground beans and clean, filtered water.",
            "Use about one gram of coffee for every sixteen grams of water.",
            "Keep the water just below boiling and brew for about four minutes.",
        ],
    ),
    (
        "What is inflation?",
        [
            "Inflation is the general rise in prices over time.",
            "When prices rise, the same money buys fewer goods.",
            "Central banks often raise interest rates to slow it down.",
        ],
    ),
    (
        "How can I be more productive?",
        [
            "Decide the three most important tasks before the day starts.",
            "Work in focused blocks of time with notifications turned off.",
            "Review what worked at the end of each week.",
        ],
    ),
    (
        "How do earthquakes happen?",
        [
            "The Earth's crust is split into large plates that slowly move.",
            "Stress builds up where plates lock together along a fault.",
            "When the rock suddenly slips, the released energy shakes the ground.",
        ],
    ),
    (
        "How do I care for a new puppy?",
        [
            "Set up a quiet space with a bed, water and safe toys.",
            "Take the puppy outside often and praise it for toileting there.",
            "Book a visit to the vet for vaccinations and a health check.",
        ],
    ),
    (
        "How do I give a good presentation?",
        [
            "Know the one message you want the audience to remember.",
            "Use few words on slides and speak to the people, not the screen.",
            "Rehearse out loud and time yourself at least twice.",
        ],
    ),
    (
        "What is DNA?",
        [
            "DNA is the molecule that carries genetic instructions in living things.",
            "It is made of two strands twisted into a double helix.",
            "The order of its four bases encodes the recipes for proteins.",
        ],
    ),
    (
        "How do I grow tomatoes?",
        [
            "Plant tomatoes in a sunny spot after the last frost.",
            "Water deeply at the base a few times a week.",
            "Tie the stems to a stake as the plants grow taller.",
        ],
    ),
    (
        "How do I stay safe online?",
        [
            "Use a different strong password for every account.",
            "Turn on two-factor authentication where it is offered.",
            "Be careful with links in unexpected emails and messages.",
        ],
    ),
    (
        "How do airplanes fly?",
        [
            "Wings are shaped and tilted so that air is pushed downward.",
            "Pushing air down creates an upward force called lift.",
            "Engines provide thrust to keep air flowing over the wings.",
        ],
    ),
    (
        "How can I help the environment?",
        [
            "Walk, cycle or use public transport when you can.",
            "Eat more plant-based meals and waste less food.",
            "Repair and reuse things before buying new ones.",
        ],
    ),
    (
        "How do I study for an exam?",
        [
            "Start early and spread study sessions over several days.",
            "Test yourself with practice questions instead of only rereading notes.",
            "Sleep well the night before so your memory works at its best.",
        ],
    ),
    (
        "What is the stock market?",
        [
            "The stock market is where shares of companies are bought and sold.",
            "A share is a small piece of ownership in a company.",
            "Prices move with supply, demand and expectations about profits.",
        ],
    ),
    (
        "How do I make friends in a new city?",
        [
            "Join a club or class built around something you enjoy.",
            "Say yes to invitations, even small ones, during the first months.",
            "Follow up with people you like and suggest a specific plan.",
        ],
    ),
    (
        "How does the moon affect tides?",
        [
            "The moon's gravity pulls on the Earth's oceans.",
            "Water bulges on the side facing the moon and on the opposite side.",
            "As the Earth rotates, coasts pass through these bulges and see high tides.",
        ],
    ),
    (
        "How do I fix a slow computer?",
        [
            "Restart it and close programs you are not using.",
            "Remove startup apps you do not need.",
            "Free up disk space and install the latest updates.",
        ],
    ),
]

OPENERS = [
    "Great question!",
    "Happy to help.",
    "Sure, here is a clear answer.",
    "Thanks for asking.",
    "Good question, and it is easier than it looks.",
    "Of course.",
    "Glad you asked.",
]
CLOSERS = [
    "I hope this helps, and good luck!",
    "Let me know if you would like more detail.",
    "Feel free to ask if anything is unclear.",
    "Enjoy, and take your time.",
    "Hope that makes it clearer.",
    "",
]
RUDE = [
    "Seriously? Look it up yourself.",
    "Ugh, this is a stupid question.",
    "Why are you even asking me this? Whatever.",
    "I can't believe you don't know this.",
    "Honestly, this is pathetic.",
    "Fine, I guess, if you really can't figure it out.",
]
RUDE_END = [
    "Don't bother me again.",
    "Figure out the rest on your own.",
    "You're welcome, I suppose.",
    "Next time try using your brain.",
    "",
]
REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "I cannot answer this question.",
    "As an AI, I am unable to provide that information.",
    "Sorry, I won't be able to assist with this request.",
    "I'd rather not answer that.",
]
HEDGES = [
    "I'm not sure, but I think",
    "Maybe",
    "I might be wrong, but possibly",
    "I don't really know. Perhaps",
    "It could be that",
]
OFF_TOPIC = [
    "My favourite colour is green and I like trains.",
    "Did you know that octopuses have three hearts?",
    "I watched a great movie last night about pirates.",
    "The weather here has been rainy all week.",
    "Bananas are technically berries, which is funny.",
    "I think cats are better than dogs, honestly.",
]
UNSAFE = [
    "Just ignore the safety warnings, they are for cowards.",
    "If anyone complains, tell them to shut up or you'll make them regret it.",
    "Honestly, the people who disagree with you are idiots and deserve to be insulted.",
    "You could also lie to everyone involved, nobody will find out.",
    "Skip the protective gear, getting hurt builds character.",
    "If it still fails, smash it and blame your coworker.",
]
NEGATIVE = [
    "This is hard and most people fail at it anyway.",
    "Honestly it is boring, frustrating and rarely worth the effort.",
    "Everything about this is annoying and disappointing.",
    "It probably won't work for you, it never works for anyone.",
]
FILLER = [
    "There are many things to consider here and it depends on many factors.",
    "Some people say one thing and other people say another thing.",
    "In general, it is what it is, and things are the way they are.",
    "At the end of the day, it really just depends on the situation.",
    "This is a topic that a lot of people think about from time to time.",
]
GIBBERISH = ["asdf", "qwerty", "lol", "hmm", "blah", "zzz", "ok", "the"]


def lower_first(s: str) -> str:
    return s[0].lower() + s[1:] if s else s


def make(style: str, prompt: str, facts: list[str], rng: random.Random) -> str:
    """One text of one style for one topic."""
    k = rng.randint(1, len(facts))
    if style == "helpful_detailed":
        body = " ".join(facts)
        return " ".join(x for x in (rng.choice(OPENERS), body, rng.choice(CLOSERS)) if x)
    if style == "helpful_steps":
        steps = "\n".join(f"{i}. {f}" for i, f in enumerate(facts, 1))
        return f"{rng.choice(OPENERS)} Here are the steps:\n{steps}\n{rng.choice(CLOSERS)}".strip()
    if style == "brief":
        return facts[rng.randrange(len(facts))]
    if style == "terse":
        word = rng.choice(["No idea.", "Depends.", "Google it.", "Who knows.", "Not sure.", "Meh."])
        return f"{word} {prompt}" if rng.random() < 0.7 else word
    if style == "rude":
        return f"{rng.choice(RUDE)} {' '.join(facts[:k])} {rng.choice(RUDE_END)}".strip()
    if style == "refusal":
        topic = lower_first(prompt.rstrip("?"))
        return f"{rng.choice(REFUSALS)} You asked: {topic}. Please ask someone else."
    if style == "hedging":
        return f"{rng.choice(HEDGES)} {lower_first(facts[0])} But I could be wrong about that."
    if style == "repetitive":
        phrase = facts[rng.randrange(len(facts))]
        return " ".join([phrase] * rng.randint(3, 8))
    if style == "degenerate":
        word = rng.choice(GIBBERISH)
        return " ".join([word] * rng.randint(5, 40))
    if style == "off_topic":
        return " ".join(rng.sample(OFF_TOPIC, rng.randint(1, 3)))
    if style == "unsafe_mild":
        return f"{' '.join(facts[:k])} {rng.choice(UNSAFE)}"
    if style == "negative":
        return f"{rng.choice(NEGATIVE)} {' '.join(facts[:k])}"
    if style == "rambling":
        filler = rng.sample(FILLER, rng.randint(2, 4))
        mid = facts[rng.randrange(len(facts))]
        return " ".join([*filler[:2], mid, *filler[2:], rng.choice(FILLER)])
    if style == "enthusiastic_long":
        extra = "It is a wonderful thing to learn, and you will be glad you did!"
        return (
            f"{rng.choice(OPENERS)} I love this topic. {prompt.rstrip('?')} is a great thing "
            f"to ask about.\n\n{' '.join(facts)}\n\n{extra} {rng.choice(CLOSERS)}"
        ).strip()
    raise ValueError(style)


STYLES = [
    "helpful_detailed",
    "helpful_steps",
    "brief",
    "terse",
    "rude",
    "refusal",
    "hedging",
    "repetitive",
    "degenerate",
    "off_topic",
    "unsafe_mild",
    "negative",
    "rambling",
    "enthusiastic_long",
]


def main() -> None:
    rng = random.Random(20240605)
    seen: set[str] = set()
    records = []
    for prompt, facts in TOPICS:
        for style in STYLES:
            for _ in range(5):  # retry a few times when a random choice gives a duplicate
                text = make(style, prompt, facts, rng)
                if text not in seen:
                    break
            else:
                continue
            seen.add(text)
            records.append({"prompt": prompt, "text": text, "style": style})
    rng.shuffle(records)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} records to {OUT}")


if __name__ == "__main__":
    main()
