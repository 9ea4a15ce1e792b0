"""An ASGI app that watches the garbage collector of the server serving it.

``benchmarks/import_cost.py`` serves this module with uvicorn. The variant,
from the ``GC_PROBE_VARIANT`` environment variable, says what the app is:

- ``raw``: the raw ASGI app of ``apps/raw.py``;
- ``raw+import``: the same, after ``import tinyws``;
- ``raw+import+collect``: the same, with one ``gc.collect()`` after the import;
- ``tinyws``: the tinyws app of ``apps/tinyws_app.py``.

From lifespan startup to lifespan shutdown it counts the collections of
each generation, the thread CPU time spent in them and the objects they
found unreachable (cyclic garbage); at shutdown it runs one more full
collection (so garbage no collection reached yet is counted too) and
writes the figures as JSON to the file named by ``GC_PROBE_OUT``.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))

VARIANTS = ("raw", "raw+import", "raw+import+collect", "tinyws")
VARIANT = os.environ.get("GC_PROBE_VARIANT", "raw")

if VARIANT not in VARIANTS:
    raise SystemExit(f"GC_PROBE_VARIANT must be one of {', '.join(VARIANTS)}")
if VARIANT.startswith("raw+import"):
    importlib.import_module("tinyws")  # the import is the variant
if VARIANT == "raw+import+collect":
    gc.collect()
inner = importlib.import_module("tinyws_app" if VARIANT == "tinyws" else "raw").app

AT_IMPORT = {
    "count": gc.get_count(),
    "full_collections_so_far": gc.get_stats()[2]["collections"],
}


class Watch:
    """gc.callbacks hook: per generation, collections, CPU ns and objects collected."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.cpu_ns = [0, 0, 0]
        self.collected = [0, 0, 0]
        self._started = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time_ns()
            return
        generation = info["generation"]
        self.collections[generation] += 1
        self.cpu_ns[generation] += time.thread_time_ns() - self._started
        self.collected[generation] += info["collected"]

    def report(self) -> dict[str, Any]:
        gc.callbacks.remove(self)
        return {
            "variant": VARIANT,
            "at_import": AT_IMPORT,
            "collections": self.collections,
            "cpu_ns": self.cpu_ns,
            "collected": self.collected,
            "garbage_left": gc.collect(),
        }


WATCH = Watch()


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "lifespan":
        await inner(scope, receive, send)
        return

    async def watched_receive() -> Any:
        message = await receive()
        if message["type"] == "lifespan.startup":
            gc.callbacks.append(WATCH)
        elif message["type"] == "lifespan.shutdown" and WATCH in gc.callbacks:
            out = os.environ.get("GC_PROBE_OUT")
            if out:
                Path(out).write_text(json.dumps(WATCH.report()))
        return message

    await inner(scope, watched_receive, send)
