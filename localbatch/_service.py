"""One running server's parts: the store, the clock, the executor, the engine and the faults."""

from __future__ import annotations

import gc
import threading

from localbatch._clock import VirtualClock
from localbatch._config import FaultConfig, ServerConfig
from localbatch._engine import SIMULATE_CHUNK, Engine
from localbatch._execution import Executor
from localbatch._faults import APIFaultDice
from localbatch._forward import Forwarder
from localbatch._pool import PooledSimulator
from localbatch._rules import LineRules
from localbatch._simulate import Simulator
from localbatch._store import Store
from tasks.processes import usable_cores


class Service:
    """Opens the data directory (exclusively) and runs the engine until `close`."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.store = Store(config.data_dir)
        try:
            floor = float(self.store.get_meta("virtual_now") or 0.0)
            self.clock = VirtualClock(config.time_scale, not_before=floor)
            self.dice = APIFaultDice(config.seed)
            self._faults = config.faults
            self._faults_lock = threading.Lock()
            executor: Executor
            if config.executor == "forward":
                assert config.forward_url is not None  # checked by ServerConfig
                forwarder = Forwarder(
                    url=config.forward_url,
                    api_key=(
                        config.forward_api_key.get_secret_value()
                        if config.forward_api_key
                        else None
                    ),
                    concurrency=config.forward_concurrency,
                    timeout_seconds=config.forward_timeout_seconds,
                    max_retries=config.forward_max_retries,
                    model=config.forward_model,
                )
                executor, chunk = forwarder, forwarder.chunk_size
            else:
                workers = config.simulate_workers or usable_cores()
                if workers > 1:
                    pooled = PooledSimulator(seed=config.seed, workers=workers)
                    executor, chunk = pooled, pooled.chunk_size
                else:
                    executor, chunk = Simulator(seed=config.seed), SIMULATE_CHUNK
            self.executor = executor
            self.rules = None if config.lenient else LineRules()
            self.engine = Engine(
                store=self.store,
                config=config,
                clock=self.clock,
                executor=executor,
                chunk_size=chunk,
                faults=lambda: self.faults,
                rules=self.rules,
            )
        except BaseException:
            self.store.close()
            raise
        self._closed = False

    @property
    def faults(self) -> FaultConfig:
        with self._faults_lock:
            return self._faults

    def set_faults(self, faults: FaultConfig) -> None:
        with self._faults_lock:
            self._faults = faults

    def start(self) -> None:
        if self.config.executor == "simulate":
            # Loading a tokenizer takes most of a second: do it now, not in the first batch.
            threading.Thread(target=_warm_up, name="localbatch-warmup", daemon=True).start()
        self.engine.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.engine.stop()
        self.executor.close()
        self.store.set_meta("virtual_now", repr(self.clock.now()))
        self.store.close()


def _warm_up() -> None:
    """Load what the first batch needs: the tokenizer, and the per-line rules' schema checks
    (their imports take most of a second on a busy machine)."""
    import schemas.response_format  # noqa: F401
    import tasks.capabilities  # noqa: F401
    from tasks.tokens import get_encoding

    get_encoding("o200k_base")
    # What is loaded now lives as long as the server: keep it out of the cycle collector's
    # passes, which a batch's parsed lines (tens of thousands of objects a chunk) set off
    # again and again (they doubled the cost of parsing a line).
    gc.freeze()
