"""`python -m localbatch`: the same as `overnight serve`."""

from __future__ import annotations

import typer

from localbatch.cli import serve

if __name__ == "__main__":
    typer.run(serve)
