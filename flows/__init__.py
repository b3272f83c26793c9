"""Prefect flows: submit, collect, run, and the named nightly and bulk jobs.

Each flow is a thin wrapper over `tasks.lifecycle` with the Prefect runtime of `tasks.steps`;
the CLI runs the same lifecycle directly when no Prefect API is configured.
"""

from __future__ import annotations

import logging

# overnight's own INFO lines ("adopting batch ...", "resuming open run ...") reach the terminal
# and, through PREFECT_LOGGING_EXTRA_LOGGERS, the Prefect API.
for _name in ("tasks", "flows", "overnight"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.INFO)
