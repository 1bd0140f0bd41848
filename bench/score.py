#!/usr/bin/env python3
"""Score a secret scanner's findings against a labelled corpus.

    score.py CORPUS FINDINGS.json [--tool NAME]

CORPUS holds labels.txt: `path:LINE` per true secret, optionally followed by `doc`
(a documentation example: may be reported at most as low; neither positive nor
negative) or `fixture` (a true secret in a test or sample file). FINDINGS.json is a
list of {"path", "line", "severity"} (severity optional; a tool without severities is
taken as "medium"). Findings of severity "info" are not alarms.

A private key is one secret however many lines it has: every line of a
`-----BEGIN ... PRIVATE KEY-----` ... `-----END` block counts as that one secret, found
if any of its lines is reported.

Prints one JSON object: tp, fp, fn, precision, recall, f1, and the lists.
"""
import json
import os
import sys

RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def pem_blocks(path):
    """(start, end) 1-based line ranges of private-key blocks in a file."""
    blocks, start = [], None
    try:
        with open(path, errors="replace") as f:
            for i, line in enumerate(f, 1):
                if "-----BEGIN" in line and "PRIVATE KEY" in line:
                    start = i
                elif "-----END" in line and start is not None:
                    blocks.append((start, i))
                    start = None
    except OSError:
        pass
    return blocks


def score(corpus, findings, tool="?"):
    """The verdict for `findings` (a list of {"path", "line", "severity"}) on `corpus`."""
    blocks = {}

    def unit(path, line):
        if path not in blocks:
            blocks[path] = pem_blocks(os.path.join(corpus, path))
        for s, e in blocks[path]:
            if s <= line <= e:
                return (path, s)
        return (path, line)

    positives, docs = set(), set()
    with open(os.path.join(corpus, "labels.txt")) as f:
        for raw in f:
            raw = raw.strip()
            if not raw or raw.startswith("#"):
                continue
            where, _, tag = raw.partition(" ")
            path, _, line = where.rpartition(":")
            u = unit(path, int(line))
            if tag.strip() == "doc":
                docs.add(u)
            else:
                positives.add(u)
    found, doc_violations, fp = set(), [], set()
    for x in findings:
        sev = x.get("severity") or "medium"
        if sev == "info":
            continue
        path = x["path"]
        if path.startswith("./"):
            path = path[2:]
        # The corpus's own description files are not part of it.
        if path in ("README.md", "REASONS.md", "labels.txt"):
            continue
        u = unit(path, int(x["line"]))
        if u in docs:
            if RANK.get(sev, 2) > RANK["low"]:
                doc_violations.append(f"{u[0]}:{u[1]}")
                fp.add(u)
            continue
        found.add(u)
        if u not in positives:
            fp.add(u)
    tp = len(positives & found)
    fn = sorted(f"{p}:{l}" for p, l in positives - found)
    precision = tp / max(1, tp + len(fp))
    recall = tp / max(1, len(positives))
    f1 = 2 * precision * recall / max(1e-9, precision + recall)
    return {
        "tool": tool,
        "positives": len(positives),
        "tp": tp,
        "fp": len(fp),
        "fn": len(fn),
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(f1, 3),
        "false_positives": sorted(f"{p}:{l}" for p, l in fp),
        "missed": fn,
        "doc_reported_above_low": doc_violations,
    }


def main():
    corpus, findings_path = sys.argv[1], sys.argv[2]
    tool = sys.argv[sys.argv.index("--tool") + 1] if "--tool" in sys.argv else "?"
    with open(findings_path) as f:
        findings = json.load(f)
    print(json.dumps(score(corpus, findings, tool), indent=1))


if __name__ == "__main__":
    main()
