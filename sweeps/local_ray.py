"""A local Ray instance that only its user, on this machine, can reach, and that ends with
its driver.

Ray 2.60's ``ray.init()`` on Linux resolves even ``_node_ip_address="127.0.0.1"`` to the
machine's external address (``services.resolve_ip_for_localhost``), and its processes
then listen on all interfaces or on that address: GCS, raylet, object manager, core
workers, the dashboard and runtime-env agents, and three Prometheus ports that answer
without a token. It writes ``~/.ray/auth_token`` world-readable and ``chmod``s its temp
dir to 0777 (again at every worker start). On SIGKILL of the driver its kernel fate
sharing ends GCS, raylet and workers, but the agents (children of the raylet) linger for
over a minute. This module holds what steadytune does about each, for a local instance only
(``init_ray`` in ``sweeps/_ray.py`` calls it; with ``--address`` the cluster is left to
its own settings):

* loopback: ``loopback_node_ip()`` around ``ray.init(**local_init_kwargs(...))``. A true
  127.0.0.1 node IP switches on Ray's own localhost mode in every component;
* private files: ``make_private_dir`` (0700, holding Ray's temp dir, which Ray keeps
  at 0777) and ``prepare_auth_token`` (``~/.ray/auth_token`` created 0600);
* a watchdog: ``start_watchdog`` runs this file as a small stdlib-only process in its
  own session. It SIGKILLs the instance's processes when the driver dies, and
  ``reap_stale_instance`` does the same for an instance a killed driver left behind.

Processes "of an instance" are those of this user, running this Python or a Ray binary,
whose command line or open files name a path inside the instance's private dir: never
found by a broad name. Needs Linux ``/proc``; elsewhere the watchdog and the reaper do
nothing. Only ``loopback_node_ip`` imports Ray (lazily): the watchdog starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import ipaddress
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
# The names below are trainer.layout's RAY_DIR, RAY_TEMP_SUBDIR and RAY_POINTER_FILE,
# spelt out again because this file runs as a stdlib-only script (``-I -S``, no trainer
# package); tests/test_layout.py checks that they agree.
# <run dir>/ray: the instance's private dir (0700, ours); Ray's temp dir is a subdirectory
# of it, so Ray's own 0777 there is unreachable for anyone else. Short names: Ray's Unix
# socket paths hang below the temp dir and are limited to ~107 bytes.
PRIVATE_DIR_NAME = "ray"
RAY_TEMP_SUBDIR = "r"
# a run dir whose path is too long for Ray's sockets (or a remote one) gets a private
# dir /tmp/st-ray-XXXXXXXX instead, named in <run dir>/ray-temp-dir.txt
TMP_PREFIX = "st-ray-"
POINTER_FILE = "ray-temp-dir.txt"
WATCHDOG_LOG = "watchdog.log"

# Settings passed to Ray's processes through ray.init (no environment variable needed):
# no metrics export (the dashboard agent's Prometheus exporter, OpenCensus/OpenTelemetry
# reporting from raylet, GCS and workers); a local sweep reads its results from
# results.parquet, not from Prometheus.
SYSTEM_CONFIG: dict[str, Any] = {"enable_metrics_collection": False}

# Processes of a local instance that Ray 2.60 lets listen beyond loopback, by
# ``process_role``, and why. None: with a 127.0.0.1 node IP every listener of every
# process is on loopback. A role added here must be documented in docs/sweeps.md
# (Security), and tests/test_local_ray_security.py fails on any role not listed.
NON_LOOPBACK_LISTENERS: dict[str, str] = {}

# Loopback listeners that answer an HTTP GET without the token (Ray 2.60 has no switch
# to turn them off), by role: readable by every local user, reachable by no one else.
LOOPBACK_OPEN_HTTP: dict[str, str] = {
    "monitor": "autoscaler Prometheus metrics on 127.0.0.1:44217 (AUTOSCALER_METRIC_PORT), "
    "started whenever prometheus_client is installed",
    "dashboard": "dashboard head: Prometheus metrics on 127.0.0.1:44227 "
    "(DASHBOARD_METRIC_PORT) and, with the dashboard on, the UI's static page on "
    "127.0.0.1:8265 (its API asks for the token)",
    "dashboard_agent": "the raylet health check /api/local_raylet_healthz on "
    "127.0.0.1:52365 (its other routes ask for the token)",
}

_POLL_S = 0.5  # how often the watchdog looks at the driver
_ALIVE_EVERY = 10  # polls between checks that the instance still runs
_KILL_ROUNDS = 3  # a dying raylet may still start a worker: look again after a kill
_watchdogs: dict[str, subprocess.Popen[bytes]] = {}


# -- addresses and roles ------------------------------------------------------------
def is_loopback(ip: str) -> bool:
    """True for 127.0.0.0/8, ``::1`` and their IPv4-mapped form (``::ffff:127.0.0.1``,
    how Ray's dual-stack gRPC sockets bound to 127.0.0.1 show up)."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def process_role(cmdline: list[str]) -> str:
    """What a Ray process is, from its command line (several rename their title).

    The names of ``NON_LOOPBACK_LISTENERS`` and ``LOOPBACK_OPEN_HTTP``: ``gcs_server``,
    ``raylet``, ``dashboard``, ``dashboard_module``, ``monitor``, ``log_monitor``,
    ``dashboard_agent``, ``runtime_env_agent``, ``worker``, else ``other``.
    """
    first = cmdline[0] if cmdline else ""
    endings = {"gcs_server": "gcs_server", "/raylet": "raylet"}
    for end, role in endings.items():
        if first.endswith(end):
            return role
    if first.startswith("ray::DashboardAgent"):
        return "dashboard_agent"
    if first.startswith("ray::RuntimeEnvAgent"):
        return "runtime_env_agent"
    if first.startswith("ray-dashboard-"):
        return "dashboard_module"
    if first.startswith("ray::"):
        return "worker"
    scripts = {
        "dashboard/dashboard.py": "dashboard",
        "log_monitor.py": "log_monitor",
        "monitor.py": "monitor",
        "dashboard/agent.py": "dashboard_agent",
        "runtime_env/agent/main.py": "runtime_env_agent",
        "workers/default_worker.py": "worker",
    }
    for arg in cmdline[1:3]:
        for end, role in scripts.items():
            if arg.endswith(end):
                return role
    return "other"


# -- Ray's settings -------------------------------------------------------------------
def local_init_kwargs(temp_dir: str) -> dict[str, Any]:
    """The ``ray.init`` arguments that keep a local instance on loopback (use inside
    ``loopback_node_ip()``)."""
    return {
        # a new instance, even if RAY_ADDRESS or a `ray start` in this temp dir names one
        "address": "local",
        "_node_ip_address": LOOPBACK,
        "dashboard_host": LOOPBACK,
        "_temp_dir": temp_dir,
        "_system_config": dict(SYSTEM_CONFIG),
    }


@contextlib.contextmanager
def loopback_node_ip() -> Iterator[None]:
    """Let ``ray.init(_node_ip_address="127.0.0.1")`` keep that address.

    Ray 2.60 swaps a loopback node IP for ``get_node_ip_address()``, which is loopback
    only where ``ray_constants.ENABLE_RAY_CLUSTER`` is False (macOS and Windows; the env
    var ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``, read once at import, is too late for a
    driver that has imported Ray). So the constant is False while ``ray.init`` runs, in
    this process only. Afterwards the node answers ``get_node_ip_address()`` itself and
    the constant is back. Ray's processes get ``--node-ip-address=127.0.0.1`` on their
    command lines: no environment variable is set.
    """
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def prepare_auth_token() -> Path | None:
    """Make sure the token a new local instance will use is in a file only we can read.

    Ray 2.60 turns token auth on for a new local cluster (``RAY_AUTH_MODE`` unset) and
    writes a missing ``~/.ray/auth_token`` with the default umask (0644). We write it first,
    ``O_EXCL`` and 0600, with the same generator (``secrets.token_hex(32)``), and tighten
    one of ours that is wider. A token from ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``
    (the user's file, e.g. one a container user must read) and ``RAY_AUTH_MODE`` other
    than ``token`` are left alone. Returns the default file when it is the token used.
    """
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is not None and mode.lower() != "token":
        return None
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return None
    path = Path.home() / ".ray" / "auth_token"
    path.parent.mkdir(mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        info = path.stat()
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077:
            path.chmod(0o600)
        return path
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path


# -- the private dir ------------------------------------------------------------------
def make_private_dir(path: str | Path) -> Path:
    """Create (or tighten) an owner-only directory: ``<run dir>/ray`` may be an older
    run's temp dir that Ray left at 0777."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def make_private_tmp_dir() -> Path:
    """A fresh ``/tmp/st-ray-XXXXXXXX`` (``mkdtemp`` makes it 0700)."""
    root = "/tmp" if Path("/tmp").is_dir() else None
    return Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=root))


def private_dir_of(temp_dir: str | Path) -> Path:
    """The private dir that holds Ray's temp dir ``temp_dir``."""
    return Path(temp_dir).parent


def is_tmp_private_dir(path: str | Path) -> bool:
    """A ``/tmp/st-ray-*`` fallback dir (the system temp root): ours to delete."""
    path = Path(path)
    root = Path("/tmp" if Path("/tmp").is_dir() else tempfile.gettempdir())
    return path.parent == root and path.name.startswith(TMP_PREFIX)


def instance_dir(run_dir: str | Path) -> Path | None:
    """The private dir of the local instance of ``run_dir``, if one exists: the
    ``/tmp/st-ray-*`` dir named by ``<run dir>/ray-temp-dir.txt``, else ``<run dir>/ray``.

    A pointer naming anything but a fallback dir of this user is ignored: whatever it
    names is what the reaper would end processes for.
    """
    pointer = Path(run_dir, POINTER_FILE)
    if pointer.is_file():
        target = Path(pointer.read_text().strip())
        ours = target.is_dir() and target.stat().st_uid == os.getuid()
        return target if ours and is_tmp_private_dir(target) else None
    path = Path(run_dir, PRIVATE_DIR_NAME)
    return path if path.is_dir() else None


# -- the processes of an instance -----------------------------------------------------
def _start_time(pid: int) -> str | None:
    """A process's start time (clock ticks since boot), None if it is gone or a zombie:
    PID and start time name a process even if its PID is reused."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def default_executables() -> list[str]:
    """What a Ray process of this install runs: this Python (the raylet starts workers
    and agents with the driver's ``sys.executable``) or a binary in Ray's package dir
    (raylet, gcs_server). Found without importing Ray."""
    exes = [os.path.realpath(sys.executable)]
    spec = importlib.util.find_spec("ray")
    if spec is not None and spec.submodule_search_locations:
        exes.append(os.path.join(os.path.realpath(spec.submodule_search_locations[0]), ""))
    return exes


def _runs_one_of(exe: str, executables: Iterable[str]) -> bool:
    return any(exe.startswith(e) if e.endswith("/") else exe == e for e in executables)


def _mentions(pid: int, needle: str, *, open_files: bool) -> bool:
    base = f"/proc/{pid}"
    try:
        if needle.encode() in Path(base, "cmdline").read_bytes():
            return True
        if not open_files:
            return False
        for fd in os.scandir(f"{base}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(fd.path).startswith(needle):
                    return True
    except OSError:
        pass
    return False


def instance_pids(
    private_dir: str | Path,
    executables: Iterable[str] | None = None,
    *,
    exclude: Iterable[int] = (),
    open_files: bool = True,
) -> list[int]:
    """PIDs of the processes of the instance whose private dir is ``private_dir``.

    Those of this user, running one of ``executables`` (``default_executables()``), whose
    command line (or, with ``open_files``, an open file) names a path inside it. This
    process and ``exclude`` never count. A shell or editor that names a log there runs
    another program, so it is not taken for the instance.
    """
    if not Path("/proc/self/stat").exists():
        return []
    needle = os.path.join(str(private_dir), "")
    exes = list(executables) if executables is not None else default_executables()
    skip = {os.getpid(), *exclude}
    uid = os.getuid()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            exe = os.readlink(f"{entry.path}/exe")
        except OSError:
            continue  # gone, a zombie, or a kernel thread
        if _runs_one_of(exe, exes) and _mentions(int(entry.name), needle, open_files=open_files):
            found.append(int(entry.name))
    return found


def kill_instance(
    private_dir: str | Path,
    executables: Iterable[str] | None = None,
    *,
    exclude: Iterable[int] = (),
) -> list[int]:
    """SIGKILL every process of the instance (``instance_pids``); returns their PIDs."""
    killed: list[int] = []
    for _ in range(_KILL_ROUNDS):
        pids = instance_pids(private_dir, executables, exclude=exclude)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed += [p for p in pids if p not in killed]
        time.sleep(0.2)
    return killed


def reap_stale_instance(run_dir: str | Path) -> list[int]:
    """End the Ray processes an earlier, killed driver of ``run_dir`` left behind.

    For the driver to call at start, while it holds the run dir's lock and before it
    starts Ray: a live driver of the same run dir would lose its instance. A
    ``/tmp/st-ray-*`` fallback dir is deleted too (its pointer is about to be replaced).
    Returns the PIDs ended; a remote run dir has no local instance to find.
    """
    private = instance_dir(run_dir)
    if private is None:
        return []
    mine = _watchdogs.get(str(private))
    if mine is not None and mine.poll() is None:
        raise RuntimeError(f"{private} belongs to this process's running Ray instance")
    killed = kill_instance(private)
    if is_tmp_private_dir(private):
        shutil.rmtree(private, ignore_errors=True)
        Path(run_dir, POINTER_FILE).unlink(missing_ok=True)
    return killed


# -- the watchdog ---------------------------------------------------------------------
def start_watchdog(temp_dir: str | Path, driver_pid: int | None = None) -> int | None:
    """Start the watchdog of the instance whose Ray temp dir is ``temp_dir``; its PID.

    Started before ``ray.init`` (a driver killed while Ray starts is covered too), in its
    own session (Ctrl-C or a kill of the driver's process group does not reach it), with
    no descriptor of the driver (``close_fds``: the run-dir lock dies with the driver)
    and ``-I -S``: this file needs the standard library only. It logs to
    ``<private dir>/watchdog.log``. None without ``/proc``.
    """
    pid = driver_pid or os.getpid()
    started = _start_time(pid)
    if started is None:
        return None
    private = private_dir_of(temp_dir)
    command = [sys.executable, "-I", "-S", os.path.abspath(__file__), "--driver-pid", str(pid),
               "--driver-start", started, "--dir", str(private)]  # fmt: skip
    for exe in default_executables():
        command += ["--exe", exe]
    with open(private / WATCHDOG_LOG, "ab") as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
            start_new_session=True, close_fds=True,
        )  # fmt: skip
    _watchdogs[str(private)] = proc
    return proc.pid


def stop_watchdog(temp_dir: str | Path) -> None:
    """End this process's watchdog of ``temp_dir`` (after ``ray.shutdown()``, which ends
    the instance itself): it exits without killing anything."""
    proc = _watchdogs.pop(str(private_dir_of(temp_dir)), None)
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def discard_instance(temp_dir: str | Path) -> None:
    """After ``ray.shutdown()``: stop the watchdog and delete a ``/tmp/st-ray-*`` dir (one
    under the run dir stays, with the instance's logs)."""
    stop_watchdog(temp_dir)
    private = private_dir_of(temp_dir)
    if is_tmp_private_dir(private):
        shutil.rmtree(private, ignore_errors=True)


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} watchdog {os.getpid()}: {message}", flush=True)


def watch(driver_pid: int, driver_start: str, private_dir: str, executables: list[str]) -> int:
    """The watchdog's loop: every 0.5 s, is the driver still there?

    When it is gone (or a zombie, or its PID now names another process), SIGKILL the
    instance's processes, delete a ``/tmp/st-ray-*`` private dir, exit. Exit without
    killing on SIGTERM (``stop_watchdog``), when the private dir is gone, or when the
    instance has ended while the driver lives on (``ray.shutdown()`` without
    ``stop_watchdog``: no process of it seen twice in a row, checked every 5 s).
    """
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    for ignored in (signal.SIGINT, signal.SIGHUP):
        signal.signal(ignored, signal.SIG_IGN)
    seen, misses, polls = False, 0, 0
    while not stopping:
        if _start_time(driver_pid) != driver_start:
            killed = kill_instance(private_dir, executables)
            _log(f"driver {driver_pid} is gone; killed {len(killed)} processes {killed}")
            if is_tmp_private_dir(private_dir):
                shutil.rmtree(private_dir, ignore_errors=True)
            return 0
        if not os.path.isdir(private_dir):
            return 0
        polls += 1
        if polls % _ALIVE_EVERY == 0:
            if instance_pids(private_dir, executables, exclude=[driver_pid], open_files=False):
                seen, misses = True, 0
            elif seen:
                misses += 1
            if misses >= 2:
                _log("the instance has shut down; exiting")
                return 0
        time.sleep(_POLL_S)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="watchdog of a local Ray instance")
    parser.add_argument("--driver-pid", type=int, required=True)
    parser.add_argument("--driver-start", required=True)
    parser.add_argument("--dir", required=True, help="the instance's private dir")
    parser.add_argument("--exe", action="append", default=[], help="a Ray executable")
    args = parser.parse_args(argv)
    return watch(args.driver_pid, args.driver_start, args.dir, args.exe)


if __name__ == "__main__":
    sys.exit(main())
