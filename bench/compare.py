#!/usr/bin/env python3
"""phx-hook scan side by side with CredSweeper and detect-secrets (issue 16).

    compare.py PHX_HOOK_BINARY BENCH_VENV BENCHMARKS.md [CORPUS...]

Runs each tool on each labelled corpus (default: tests/scan-corpus,
tests/scan-corpus-wild, and tests/scan-corpus-holdout if present), scores the findings
with bench/score.py (the same scorer for every tool) and times each run (median of 3,
page cache warm). Writes the table between the `scan-compare` markers in BENCHMARKS.md
and prints it. Every tool runs with its default settings.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from score import score  # noqa: E402


def timed(argv, cwd, runs=3):
    times, out = [], None
    for _ in range(runs):
        t = time.monotonic()
        out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
        times.append(time.monotonic() - t)
        # 0 (nothing found) or 1 (findings); anything else is a crash, not a result.
        if out.returncode not in (0, 1):
            sys.exit(f"{argv[0]} failed (exit {out.returncode}): {out.stderr[-2000:]}")
    return statistics.median(times), out


def phx_hook(binary, corpus):
    t, out = timed([binary, "scan", "--format", "json", "."], corpus)
    return t, [{"path": f["path"], "line": f["line"], "severity": f["severity"]} for f in json.loads(out.stdout)]


def detect_secrets(venv, corpus):
    t, out = timed([os.path.join(venv, "bin", "detect-secrets"), "scan", "--all-files", "."], corpus)
    found = []
    for path, results in json.loads(out.stdout)["results"].items():
        for r in results:
            found.append({"path": path, "line": r["line_number"]})
    return t, found


def credsweeper(venv, corpus):
    with tempfile.TemporaryDirectory() as d:
        report = os.path.join(d, "out.json")
        t, _ = timed([os.path.join(venv, "bin", "credsweeper"), "--path", ".", "--save-json", report], corpus)
        with open(report) as f:
            data = json.load(f)
    found = []
    for c in data:
        for ld in c["line_data_list"]:
            found.append({"path": ld["path"], "line": ld["line_num"], "severity": c.get("severity", "medium")})
    return t, found


def main():
    binary, venv, bench_md = sys.argv[1], sys.argv[2], sys.argv[3]
    corpora = sys.argv[4:] or [
        c for c in ("tests/scan-corpus", "tests/scan-corpus-wild", "tests/scan-corpus-holdout")
        if os.path.isdir(os.path.join(ROOT, c))
    ]
    rows = []
    for c in corpora:
        path = os.path.join(ROOT, c)
        for name, run in (
            ("phx-hook scan", lambda p: phx_hook(binary, p)),
            ("CredSweeper", lambda p: credsweeper(venv, p)),
            ("detect-secrets", lambda p: detect_secrets(venv, p)),
        ):
            t, found = run(path)
            v = score(path, found, name)
            rows.append((c, name, v, t))
            print(f"{c}\t{name}\tP {v['precision']:.3f}\tR {v['recall']:.3f}\tF1 {v['f1']:.3f}\t{t * 1000:.0f} ms", file=sys.stderr)
    versions = {
        "CredSweeper": subprocess.run([os.path.join(venv, "bin", "credsweeper"), "--version"], capture_output=True, text=True).stdout.strip(),
        "detect-secrets": subprocess.run([os.path.join(venv, "bin", "detect-secrets"), "--version"], capture_output=True, text=True).stdout.strip(),
    }
    lines = [
        "| corpus | tool | positives | TP | FP | FN | precision | recall | F1 | time |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c, name, v, t in rows:
        lines.append(
            f"| `{c}` | {name} | {v['positives']} | {v['tp']} | {v['fp']} | {v['fn']} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {t * 1000:.0f} ms |"
        )
    lines.append("")
    lines.append(
        f"Versions: {versions['CredSweeper'] or 'CredSweeper ?'}, detect-secrets {versions['detect-secrets'] or '?'}, default settings. "
        "Scored by `bench/score.py` (a private key is one secret; `info` findings are not alarms; "
        "documentation examples may be reported at most as `low`; a tool without severities counts as `medium`). "
        "Time: median of 3 runs, page cache warm, including each tool's start-up."
    )
    table = "\n".join(lines)
    print(table)
    with open(bench_md) as f:
        text = f.read()
    begin, end = "<!-- scan-compare:begin -->", "<!-- scan-compare:end -->"
    if begin in text and end in text:
        text = text[: text.index(begin) + len(begin)] + "\n" + table + "\n" + text[text.index(end):]
    else:
        text += f"\n## Secret scanners side by side (issue 16)\n\n{begin}\n{table}\n{end}\n"
    with open(bench_md, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
