"""Named crash points, for proving that a run survives a kill at every step.

Set `OVERNIGHT_FAILPOINT=<name>` and the process exits abruptly (no cleanup, like `kill -9`)
the first time it reaches that point. Unset, a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os

EXIT_CODE = 86


def failpoint(name: str) -> None:
    """Exit at once if the environment names this point."""
    if os.environ.get("OVERNIGHT_FAILPOINT") == name:
        os._exit(EXIT_CODE)
