"""Chunking time of text the splitter once took minutes over: long runs without whitespace.

Times `tasks.chunking.split_text` (what `overnight estimate` and `run` call for a document over
its budget) on generated texts: one letter repeated (1, 3 and 6 MB), minified JSON (~2.3 MB),
words with no sentence or line break (4 MB), and prose in paragraphs (3 MB) for comparison,
at two budgets. Each figure is the best of --repeat runs; it also prints the chunk count and
the largest chunk's tokens (never over the budget).

    .venv/bin/python benchmarks/chunking_pathological.py
    .venv/bin/python benchmarks/chunking_pathological.py --budgets 24000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.chunking import split_text  # noqa: E402
from tasks.tokens import count_tokens  # noqa: E402

MODEL = "gpt-4o-mini"


def minified_json(chars: int) -> str:
    rng = random.Random(1)
    rows = [
        {"id": i, "name": f"item{i}", "tags": ["a", "b"], "v": rng.random()}
        for i in range(chars // 70)
    ]
    return json.dumps(rows, separators=(",", ":"))


def words(chars: int, *, sentences: bool) -> str:
    rng = random.Random(2)
    vocab = [
        "the",
        "of",
        "and",
        "a",
        "to",
        "in",
        "is",
        "was",
        "report",
        "quarterly",
        "revenue",
        "growth",
        "customer",
    ]
    if not sentences:
        return " ".join(rng.choice(vocab) for _ in range(chars // 6))
    paragraphs: list[str] = []
    size = 0
    while size < chars:
        paragraph = " ".join(rng.choice(vocab) for _ in range(rng.randint(40, 120))) + "."
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)


CASES: dict[str, Callable[[], str]] = {
    "x * 1 MB": lambda: "x" * 1_000_000,
    "x * 3 MB": lambda: "x" * 3_000_000,
    "x * 6 MB": lambda: "x" * 6_000_000,
    "minified JSON 2.3 MB": lambda: minified_json(2_300_000),
    "words, no breaks, 4 MB": lambda: words(4_000_000, sentences=False),
    "prose paragraphs, 3 MB": lambda: words(3_000_000, sentences=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[24_000, 3_000])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    split_text("Warm up the encoding. " * 20, model=MODEL, max_tokens=50)
    print(f"{'text':<24} {'budget':>7} {'seconds':>8} {'chunks':>7} {'max tokens':>11}")
    for name, make in CASES.items():
        text = make()
        for budget in args.budgets:
            best = float("inf")
            chunks: list[str] = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                chunks = split_text(text, model=MODEL, max_tokens=budget, overlap_tokens=200)
                best = min(best, time.perf_counter() - started)
            largest = max(count_tokens(chunk, MODEL) for chunk in chunks)
            print(f"{name:<24} {budget:>7} {best:>8.2f} {len(chunks):>7} {largest:>11}", flush=True)


if __name__ == "__main__":
    main()
