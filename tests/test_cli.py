"""The real ``rlreward`` CLI in a subprocess, against the local OpenAI-protocol server."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlreward.cli import main
from tests.openai_server import Action
from tests.reward_cases import CASE_NAMES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **extra)
    return env


def cli(*args, cwd, **popen):
    return subprocess.run(
        [sys.executable, "-m", "rlreward", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_env(),
        timeout=300,
        **popen,
    )


def _judge_spec(tmp_path, server, name="spec.yaml", cache="cache.sqlite", **runner):
    runner_opts = {"max_concurrency": 8, **runner}
    spec = {
        "judge_model": {
            "model": "judge",
            "base_url": server.url,
            "api_key": "sk-test-key",
            "timeout": 10,
            "max_retries": 0,
        },
        "cache": str(tmp_path / cache) if cache else False,
        "graders": {"rel": {"type": "relevance"}},
        "aggregators": [{"name": "reward"}],
        "runner": runner_opts,
    }
    path = tmp_path / name
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


def _rows(tmp_path, n, name="data.jsonl"):
    path = tmp_path / name
    with path.open("w") as fh:
        for i in range(n):
            fh.write(
                json.dumps({"id": i, "query": f"question {i}", "response": f"answer {i}"}) + "\n"
            )
    return path


def _scored_by_content(body):
    """A verdict that depends on the prompt, so rows differ and reruns must match."""
    text = body["messages"][-1]["content"]
    return Action.judge(1 + int(hashlib.sha256(text.encode()).hexdigest(), 16) % 5)


def _strict_rows(path):
    def no_constants(token):
        raise AssertionError(f"bare {token} in the output")

    return [json.loads(line, parse_constant=no_constants) for line in path.read_text().splitlines()]


def _start_grade(spec, data, out, cwd):
    """``rlreward grade -c spec data -o out -q`` as a child process, to be signalled."""
    cmd = ["grade", "-c", str(spec), str(data), "-o", str(out), "-q"]
    return subprocess.Popen(
        [sys.executable, "-m", "rlreward", *cmd],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job (`cmd &`) starts with SIGINT ignored and children inherit
        # that: give the CLI the default disposition a user's terminal gives it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for_lines(path, n, proc, limit=120.0):
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if path.exists():
            with path.open("rb") as fh:
                if sum(1 for _ in fh) >= n:
                    return
        if proc.poll() is not None:
            raise AssertionError(f"the CLI ended early: {proc.returncode} {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {n} lines")


# -- conventions -------------------------------------------------------------------------
def test_bare_command_prints_help_and_version_works(tmp_path):
    bare = cli(cwd=tmp_path)
    assert bare.returncode == 2 and "usage: rlreward" in bare.stdout and "grade" in bare.stdout
    assert "exit status" in bare.stdout and "130" in bare.stdout
    version = cli("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == "rlreward 0.1.0"
    for args in (["--help"], ["grade", "--help"], ["schema", "--help"]):
        helped = cli(*args, cwd=tmp_path)
        assert helped.returncode == 0 and "``" not in helped.stdout
    assert list(tmp_path.iterdir()) == []  # --help writes nothing


def test_default_output_goes_under_outputs(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text((EXAMPLES / "data.jsonl").read_text())
    proc = cli("grade", "-c", EXAMPLES / "reward.yaml", data, "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "outputs" / "data.scored.jsonl").is_file()
    assert "wrote 8 rows to outputs/data.scored.jsonl" in proc.stdout


def test_cli_grades_a_jsonl_and_keeps_rows(tmp_path, capsys):
    out = tmp_path / "scored.jsonl"
    assert (
        main(
            [
                "grade",
                "-c",
                str(EXAMPLES / "reward.yaml"),
                str(EXAMPLES / "data.jsonl"),
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    rows = _strict_rows(out)
    src = [json.loads(line) for line in (EXAMPLES / "data.jsonl").read_text().splitlines()]
    assert len(rows) == len(src)
    for row, orig in zip(rows, src):
        assert {k: row[k] for k in orig} == orig
        assert set(row["grades"]) == {"relevance", "correctness", "reward"}
        assert 0.0 <= row["grades"]["reward"]["score"] <= 1.0
    printed = capsys.readouterr().out
    assert "reward" in printed and "err%" in printed and f"wrote {len(src)} rows" in printed
    assert not (tmp_path / "scored.jsonl.resume.json").exists()


# -- checked before any grading ----------------------------------------------------------
def test_bad_output_paths_fail_before_any_judge_call(tmp_path, openai_server):
    spec, data = _judge_spec(tmp_path, openai_server), _rows(tmp_path, 5)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for out, says in (
        (tmp_path, "is a directory"),
        (blocker / "out.jsonl", "cannot be written"),
        (data, "is the input file"),
    ):
        proc = cli("grade", "-c", spec, data, "-o", out, "-q", cwd=tmp_path)
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert openai_server.n_requests == 0


def test_no_cache_touches_no_file(tmp_path, openai_server):
    spec = _judge_spec(tmp_path, openai_server)
    data = json.loads(spec.read_text())
    del data["cache"]  # the spec's default: .rlreward/cache.sqlite under the working dir
    spec.write_text(json.dumps(data))
    rows = _rows(tmp_path, 2)
    proc = cli(
        "grade", "-c", spec, rows, "-o", tmp_path / "o.jsonl", "-q", "--no-cache", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / ".rlreward").exists()  # no cache directory, no sqlite file
    assert openai_server.n_requests == 2  # the judge was asked
    proc = cli("grade", "-c", spec, rows, "-o", tmp_path / "p.jsonl", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / ".rlreward" / "cache.sqlite").is_file()  # the default does make one


@pytest.mark.parametrize("limit", ["-3", "0", "two"])
def test_limit_must_be_at_least_one(tmp_path, limit):
    proc = cli(
        "grade",
        "-c",
        EXAMPLES / "reward.yaml",
        EXAMPLES / "data.jsonl",
        "-o",
        tmp_path / "o.jsonl",
        "--limit",
        limit,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "argument --limit" in proc.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_spec_mistakes_are_one_line_and_exit_2(tmp_path):
    data = _rows(tmp_path, 2)
    for text, says in (
        (
            "judge_model: qwen3-32b\ngraders: {r: {type: relevance}}\n",
            "judge_model: must be a mapping",
        ),
        ("graders: {r: {callable: 'json:dumps'}}\nrunner: [1, 2]\n", "runner: must be a mapping"),
        (
            "graders: {r: {callable: 'json:dumps'}}\naggregators: weighted_sum\n",
            "aggregators: must be a list",
        ),
        ("graders:\n  r: {callable: 'json:dumps'}\n  r: {callable: 'json:loads'}\n", "given twice"),
    ):
        (tmp_path / "bad.yaml").write_text(text)
        proc = cli(
            "grade", "-c", tmp_path / "bad.yaml", data, "-o", tmp_path / "o.jsonl", cwd=tmp_path
        )
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr
        assert proc.stderr.startswith("rlreward: error: ") and "Traceback" not in proc.stderr
        assert not (tmp_path / "o.jsonl").exists()  # nothing left behind


def test_missing_fields_are_reported_by_line_before_any_call(tmp_path, openai_server):
    spec = _judge_spec(tmp_path, openai_server)
    data = tmp_path / "data.jsonl"
    data.write_text('{"query": "q", "response": "a"}\n\n{"query": "q2"}\n')
    proc = cli("grade", "-c", spec, data, "-o", tmp_path / "o.jsonl", cwd=tmp_path)
    assert proc.returncode == 2
    assert "grader 'rel': field 'response' missing in 1/2 rows (lines 3)" in proc.stderr
    assert openai_server.n_requests == 0


# -- JSONL in and out --------------------------------------------------------------------
def test_bom_invalid_utf8_and_nonfinite_numbers(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("graders: {len: {type: reward_function, function: length}}\n")
    data = tmp_path / "bom.jsonl"
    data.write_bytes(
        b'\xef\xbb\xbf{"response": "one two", "t": NaN}\n{"response": "x", "t": [Infinity]}\n'
    )
    out = tmp_path / "o.jsonl"
    proc = cli("grade", "-c", spec, data, "-o", out, "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = _strict_rows(out)  # strict JSON: no bare NaN / Infinity tokens
    assert rows[0]["t"] is None and rows[0]["nonfinite_fields"] == ["t"]
    assert rows[1]["t"] == [None] and rows[1]["nonfinite_fields"] == ["t[0]"]
    assert "score" in rows[0]["grades"]["len"]
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"response": "ok"}\n{"response": "caf\xe9"}\n')
    proc = cli("grade", "-c", spec, bad, "-o", out, cwd=tmp_path)
    assert proc.returncode == 2 and "latin1.jsonl:2: not valid UTF-8 (byte 0xe9" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- exit status from grader errors ------------------------------------------------------
def test_exit_status_follows_the_error_rate(tmp_path, openai_server):
    spec, data = _judge_spec(tmp_path, openai_server, cache=None), _rows(tmp_path, 10)
    out = tmp_path / "o.jsonl"
    openai_server.responder = lambda body: Action.error(401, message="invalid api key")
    proc = cli("grade", "-c", spec, data, "-o", out, "-q", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "'rel' failed on 10 of 10 rows" in proc.stderr and "every row" in proc.stderr
    assert len(_strict_rows(out)) == 10  # the rows are written all the same

    def half(body):
        odd = int(body["messages"][-1]["content"].split("answer ")[1].split()[0].strip("<>/")) % 2
        return Action.error(400, message="bad request") if odd else Action.judge(3)

    openai_server.responder = half
    proc = cli("grade", "-c", spec, data, "-o", out, "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # default: only a grader failing on every row
    proc = cli("grade", "-c", spec, data, "-o", out, "-q", "--max-error-rate", "0.4", cwd=tmp_path)
    assert proc.returncode == 1 and "'rel' failed on 5 of 10 rows" in proc.stderr
    assert "--max-error-rate: 40%" in proc.stderr
    proc = cli("grade", "-c", spec, data, "-o", out, "-q", "--max-error-rate", "0.5", cwd=tmp_path)
    assert proc.returncode == 0
    proc = cli("grade", "-c", spec, data, "-o", out, "--max-error-rate", "1.5", cwd=tmp_path)
    assert proc.returncode == 2 and "--max-error-rate" in proc.stderr


# -- streaming, crash and resume ---------------------------------------------------------
@pytest.mark.slow  # ~45 s: 4,000 judge calls through two CLI processes
def test_kill_9_half_way_then_rerun_equals_an_uninterrupted_run(tmp_path, openai_server):
    n = 2000
    data = _rows(tmp_path, n)
    openai_server.responder = _scored_by_content
    openai_server.latency = 0.005

    clean_spec = _judge_spec(tmp_path, openai_server, "clean.yaml", cache="clean.sqlite")
    clean = tmp_path / "clean.jsonl"
    proc = cli("grade", "-c", clean_spec, data, "-o", clean, "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert openai_server.n_requests == n

    spec = _judge_spec(tmp_path, openai_server, cache="crash.sqlite")
    out = tmp_path / "out.jsonl"
    before = openai_server.n_requests
    with _start_grade(spec, data, out, tmp_path) as child:
        _wait_for_lines(out, n // 2, child)  # written while grading goes on: streamed
        child.kill()  # SIGKILL: no cleanup of any kind
        child.wait()
    assert child.returncode == -signal.SIGKILL
    written = len(out.read_bytes().splitlines())
    assert n // 2 <= written < n
    assert (tmp_path / "out.jsonl.resume.json").exists()

    proc = cli("grade", "-c", spec, data, "-o", out, "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "resuming:" in proc.stderr
    assert out.read_bytes() == clean.read_bytes()
    repeated = openai_server.n_requests - before - n
    print(f"killed at {written} of {n} rows written; {repeated} judge calls repeated")
    assert 0 <= repeated <= n // 100, f"{repeated} judge calls repeated"
    assert not (tmp_path / "out.jsonl.resume.json").exists()


@pytest.mark.slow
def test_ctrl_c_leaves_valid_partial_output_and_exits_130(tmp_path, openai_server):
    n = 600
    data = _rows(tmp_path, n)
    openai_server.responder = _scored_by_content
    # 600 rows x 50 ms / 4 in flight = 7.5 s of grading: the SIGINT sent after 40 rows
    # lands mid-run even on a loaded machine (at 10 ms the run could finish first)
    openai_server.latency = 0.05
    spec = _judge_spec(tmp_path, openai_server, max_concurrency=4)
    out = tmp_path / "out.jsonl"
    with _start_grade(spec, data, out, tmp_path) as child:
        _wait_for_lines(out, 40, child)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlreward: interrupted;"), stderr
    assert "rerun the same command to resume" in lines[0]
    partial = _strict_rows(out)  # every line whole and strict JSON
    assert 40 <= len(partial) < n and f"{len(partial)} of {n} rows" in lines[0]
    assert [r["id"] for r in partial] == list(range(len(partial)))  # input order

    calls = openai_server.n_requests
    proc = cli("grade", "-c", spec, data, "-o", out, "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = _strict_rows(out)
    assert [r["id"] for r in rows] == list(range(n)) and rows[: len(partial)] == partial
    assert openai_server.n_requests - calls <= n - len(partial)  # written rows not regraded


def test_no_resume_and_a_changed_spec_start_over(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("graders: {len: {type: reward_function, function: length}}\n")
    data = _rows(tmp_path, 20)
    out = tmp_path / "o.jsonl"
    first = cli("grade", "-c", spec, data, "-o", out, "-q", cwd=tmp_path)
    assert first.returncode == 0
    full = out.read_bytes()
    # an unfinished run of the same job: 5 rows written, sidecar present
    out.write_bytes(b"".join(full.splitlines(keepends=True)[:5]) + b'{"cut')
    fingerprint = {
        "version": 1,
        "spec_sha256": hashlib.sha256(spec.read_bytes()).hexdigest(),
        "input": str(data.resolve()),
        "input_size": data.stat().st_size,
        "input_mtime_ns": data.stat().st_mtime_ns,
    }
    (tmp_path / "o.jsonl.resume.json").write_text(json.dumps(fingerprint))
    proc = cli("grade", "-c", spec, data, "-o", out, "-q", cwd=tmp_path)
    assert "resuming: 5 of 20 rows" in proc.stderr and out.read_bytes() == full
    # an unfinished run resumed with a smaller --limit keeps that many rows
    (tmp_path / "o.jsonl.resume.json").write_text(json.dumps(fingerprint))
    proc = cli("grade", "-c", spec, data, "-o", out, "-q", "--limit", "3", cwd=tmp_path)
    assert proc.returncode == 0 and out.read_bytes() == b"".join(full.splitlines(True)[:3])
    # a different spec: the partial output is not reused
    out.write_bytes(b"".join(full.splitlines(keepends=True)[:5]))
    (tmp_path / "o.jsonl.resume.json").write_text(json.dumps(fingerprint))
    spec.write_text(
        "graders: {len: {type: reward_function, function: length, params: {target_min: 1}}}\n"
    )
    proc = cli("grade", "-c", spec, data, "-o", out, "-q", cwd=tmp_path)
    assert proc.returncode == 0 and "resuming" not in proc.stderr
    assert len(out.read_bytes().splitlines()) == 20


def test_console_script_entry_point(tmp_path):
    out = tmp_path / "o.jsonl"
    proc = cli(
        "grade",
        "-c",
        EXAMPLES / "reward.yaml",
        EXAMPLES / "data.jsonl",
        "-o",
        out,
        "-q",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and "reward" in proc.stdout


def test_cli_reports_errors_per_row(tmp_path):
    (tmp_path / "g.py").write_text(
        "def picky(response):\n    if response == '4':\n        raise ValueError('too short')\n    return 1.0\n"
    )
    (tmp_path / "spec.yaml").write_text("graders:\n  picky: {callable: 'g.py:picky'}\n")
    out = tmp_path / "o.jsonl"
    proc = cli(
        "grade",
        "-c",
        tmp_path / "spec.yaml",
        EXAMPLES / "data.jsonl",
        "-o",
        out,
        "-q",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    errors = [r["grades"]["picky"] for r in _strict_rows(out) if "error" in r["grades"]["picky"]]
    assert len(errors) == 1 and "too short" in errors[0]["error"]
    missing = cli(
        "grade", "-c", tmp_path / "nope.yaml", EXAMPLES / "data.jsonl", "-o", out, cwd=tmp_path
    )
    assert missing.returncode == 2 and "reward spec file not found" in missing.stderr


def test_grade_writes_the_reward_with_abstentions_and_monitors(tmp_path, monkeypatch):
    """The CLI writes the spec's Reward: a grader abstains on a row without its field, a
    monitor has its column, and the reward column equals Reward.aevaluate on each row."""
    import asyncio

    from rlreward.integrations.spec import load_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "graders:\n"
        "  length: {type: reward_function, function: length, params: {target_min: 2, target_max: 8}}\n"
        "  correct: {type: reward_function, function: math_answer,"
        " mapper: {reference_response: ground_truth}}\n"
        "monitors:\n"
        "  repetition: {type: reward_function, function: repetition}\n"
        "aggregators:\n"
        "  - {type: weighted_sum, name: reward, weights: {length: 1, correct: 3}, on_error: zero}\n"
    )
    rows = [
        {"response": "6 x 7 = 42, so 42.", "ground_truth": "42"},
        {"response": "No reference for this one at all."},
    ]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    monkeypatch.chdir(tmp_path)
    assert main(["grade", "-q", "-c", str(spec), str(data), "-o", str(out)]) == 0
    written = [json.loads(line)["grades"] for line in out.read_text().splitlines()]
    assert "abstained" in written[1]["correct"] and "error" not in written[1]["correct"]
    assert all("score" in g["repetition"] for g in written)
    reward = load_spec(spec).reward
    for row, grades in zip(rows, written):
        expected = asyncio.run(reward.aevaluate(**row))
        assert grades["reward"]["score"] == pytest.approx(expected.score)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_grade_writes_exactly_the_reward(case, tmp_path, monkeypatch):
    """`rlreward grade` writes Reward.aevaluate's value for every hard case (bounds under
    on_error zero, a callable aggregator, two aggregators, a nested reward, an abstaining
    grader, a failing grader, a monitor)."""
    import asyncio

    from rlreward.integrations.spec import load_spec
    from rlreward.schema import GraderAbstention, GraderScore
    from tests.reward_cases import ROWS, write_case

    spec = write_case(case, tmp_path)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / "out.jsonl"
    monkeypatch.chdir(tmp_path)
    assert main(["grade", "-q", "-c", str(spec), str(data), "-o", str(out)]) in (0, 1)
    written = [json.loads(line)["grades"] for line in out.read_text().splitlines()]
    reward = load_spec(spec).reward
    for row, grades in zip(ROWS, written):
        expected = asyncio.run(reward.aevaluate(**row))
        got = grades[reward.name]
        if isinstance(expected, GraderScore):
            assert got["score"] == pytest.approx(expected.score), (case, row)
        elif isinstance(expected, GraderAbstention):
            assert "abstained" in got, (case, row)
        else:
            assert "error" in got, (case, row)
    if case == "with_monitor":
        assert all("repetition" in g for g in written)
        assert reward.weighted_sum().grader_weights == {"length": 1.0}
    if case == "zero_with_bounds":  # 7 and 32 raw, both clipped to 10: the reward is 1.0
        assert written[0]["reward"]["score"] == pytest.approx(1.0)
