"""Shared pieces of the benchmarks: a CA in a temp dir, a running server, wrk runs, RSS."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
PASSWORD = b"bench-ca-password"
PROVISIONER_PASSWORD = b"bench-provisioner-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LEDGERCA_")}


@dataclass
class BenchCA:
    base: Path
    port: int
    database: str | None

    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def root(self) -> Path:
        return self.home / "certs" / "root_ca.crt"

    def cli(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "ca", "--home", str(self.home), *args],
            check=True, capture_output=True, text=True, env=env(), stdin=subprocess.DEVNULL,
        ).stdout  # fmt: skip


def make_ca(database: str | None = None) -> BenchCA:
    base = Path(tempfile.mkdtemp(prefix="ledgerca-bench-"))
    (base / "ca.pw").write_bytes(PASSWORD)
    (base / "prov.pw").write_bytes(PROVISIONER_PASSWORD)
    ca = BenchCA(base, free_port(), database)
    args = [
        "init", "--name", "Bench", "--dns", "localhost,127.0.0.1",
        "--address", f"127.0.0.1:{ca.port}", "--password-file", str(base / "ca.pw"),
        "--provisioner-password-file", str(base / "prov.pw"),
    ]  # fmt: skip
    if database:
        args += ["--db", database]
    ca.cli(*args)
    return ca


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    url: str
    pids: list[int] = field(default_factory=list)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_healthy(url: str, root: Path, process: subprocess.Popen[bytes], path: str) -> None:
    context = ssl.create_default_context(cafile=str(root))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url + path, verify=context, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not come up")


def start_server(ca: BenchCA, workers: int, log: Path, port: int | None = None) -> Server:
    port = port or ca.port
    handle = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "ca", "--home", str(ca.home), "serve",
         "--address", f"127.0.0.1:{port}", "--password-file", str(ca.base / "ca.pw"),
         "--workers", str(workers)],
        stdout=handle, stderr=subprocess.STDOUT, env=env(), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    handle.close()
    url = f"https://localhost:{port}"
    _wait_healthy(url, ca.root, process, "/health")
    return Server(process, port, url)


def start_trivial(ca: BenchCA, workers: int, log: Path) -> Server:
    port = free_port()
    handle = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, str(HERE / "trivial.py"), str(ca.home), f"127.0.0.1:{port}",
         str(workers), str(ca.base / "ca.pw")],
        stdout=handle, stderr=subprocess.STDOUT, env=env(), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    handle.close()
    url = f"https://localhost:{port}"
    _wait_healthy(url, ca.root, process, "/")
    return Server(process, port, url)


def process_tree(pid: int) -> list[int]:
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return [pid] + [p for child in children for p in process_tree(child)]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its descendants."""
    ticks = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, *, below: float = 0.05, timeout: float = 300) -> float:
    """Wait until the server tree uses under `below` of a core for two seconds running
    (start-up work done: the checkpointer's tree catch-up, a due CRL); the seconds waited."""
    start = time.monotonic()
    quiet = 0
    last = cpu_seconds(pid)
    while time.monotonic() - start < timeout and quiet < 2:
        time.sleep(1)
        now = cpu_seconds(pid)
        quiet = quiet + 1 if now - last < below else 0
        last = now
    return time.monotonic() - start


class RSSSampler:
    """Samples the largest RSS of any process in the server's tree while a run lasts."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for pid in process_tree(self.pid):
                self.peak = max(self.peak, rss_mb(pid))

    def __enter__(self) -> RSSSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def run_wrk(
    url: str, *, connections: int, duration: int, script: Path, bodies: Path | None = None
) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    threads = 1 if connections < 4 else 2
    run_env = env()
    if bodies is not None:
        run_env["LEDGERCA_BENCH_BODIES"] = str(bodies)
        run_env["LEDGERCA_BENCH_THREADS"] = str(threads)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
         "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, env=run_env, check=True,
    ).stdout  # fmt: skip
    match = re.search(r"LEDGERCA_RESULT (\{.*\})", out)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    result: dict[str, Any] = json.loads(match.group(1))
    seconds = result["duration_us"] / 1e6
    errors = sum(v for k, v in result.items() if k.startswith("errors_"))
    result["rate"] = (result["requests"] - errors) / seconds
    result["errors"] = errors
    return result
