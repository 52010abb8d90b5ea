"""One line describing the machine a benchmark ran on (CPU, cores, load, library versions)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np


def describe(extra: list[str] | tuple[str, ...] = ()) -> str:
    """CPU model, core count, 1-minute load average, Python and NumPy versions, then ``extra`` entries."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    parts = [cpu, f"{os.cpu_count()} cores", f"load average {load:.2f}", f"Python {platform.python_version()}",
             f"NumPy {np.__version__}", *extra]
    return ", ".join(parts)
