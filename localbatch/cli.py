"""`overnight serve`: run the local Batch API in the foreground.

Imports stay light at module level (typer only) so `overnight --help` is fast; uvicorn, the
app and the rest load when the command runs.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal

import typer

from localbatch._defaults import DEFAULT_API_KEY, DEFAULT_PORT


def _default_data_dir() -> Path:
    from overnight.settings import get_settings

    return get_settings().local_batch_dir


def serve(
    host: Annotated[
        str, typer.Option(help="Interface to bind. Keep 127.0.0.1 unless you mean to share it.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on (0 picks a free one).")
    ] = DEFAULT_PORT,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where files and batches are kept; a restart on the same dir resumes "
            "unfinished batches. Default: $OVERNIGHT_HOME/localbatch.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="OVERNIGHT_LOCAL_API_KEY",
            help="Bearer key clients must send. Default: any key is taken (a request without "
            "one is refused, as OpenAI refuses it), so clients work unchanged.",
            show_default=False,
        ),
    ] = None,
    executor: Annotated[
        Literal["simulate", "forward"],
        typer.Option(
            help="'simulate': deterministic schema-valid answers; 'forward': send each line to "
            "--forward-url."
        ),
    ] = "simulate",
    workers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Simulator processes for big batches (0: one per core; 1: in the server's "
            "own thread).",
        ),
    ] = 0,
    forward_url: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible upstream base URL, e.g. http://127.0.0.1:8000/v1."),
    ] = None,
    forward_api_key: Annotated[
        str | None,
        typer.Option(
            envvar="OVERNIGHT_FORWARD_API_KEY",
            help="Bearer key for the upstream, if it needs one.",
            show_default=False,
        ),
    ] = None,
    forward_concurrency: Annotated[
        int, typer.Option(min=1, help="Requests in flight to the upstream at most.")
    ] = 8,
    forward_model: Annotated[
        str | None, typer.Option(help="Replace each request's model with this upstream model.")
    ] = None,
    lenient: Annotated[
        bool,
        typer.Option(
            "--lenient",
            help="Run every request line as given. By default each line is first checked as "
            "OpenAI checks it (known model, parameters the model accepts, strict schema, "
            "context window: see data/models.toml or OVERNIGHT_MODELS_FILE) and refused with "
            "OpenAI's error otherwise; use --lenient when forwarding to a self-hosted model.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the simulator and of every fault draw.")] = 0,
    time_scale: Annotated[
        float,
        typer.Option(min=0.0, help="Virtual seconds per real second (86400: a 24h window is 1 s)."),
    ] = 1.0,
    faults: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="A TOML or JSON file of FaultConfig fields (flags below override it).",
        ),
    ] = None,
    line_500_rate: Annotated[
        float | None, typer.Option(help="Share of request lines answered with HTTP 500.")
    ] = None,
    line_429_rate: Annotated[
        float | None, typer.Option(help="Share of request lines answered with HTTP 429.")
    ] = None,
    line_timeout_rate: Annotated[
        float | None, typer.Option(help="Share of request lines ending in request_timeout.")
    ] = None,
    line_delay_seconds: Annotated[
        float | None, typer.Option(help="Real seconds spent on each request line.")
    ] = None,
    api_429_rate: Annotated[
        float | None, typer.Option(help="Share of API calls answered 429 with retry-after.")
    ] = None,
    log_level: Annotated[
        Literal["critical", "error", "warning", "info", "debug"], typer.Option(help="Log level.")
    ] = "info",
) -> None:
    """Run the local OpenAI-compatible Batch API server in the foreground."""
    import uvicorn

    from localbatch._app import create_app
    from localbatch._config import FaultConfig, ServerConfig

    fault_config = FaultConfig.from_file(faults) if faults else FaultConfig()
    overrides = {
        "line_500_rate": line_500_rate,
        "line_429_rate": line_429_rate,
        "line_timeout_rate": line_timeout_rate,
        "line_delay_seconds": line_delay_seconds,
        "api_429_rate": api_429_rate,
    }
    changed = {k: v for k, v in overrides.items() if v is not None}
    if changed:
        fault_config = FaultConfig.model_validate({**fault_config.model_dump(), **changed})
    config = ServerConfig(
        data_dir=data_dir or _default_data_dir(),
        host=host,
        port=port,
        api_key=api_key,
        executor=executor,
        simulate_workers=workers,
        seed=seed,
        time_scale=time_scale,
        faults=fault_config,
        forward_url=forward_url,
        forward_api_key=forward_api_key,
        forward_concurrency=forward_concurrency,
        forward_model=forward_model,
        lenient=lenient,
        log_level=log_level,
    )
    config.data_dir.mkdir(parents=True, exist_ok=True)
    # Bind first, so the address we print is the real one (also with --port 0).
    listener = socket.create_server(
        (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
    )
    bound_port = listener.getsockname()[1]
    shown_host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, host)
    if ":" in shown_host and not shown_host.startswith("["):
        shown_host = f"[{shown_host}]"
    base_url = f"http://{shown_host}:{bound_port}/v1"
    shown_key, key_hint = (
        (DEFAULT_API_KEY, "any key is taken (--api-key to require one)")
        if api_key is None
        else ("...", "the key you set with OVERNIGHT_LOCAL_API_KEY or --api-key")
    )
    mode = ", lenient: lines are not checked as OpenAI checks them" if lenient else ""
    typer.echo(f"overnight local Batch API ({executor}{mode}) at {base_url}")
    typer.echo(f"data dir: {config.data_dir}")
    typer.echo("point any OpenAI client at it:")
    typer.echo(f"  export OPENAI_BASE_URL={base_url}")
    typer.echo(f"  export OPENAI_API_KEY={shown_key}  # {key_hint}")
    typer.echo(f"  python: openai.OpenAI(base_url='{base_url}', api_key='{shown_key}')")
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            log_level=log_level,
            access_log=log_level == "debug",
            timeout_graceful_shutdown=5,
        )
    )
    server.run(sockets=[listener])
