"""Text extraction from text-layer PDFs: pypdf against pypdfium2, speed and agreement.

Reads real PDFs (by default the ones Debian's documentation packages install under
/usr/share/doc; any folder or list of files with --pdfs), extracts every page's text with
both libraries in this process, one library after the other, and prints for each:
pages per second (over all files), files it could not read, characters extracted, and how
much the two texts agree: the word overlap (|A ∩ B| / |A ∪ B| over word multisets) per file,
its median and its 10th percentile, plus how many pages each library left (almost) empty.

    .venv/bin/python benchmarks/pdf_text.py                      # up to 40 PDFs of /usr/share/doc
    .venv/bin/python benchmarks/pdf_text.py --limit 200 --pdfs /usr/share/doc
    .venv/bin/python benchmarks/pdf_text.py --pdfs a.pdf b.pdf

Install some documentation first if there are none: `apt-get install -y python-reportlab-doc
gnuplot-doc asymptote-doc` (texlive-doc packages ship hundreds).
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_WORD = re.compile(r"\w+", re.UNICODE)
EMPTY_PAGE_CHARS = 20
"""The scan threshold of `tasks.sources._pdf`: a page with fewer characters counts as empty."""


def pypdf_pages(data: bytes) -> list[str]:
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return [page.extract_text() or "" for page in reader.pages]


def pdfium_pages(data: bytes) -> list[str]:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    try:
        out = []
        for page in pdf:
            textpage = page.get_textpage()
            out.append(textpage.get_text_bounded())
            textpage.close()
            page.close()
        return out
    finally:
        pdf.close()


def find_pdfs(paths: list[str], limit: int, min_bytes: int) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        candidates = [path] if path.is_file() else sorted(path.rglob("*.pdf"))
        found += [p for p in candidates if p.is_file() and p.stat().st_size >= min_bytes]
    seen: set[Path] = set()
    unique = [p for p in found if not (p.resolve() in seen or seen.add(p.resolve()))]
    # Spread the sample over the packages rather than taking one package's files.
    step = max(1, len(unique) // limit) if limit else 1
    return unique[::step][:limit] if limit else unique


def overlap(a: str, b: str) -> float:
    wa, wb = Counter(_WORD.findall(a.lower())), Counter(_WORD.findall(b.lower()))
    union = sum((wa | wb).values())
    return 1.0 if union == 0 else sum((wa & wb).values()) / union


def run(name: str, extract: Callable[[bytes], list[str]], files: list[tuple[Path, bytes]]) -> dict:
    pages = chars = empty = 0
    failed: list[str] = []
    texts: dict[Path, str] = {}
    start = time.perf_counter()
    for path, data in files:
        try:
            got = extract(data)
        except Exception as exc:  # both libraries raise many types on odd files
            failed.append(f"{path.name}: {type(exc).__name__}")
            continue
        pages += len(got)
        empty += sum(1 for t in got if len(t.strip()) < EMPTY_PAGE_CHARS)
        text = "\n".join(got)
        chars += len(text)
        texts[path] = text
    seconds = time.perf_counter() - start
    return {
        "name": name,
        "pages": pages,
        "seconds": seconds,
        "chars": chars,
        "empty": empty,
        "failed": failed,
        "texts": texts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", nargs="*", default=["/usr/share/doc"])
    parser.add_argument("--limit", type=int, default=40, help="files at most (0 = all)")
    parser.add_argument("--min-bytes", type=int, default=20_000)
    args = parser.parse_args()
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # font warnings, one per page
    paths = find_pdfs(args.pdfs, args.limit, args.min_bytes)
    if not paths:
        sys.exit("no PDFs found: install a documentation package (see the docstring)")
    files = [(p, p.read_bytes()) for p in paths]
    total_mb = sum(len(d) for _, d in files) / 1e6
    print(f"{len(files)} PDFs, {total_mb:.1f} MB")
    results = [run("pypdf", pypdf_pages, files), run("pypdfium2", pdfium_pages, files)]
    for r in results:
        rate = r["pages"] / r["seconds"] if r["seconds"] else 0.0
        print(
            f"{r['name']:>10}: {r['pages']} pages in {r['seconds']:.2f} s = {rate:.0f} pages/s; "
            f"{r['chars']:,} chars; {r['empty']} pages under {EMPTY_PAGE_CHARS} chars; "
            f"{len(r['failed'])} files failed {r['failed'][:3]}"
        )
    a, b = results[0]["texts"], results[1]["texts"]
    both = sorted(set(a) & set(b))
    scores = [overlap(a[p], b[p]) for p in both]
    if scores:
        deciles = statistics.quantiles(scores, n=10) if len(scores) > 1 else scores
        print(
            f"word overlap pypdf vs pypdfium2 over {len(both)} files: median "
            f"{statistics.median(scores):.3f}, p10 {deciles[0]:.3f}, min {min(scores):.3f}"
        )
        worst = sorted(zip(scores, both, strict=True))[:3]
        print("lowest: " + ", ".join(f"{p.name} {s:.3f}" for s, p in worst))


if __name__ == "__main__":
    main()
