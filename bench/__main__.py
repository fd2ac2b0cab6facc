"""`make bench`: run every benchmark; each writes JSON to bench/results/ and its docs section."""

from __future__ import annotations

import runpy
import sys

BENCHMARKS = (
    "bench.schedule",
    "bench.scheduler",
    "bench.api",
    "bench.pipeline",
    "bench.latency",
    "bench.tracing",
)

for module in BENCHMARKS:
    print(f"== {module}", flush=True)
    sys.argv = [module, "--update-docs"]
    runpy.run_module(module, run_name="__main__")
