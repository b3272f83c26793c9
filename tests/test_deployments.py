"""prefect.yaml deploys flows that exist, with parameters they accept and safe concurrency."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_every_deployment_points_at_a_flow_with_its_parameters() -> None:
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = set()
    for deployment in config["deployments"]:
        names.add(deployment["name"])
        path, attr = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, attr)
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(deployment.get("parameters", {})) <= accepted, deployment["name"]
        assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
        for schedule in deployment.get("schedules", []):
            assert "cron" in schedule or "interval" in schedule
            if "cron" in schedule:
                assert schedule.get("timezone"), "a nightly cron says which night it means"
        job_file = deployment.get("parameters", {}).get("job_file")
        if job_file:
            assert (REPO / job_file).is_file()
    assert {"nightly-summarization", "collect"} <= names
