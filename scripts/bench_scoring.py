"""Scoring speed: RewardModelGrader vs a one-text pipeline, and the semantic functions vs ST.

For each base (the embedded MiniLM, the default reward-model base outside RL, and the
embedded SmolLM2-135M, the base of the RL recipe's reward model) a reward model is built
on the spot: the base with a score head fitted by ridge regression to the seed's
five-function composite on ``--n-fit`` texts, so its raw scores span a realistic range
(pass ``--minilm-rm`` / ``--smollm2-rm`` to time a trained one instead). Then, in the same
process and with the same torch threads:

- baseline: ``transformers.pipeline("text-classification", function_to_apply="none")``
  called one text at a time on the very inputs the grader builds (same tokens);
- ``RewardModelGrader.score_texts`` in fp32 (length-sorted batches, shared prefix reused
  on decoder-only models), the same through ``GradingRunner`` (its MicroBatcher), and in
  bf16 on a CPU that has AVX512-BF16/AMX, with the max |difference| of the raw scores from
  fp32 on the same texts.

The semantic functions (``semantic_similarity``) are timed against sentence-transformers'
own ``encode`` (its default batch size) of the same texts and references. Ratios are
against the baseline timed in the same run; nothing here is a pass/fail threshold.

    python scripts/bench_scoring.py                 # prints a table, appends to BENCHMARKS.md
    python scripts/bench_scoring.py --no-append --n-minilm 64 --n-smollm2 16 --n-semantic 64
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # this checkout's rlreward

from _bench import append_section, table

from rlreward.data import load_reward_texts

FUNCTIONS = ["length", "sentiment", "safety", "coherence", "helpfulness"]


def best_time(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def head_features(model: Any, ids: list[list[int]], pad_id: int) -> Any:
    """What the score head reads: BERT's pooled output, else the last real token's state."""
    import torch

    feats = []
    with torch.inference_mode():
        for start in range(0, len(ids), 16):
            rows = ids[start : start + 16]
            width = max(map(len, rows))
            x = torch.full((len(rows), width), pad_id)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, row in enumerate(rows):
                x[r, : len(row)], mask[r, : len(row)] = torch.tensor(row), 1
            out = model.base_model(input_ids=x, attention_mask=mask)
            if getattr(out, "pooler_output", None) is not None:
                feats.append(out.pooler_output)
            else:
                last = torch.tensor([len(r) - 1 for r in rows])
                feats.append(out.last_hidden_state[torch.arange(len(rows)), last])
    return torch.cat(feats).double()


def build_reward_model(base: str, texts: list[str], out: str) -> str:
    """``base`` + a ridge-fitted score head (labels: the five-function composite), saved."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rlreward.embedded import resolve_model_name
    from rlreward.models.reward_model_io import default_input_format, encode_pairs
    from rlreward.models.reward_model_io import ensure_pad_token as pad_tokens
    from rlreward.training.trainer import RewardModelTrainer

    labels = RewardModelTrainer(reward_functions=FUNCTIONS).generate_training_data(
        texts, show_progress=False
    )["composite"]
    path = resolve_model_name(base)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1).eval()
    pad_tokens(tok, model)
    ids = encode_pairs(tok, texts, None, default_input_format(tok, True), 512)
    f = head_features(model, ids, tok.pad_token_id)
    y = torch.tensor(labels, dtype=torch.float64)
    head = getattr(model, "score", None) or model.classifier
    mu = f.mean(0) if head.bias is not None else torch.zeros(f.shape[1], dtype=f.dtype)
    fc = f - mu
    ym = y.mean() if head.bias is not None else torch.tensor(0.0, dtype=f.dtype)
    gram = fc.T @ fc
    ridge = 1e-2 * gram.trace() / gram.shape[0]
    w = torch.linalg.solve(gram + ridge * torch.eye(gram.shape[0], dtype=f.dtype), fc.T @ (y - ym))
    with torch.no_grad():
        head.weight.copy_(w.float()[None])
        if head.bias is not None:
            head.bias.fill_(float(ym - mu @ w))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def bench_model(label: str, model_dir: str, texts: list[str], repeats: int) -> list[list[str]]:
    import torch
    from transformers import pipeline

    from rlreward.graders.reward_model import RewardModelGrader
    from rlreward.models.reward_model_io import encode_pairs
    from rlreward.runner import GraderConfig, GradingRunner

    n = len(texts)
    grader = RewardModelGrader(model_dir, batch_size=32, device="cpu")
    tok = grader.tokenizer
    ids = encode_pairs(tok, texts, None, grader.prompt_template, grader.max_length)
    # the pipeline gets the same tokens: the texts themselves ("text" format), else the
    # formatted strings without special tokens added
    plain = grader.prompt_template == "text"
    strings = texts if plain else tok.batch_decode(ids, skip_special_tokens=False)
    special = {"add_special_tokens": plain}
    same = tok(strings, truncation=True, max_length=grader.max_length, **special)
    assert same["input_ids"] == ids, "the baseline would score other tokens than the grader"
    pipe = pipeline(
        "text-classification",
        model=grader.model,
        tokenizer=tok,
        device=torch.device("cpu"),
        function_to_apply="none",
    )
    kw = {"truncation": True, "max_length": grader.max_length, **special}
    ours = grader.score_texts(texts)
    theirs = [pipe(s, **kw)[0]["score"] for s in strings[:8]]
    worst = max(abs(a - b) for a, b in zip(ours[:8], theirs, strict=True))
    assert worst < 1e-4, f"pipeline and grader disagree by {worst}"
    runner = GradingRunner([GraderConfig(grader)], show_progress=False)
    wide = GradingRunner([GraderConfig(grader)], max_concurrency=256, show_progress=False)
    rows_in = [{"response": t} for t in texts]
    runner.run(rows_in[:8])  # warm-up

    t_base = best_time(lambda: [pipe(s, **kw) for s in strings], repeats)
    t_ours = best_time(lambda: grader.score_texts(texts), repeats)
    t_run = best_time(lambda: runner.run(rows_in), repeats)
    t_wide = best_time(lambda: wide.run(rows_in), repeats)
    lo, hi = min(ours), max(ours)
    mean_len = sum(map(len, ids)) / n
    note = f"{n} texts, {mean_len:.0f} tokens on average ({grader.prompt_template} format)"
    rows = [
        [label, "baseline: pipeline, one text at a time", f"{n / t_base:,.1f}", "1.0x", note],
        [
            label,
            "RewardModelGrader.score_texts, fp32",
            f"{n / t_ours:,.1f}",
            f"{t_base / t_ours:.1f}x",
            f"exact (fp32 score range {lo:.2f}..{hi:.2f})",
        ],
        [
            label,
            "GradingRunner + RewardModelGrader (MicroBatcher), fp32",
            f"{n / t_run:,.1f}",
            f"{t_base / t_run:.1f}x",
            "default max_concurrency 32: micro-batches of <= 32 in arrival order",
        ],
        [
            label,
            "GradingRunner(max_concurrency=256) + RewardModelGrader, fp32",
            f"{n / t_wide:,.1f}",
            f"{t_base / t_wide:.1f}x",
            "micro-batches of <= 256, regrouped by length",
        ],
    ]
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        fast = RewardModelGrader(model_dir, batch_size=32, device="cpu", dtype="bfloat16")
        low = fast.score_texts(texts)
        diff = max(abs(a - b) for a, b in zip(low, ours, strict=True))
        t_fast = best_time(lambda: fast.score_texts(texts), repeats)
        rows.append(
            [
                label,
                'RewardModelGrader.score_texts, dtype="bfloat16"',
                f"{n / t_fast:,.1f}",
                f"{t_base / t_fast:.1f}x",
                f"max abs diff vs fp32 {diff:.4f}",
            ]
        )
    else:
        rows.append([label, "bf16", "-", "-", "this CPU has no AVX512-BF16/AMX"])
    return rows


def bench_semantic(texts: list[str], refs: list[str], repeats: int) -> list[list[str]]:
    from rlreward.rewards.semantic import SemanticSimilarityReward, load_embedder

    n = len(texts)
    fn = SemanticSimilarityReward()
    st = load_embedder()
    fn(texts[:4], references=refs[:4])  # warm-up

    def st_encode() -> None:
        a = st.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        b = st.encode(refs, normalize_embeddings=True, convert_to_numpy=True)
        (a * b).sum(1)

    t_st = best_time(st_encode, repeats)
    t_ours = best_time(lambda: fn(texts, references=refs), repeats)
    note = f"{n} (text, reference) pairs, all distinct"
    return [
        ["MiniLM (semantic)", "sentence-transformers encode (its defaults)", f"{n / t_st:,.1f}",
         "1.0x", note],
        ["MiniLM (semantic)", "semantic_similarity", f"{n / t_ours:,.1f}",
         f"{t_st / t_ours:.2f}x", note],
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-minilm", type=int, default=256, help="texts scored with MiniLM (0: skip)")
    ap.add_argument("--n-smollm2", type=int, default=48, help="texts scored with SmolLM2 (0: skip)")
    ap.add_argument("--n-fit", type=int, default=64, help="texts the score head is fitted on")
    ap.add_argument(
        "--n-semantic", type=int, default=256, help="pairs for semantic_similarity (0: skip)"
    )
    ap.add_argument("--minilm-rm", help="a trained MiniLM reward-model directory to time")
    ap.add_argument("--smollm2-rm", help="a trained SmolLM2 reward-model directory to time")
    ap.add_argument("--repeats", type=int, default=2, help="best of this many runs, every row")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: the cores left free)")
    ap.add_argument("--no-append", action="store_true", help="do not append to BENCHMARKS.md")
    args = ap.parse_args()

    import torch

    from rlreward.rl.threads import set_cpu_threads

    load_before = os.getloadavg()
    set_cpu_threads(args.threads or None)
    texts = load_reward_texts()
    fit_texts = texts[-args.n_fit :]  # the fit texts are not the timed ones
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        plan = []
        if args.n_minilm:
            plan.append(("MiniLM", "embedded", args.minilm_rm, args.n_minilm))
        if args.n_smollm2:
            plan.append(("SmolLM2-135M", "embedded-smollm2", args.smollm2_rm, args.n_smollm2))
        for label, base, given, n in plan:
            model_dir = given or build_reward_model(base, fit_texts, str(Path(tmp) / base))
            rows += bench_model(label, model_dir, texts[:n], args.repeats)
            print(table(["model", "path", "texts/s", "vs baseline", "note"], rows), flush=True)
    half = len(texts) // 2
    m = min(args.n_semantic, half)
    if m:
        rows += bench_semantic(texts[:m], texts[half : half + m], args.repeats)
    load_after = os.getloadavg()
    body = table(["model", "path", "texts/s", "vs baseline", "note"], rows)
    fitted = (
        f"ridge-fitted on {args.n_fit} other shipped texts (labels: the seed's five-function "
        "composite)"
    )
    heads = "; ".join(
        f"{label} {f'trained ({given})' if given else fitted}" for label, _, given, _ in plan
    )
    notes = (
        f"\n\nSame process, {torch.get_num_threads()} torch thread(s) for every row, best of "
        f"{args.repeats}. Score heads: {heads}. `uptime` load average (1/5/15 min) "
        f"{'/'.join(f'{x:.2f}' for x in load_before)} before, "
        f"{'/'.join(f'{x:.2f}' for x in load_after)} after."
    )
    print(body + notes)
    if not args.no_append:
        append_section("Scoring speed (scripts/bench_scoring.py)", body + notes)


if __name__ == "__main__":
    main()
