"""Optional sampling profile of the gateway during a measured run, with py-spy when installed."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

SAMPLE_RATE_HZ = 200
TOP_ENTRIES = 15
_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _name(frame: str) -> str:
    """`function (path/to/file.py:12)` as `function (to/file.py)`: lines merged per function."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    short = "/".join(Path(match["file"]).parts[-2:])
    return f"{match['function']} ({short})"


def top_functions(collapsed: str, limit: int = TOP_ENTRIES) -> list[tuple[float, float, str]]:
    """(self %, total %, function) for the functions with most self time in py-spy raw output."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        match = _LINE.match(line.strip())
        if match is None:
            continue
        stack, count = match.group(1), int(match.group(2))
        frames = [_name(frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    if not samples:
        return []
    return [
        (100 * n / samples, 100 * total[name] / samples, name) for name, n in own.most_common(limit)
    ]


class Profiler:
    """Records the gateway with `py-spy record` for one measured window."""

    def __init__(self, pid: int, output: Path) -> None:
        self._pid = pid
        self._output = output
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, duration_s: float) -> None:
        executable = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if executable is None:
            print("note: py-spy is not installed (pip install py-spy); no profile recorded")
            return
        self._process = subprocess.Popen(
            [
                executable,
                "record",
                "--pid",
                str(self._pid),
                "--duration",
                str(math.ceil(duration_s)),
                "--rate",
                str(SAMPLE_RATE_HZ),
                "--format",
                "raw",
                "--nonblocking",
                "--gil",
                "--output",
                str(self._output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def finish(self) -> list[tuple[float, float, str]] | None:
        """The top functions by self time, once py-spy has written its samples."""
        if self._process is None:
            return None
        self._process.wait(timeout=60)
        if not self._output.exists():
            return None
        return top_functions(self._output.read_text(errors="replace"))
