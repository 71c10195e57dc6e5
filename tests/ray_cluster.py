"""Real Ray nodes for the tests: ``ray start`` on 127.0.0.1, each node with its own temp
dir, stopped by pid. No test functions here: the cluster and job tests import it.

A node's processes (raylet, GCS, dashboard, its workers) are found by their command line
or open files mentioning the node's temp dir, so a test ends exactly what it started and
never runs a machine-wide ``ray stop`` or ``pkill``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Ray's own settings that must not leak from the developer's shell into a test node.
_RAY_ENV = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN",
            "RAY_AUTH_TOKEN_PATH")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pids_mentioning(needle: str) -> list[int]:
    """Processes whose command line or open files mention ``needle``."""
    found = []
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            hit = needle.encode() in (pid_dir / "cmdline").read_bytes() or any(
                needle in os.readlink(fd) for fd in (pid_dir / "fd").iterdir()
            )
        except OSError:
            continue
        if hit:
            found.append(int(pid_dir.name))
    return found


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def end_processes_mentioning(needle: str) -> None:
    # twice: a dying raylet may still spawn or hand over a process in between
    for _ in range(2):
        kill_pids(pids_mentioning(needle))
        time.sleep(0.2)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without Ray's address/auth settings, our code importable, plus
    ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _RAY_ENV}
    env["PATH"] = f"{BIN}:{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    env.update(extra)
    return env


@dataclass
class Node:
    temp_dir: str
    head: bool

    def pids(self) -> list[int]:
        return pids_mentioning(self.temp_dir)

    def kill(self) -> None:
        """SIGKILL every process of this node (raylet, object store, its workers)."""
        end_processes_mentioning(self.temp_dir)


@dataclass
class Cluster:
    """A head and any number of worker nodes on this machine."""

    env: dict[str, str]
    # one short directory for everything Ray writes (socket paths are limited to ~107
    # bytes): node temp dirs, and via RAY_TMPDIR Tune's lock files
    root: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="st-cluster-", dir="/tmp"))
    gcs_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = {**self.env, "RAY_TMPDIR": self.root}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _start(self, args: list[str], head: bool, env: dict[str, str] | None) -> Node:
        temp = tempfile.mkdtemp(prefix="n", dir=self.root)
        node = Node(temp, head)
        self.nodes.append(node)
        # the agents' fixed default ports (52365, ...) would collide with any other Ray
        # on this machine (e.g. a sweep running beside the tests): no job agent, no jobs
        agent_ports = [f"--dashboard-agent-listen-port={free_port()}",
                       f"--metrics-export-port={free_port()}"]  # fmt: skip
        subprocess.run(
            [str(BIN / "ray"), "start", "--node-ip-address=127.0.0.1", f"--temp-dir={temp}",
             "--disable-usage-stats", *agent_ports, *args],
            check=True, env={**self.env, **(env or {})}, cwd=ROOT, capture_output=True,
            timeout=120,
        )  # fmt: skip
        return node

    def start_head(
        self,
        num_cpus: int,
        resources: str = "{}",
        dashboard: bool = True,
        env: dict[str, str] | None = None,
    ) -> Node:
        args = ["--head", f"--port={self.gcs_port}", f"--num-cpus={num_cpus}",
                f"--resources={resources}"]  # fmt: skip
        if dashboard:
            args += ["--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}"]
        else:
            args += ["--include-dashboard=false"]
        return self._start(args, head=True, env=env)

    def add_worker(
        self, num_cpus: int, resources: str = "{}", env: dict[str, str] | None = None
    ) -> Node:
        args = [f"--address={self.address}", f"--num-cpus={num_cpus}",
                f"--resources={resources}"]  # fmt: skip
        return self._start(args, head=False, env=env)

    def wait_for_nodes(self, n: int, timeout_s: float = 60) -> None:
        """Until ``n`` nodes are alive (asked from a subprocess, so this process never
        connects to the cluster)."""
        probe = (
            "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR');"
            "print(sum(1 for n in ray.nodes() if n['Alive']))"
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            out = subprocess.run(
                [sys.executable, "-c", probe, self.address],
                env=self.env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(n)]:
                return
            time.sleep(1)
        raise TimeoutError(f"fewer than {n} Ray nodes alive after {timeout_s}s")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.kill()
        end_processes_mentioning(self.root)  # drivers and helpers started by the test
        shutil.rmtree(self.root, ignore_errors=True)
