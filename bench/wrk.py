"""The `wrk` load driver for non-streamed scenarios: one thread, a Lua script for the POST body."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson

INSTALL_HINT = "wrk is not installed; on Debian or Ubuntu: apt-get install -y wrk"
_RESULT = re.compile(r"^BENCH_RESULT (\{.*\})$", re.MULTILINE)

# wrk reads the body once per thread; `done` prints one JSON line with the figures we need.
_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization then wrk.headers["Authorization"] = authorization end
local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.body = file:read("*a")
file:close()

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """wrk's own counts: requests completed, the run's length, latency percentiles and errors."""

    requests: int
    elapsed_s: float
    p50_s: float
    p99_s: float
    errors: dict[str, int]

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def ok(self) -> int:
        return max(0, self.requests - self.errors.get("status", 0))

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _environment(body_file: Path, headers: dict[str, str]) -> dict[str, str]:
    environ = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
    environ.pop("BENCH_AUTHORIZATION", None)
    if "Authorization" in headers:
        environ["BENCH_AUTHORIZATION"] = headers["Authorization"]
    return environ


def _write_inputs(folder: Path, body: bytes) -> tuple[Path, Path]:
    script, body_file = folder / "post.lua", folder / "body.json"
    script.write_text(_SCRIPT)
    body_file.write_bytes(body)
    return script, body_file


async def run_wrk(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    duration_s: float,
    timeout_s: float = 30.0,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    """Run wrk against `url` for `duration_s` with `concurrency` keep-alive connections; of
    `headers`, only `Authorization` is sent."""
    executable = wrk_path()
    if executable is None:
        raise RuntimeError(INSTALL_HINT)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as folder:
        script, body_file = _write_inputs(Path(folder), body)
        process = await asyncio.create_subprocess_exec(
            executable,
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(duration_s))}s",
            f"--timeout={timeout_s:g}s",
            "-s",
            str(script),
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=_environment(body_file, headers or {}),
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), duration_s + timeout_s + 30)
        finally:
            if process.returncode is None:  # interrupted or stuck: never leave wrk running
                process.kill()
                await process.wait()
    text = output.decode("utf-8", "replace")
    match = _RESULT.search(text)
    if process.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed (exit {process.returncode}):\n{text.strip()}")
    figures = orjson.loads(match.group(1))
    errors = {
        name: int(figures[name])
        for name in ("connect", "read", "write", "status", "timeout")
        if figures[name]
    }
    return WrkResult(
        requests=int(figures["requests"]),
        elapsed_s=figures["duration_us"] / 1e6,
        p50_s=figures["p50_us"] / 1e6,
        p99_s=figures["p99_us"] / 1e6,
        errors=errors,
    )
