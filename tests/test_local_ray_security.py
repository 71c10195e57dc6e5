"""A local Ray instance can be reached by its user on this machine only, and it ends
with its driver (``sweeps/local_ray.py``; docs/sweeps.md, "Security").

Fast tests check the pieces without Ray: addresses, roles, the private dirs, the token
file, the watchdog and the reaper on stand-in processes. Slow tests start real sweeps in
a driver subprocess (the stand-in trainer of test_sweep_fake.py, trials sleeping via
``FAKE_TRAIN_SLEEP``) and look at its process tree only: the driver, its descendants and
the processes naming the instance's private dir. Every connection goes to 127.0.0.1.
Processes are ended by PID, never by a broad name.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import ray_cluster

from sweeps import local_ray

ROOT = Path(__file__).resolve().parents[1]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
SHELL = ["/bin/sh", "-c", "sleep 60"]  # another program: never taken for the instance


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _role(pid: int) -> str | None:
    try:
        return local_ray.process_role(psutil.Process(pid).cmdline())
    except psutil.Error:
        return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_until(condition, timeout_s: float, every_s: float = 0.1) -> float | None:
    """Seconds until ``condition()`` held, None if it did not within ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(every_s)
    return None


@contextlib.contextmanager
def _processes(*commands: list[str]):
    """Stand-in processes, each in its own session; ended with their children after."""
    procs = [subprocess.Popen(c, start_new_session=True) for c in commands]
    try:
        yield procs
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


# -- fast: the pieces ---------------------------------------------------------------
def test_is_loopback_takes_mapped_ipv4_and_rejects_wildcards():
    for ip in ("127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"):
        assert local_ray.is_loopback(ip), ip
    for ip in ("0.0.0.0", "::", "192.0.2.2", "::ffff:192.0.2.2", "fe80::1%eth0", ""):
        assert not local_ray.is_loopback(ip), ip


def test_process_role_names_ray_processes():
    py = "/x/bin/python3"
    ray_dir = "/x/site-packages/ray"
    cases = {
        (f"{ray_dir}/core/src/ray/gcs/gcs_server", "--gcs_server_port=0"): "gcs_server",
        (f"{ray_dir}/core/src/ray/raylet/raylet", "--temp_dir=/t"): "raylet",
        (py, f"{ray_dir}/dashboard/dashboard.py", "--host=127.0.0.1"): "dashboard",
        (py, "-u", f"{ray_dir}/autoscaler/_private/monitor.py"): "monitor",
        (py, "-u", f"{ray_dir}/_private/log_monitor.py"): "log_monitor",
        ("ray::DashboardAgent",): "dashboard_agent",
        ("ray::RuntimeEnvAgent",): "runtime_env_agent",
        ("ray-dashboard-JobHead-0",): "dashboard_module",
        ("ray::IDLE",): "worker",
        (py, "-c", "run_sweep(...)"): "other",
    }
    for cmdline, role in cases.items():
        assert local_ray.process_role(list(cmdline)) == role, cmdline


def test_ray_temp_dir_in_the_run_dir_is_inside_an_owner_only_dir():
    from sweeps._ray import ray_temp_dir

    root = Path(tempfile.mkdtemp(prefix="st-", dir="/tmp"))  # short: the path fits Ray's sockets
    run_dir = root / "run"
    try:
        old = run_dir / "ray"  # an older run's temp dir, which Ray had made 0777
        old.mkdir(parents=True)
        old.chmod(0o777)
        temp = Path(ray_temp_dir(str(run_dir)))
        assert temp == run_dir / "ray" / "r" and temp.is_dir()
        assert _mode(run_dir / "ray") == 0o700
        assert local_ray.instance_dir(run_dir) == run_dir / "ray"
        assert not (run_dir / local_ray.POINTER_FILE).exists()
    finally:
        shutil.rmtree(root)


def test_ray_temp_dir_fallback_is_owner_only_and_removed_after_shutdown(tmp_path):
    from sweeps._ray import ray_temp_dir, remove_local_temp

    run_dir = tmp_path / ("long-" * 12)
    run_dir.mkdir()
    temp = Path(ray_temp_dir(str(run_dir)))
    private = temp.parent
    try:
        assert local_ray.is_tmp_private_dir(private) and temp.name == "r"
        assert _mode(private) == 0o700
        assert (run_dir / local_ray.POINTER_FILE).read_text().strip() == str(private)
        assert local_ray.instance_dir(run_dir) == private
        remove_local_temp(str(temp))
        assert not private.exists()
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_instance_dir_ignores_a_pointer_to_anything_else(tmp_path):
    (tmp_path / local_ray.POINTER_FILE).write_text("/\n")
    assert local_ray.instance_dir(tmp_path) is None
    assert local_ray.reap_stale_instance(tmp_path) == []


@pytest.fixture
def no_ray_auth_env(tmp_path, monkeypatch):
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def test_auth_token_is_created_owner_only(no_ray_auth_env):
    path = local_ray.prepare_auth_token()
    assert path == no_ray_auth_env / ".ray" / "auth_token"
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    token = path.read_text()
    assert len(token) == 64 and int(token, 16) >= 0  # Ray's own format: token_hex(32)
    assert local_ray.prepare_auth_token() == path and path.read_text() == token  # kept


def test_a_wider_auth_token_is_tightened(no_ray_auth_env):
    path = no_ray_auth_env / ".ray" / "auth_token"
    path.parent.mkdir()
    path.write_text("x" * 64)
    path.chmod(0o644)  # as Ray 2.60 writes it
    assert local_ray.prepare_auth_token() == path
    assert _mode(path) == 0o600 and path.read_text() == "x" * 64


def test_a_token_from_the_environment_is_left_alone(no_ray_auth_env, monkeypatch, tmp_path):
    theirs = tmp_path / "their_token"
    theirs.write_text("y" * 64)
    theirs.chmod(0o644)  # e.g. docker/ray_auth_token, read by the container user
    for name, value in (("RAY_AUTH_TOKEN_PATH", str(theirs)), ("RAY_AUTH_TOKEN", "z" * 64),
                        ("RAY_AUTH_MODE", "disabled")):  # fmt: skip
        with monkeypatch.context() as m:
            m.setenv(name, value)
            assert local_ray.prepare_auth_token() is None, name
    assert _mode(theirs) == 0o644
    assert not (no_ray_auth_env / ".ray").exists()


def test_watchdog_kills_the_instance_when_its_driver_dies():
    """Stand-ins: a 'driver' (left a zombie when killed: the watchdog must see through
    it), a process of the instance (this Python, naming the dir) and a bystander (a
    shell naming the dir: another program, so not the instance's)."""
    private = local_ray.make_private_tmp_dir()
    temp = private / "r"
    temp.mkdir()
    try:
        stand_ins = (SLEEPER, [*SLEEPER, f"{temp}/session"], [*SHELL, f"{temp}/log"])
        with _processes(*stand_ins) as (driver, member, other):
            watchdog = local_ray.start_watchdog(temp, driver_pid=driver.pid)
            assert watchdog is not None
            time.sleep(1)
            assert member.poll() is None, "the watchdog killed while the driver lived"
            os.kill(driver.pid, signal.SIGKILL)  # not waited for: a zombie
            assert _wait_until(lambda: member.poll() is not None, 5) is not None
            assert member.returncode == -signal.SIGKILL
            assert _wait_until(lambda: not _alive(watchdog), 5) is not None
            assert other.poll() is None
            assert not private.exists()  # a /tmp fallback dir goes with the instance
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_stopped_watchdog_exits_without_killing():
    private = local_ray.make_private_tmp_dir()
    temp = private / "r"
    temp.mkdir()
    try:
        with _processes([*SLEEPER, f"{temp}/session"]) as (member,):
            watchdog = local_ray.start_watchdog(temp)
            assert watchdog is not None and _alive(watchdog)
            started = time.monotonic()
            local_ray.stop_watchdog(temp)
            assert time.monotonic() - started < 3 and not _alive(watchdog)
            assert member.poll() is None
            log = (private / local_ray.WATCHDOG_LOG).read_text()
            assert "killed" not in log
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_reap_stale_instance_ends_only_the_instance(tmp_path):
    private = local_ray.make_private_tmp_dir()
    (tmp_path / local_ray.POINTER_FILE).write_text(f"{private}\n")
    try:
        stand_ins = ([*SLEEPER, f"{private}/r/session"], [*SHELL, f"{private}/r/log"])
        with _processes(*stand_ins) as (member, other):
            time.sleep(0.3)  # let the stand-ins exec
            assert local_ray.reap_stale_instance(tmp_path) == [member.pid]
            assert member.wait(timeout=5) == -signal.SIGKILL
            assert other.poll() is None
            assert not private.exists() and not (tmp_path / local_ray.POINTER_FILE).exists()
    finally:
        shutil.rmtree(private, ignore_errors=True)


# -- slow: a real local sweep -------------------------------------------------------
DRIVER = """
import sys
sys.path.insert(0, {tests!r})
import test_sweep_fake as fake
from sweeps.driver import run_sweep
from sweeps.spec import load_spec
run_sweep(load_spec({spec!r}), num_cpus=2, dashboard={dashboard}, train_fn=fake.picklable_train())
"""

INIT_ONLY = """
import json, time, ray
from sweeps import _ray
info = _ray.init_ray({run_dir!r}, num_cpus=2, dashboard=False)
@ray.remote
def busy():
    time.sleep(120)
refs = [busy.remote() for _ in range(2)]
time.sleep(3)
print(json.dumps(info), flush=True)
time.sleep(300)
"""


@dataclass
class Driver:
    proc: subprocess.Popen
    run_dir: Path
    log: Path

    def tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.is_file() else ""

    def private_dir(self) -> Path:
        private = local_ray.instance_dir(self.run_dir)
        assert private is not None, self.tail()
        return private

    def tree(self) -> set[int]:
        """The driver, its descendants, and every process naming the private dir."""
        pids = {self.proc.pid}
        with contextlib.suppress(psutil.NoSuchProcess):
            pids |= {c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)}
        private = local_ray.instance_dir(self.run_dir)
        if private is not None:
            pids |= set(ray_cluster.pids_mentioning(os.path.join(str(private), "")))
        return pids

    def end(self) -> None:
        private = local_ray.instance_dir(self.run_dir)
        leftovers = self.tree() - {self.proc.pid}
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        ray_cluster.kill_pids(sorted(leftovers))
        if private is not None:
            ray_cluster.end_processes_mentioning(os.path.join(str(private), ""))
            if local_ray.is_tmp_private_dir(private):
                shutil.rmtree(private, ignore_errors=True)


def _start(tmp: Path, code: str, name: str) -> Driver:
    log = tmp / f"{name}.log"
    env = ray_cluster.clean_env(FAKE_TRAIN_SLEEP="2")
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    return Driver(proc, tmp / "runs" / name, log)


def _start_sweep(tmp: Path, name: str, dashboard: bool) -> Driver:
    """Two trials of 30 steps × 2 s: they run for the whole test, checkpoint after 2 s."""
    spec = {
        "name": name, "model": "tiny-bert", "strategies": ["vanilla"], "seeds": 2,
        "datasets": [{"name": "synthetic-sentiment", "train_size": 32}],
        "defaults": {"optim": {"max_steps": 30}}, "storage": str(tmp / "runs"),
        "max_concurrent": 2, "max_failures": 1,
    }  # fmt: skip
    code = DRIVER.format(tests=str(ROOT / "tests"), spec=spec, dashboard=dashboard)
    driver = _start(tmp, code, name)
    trials = driver.run_dir / "trials"

    def running() -> bool:
        assert driver.proc.poll() is None, driver.tail()
        return len(list(trials.glob("*/checkpoint/state.json"))) >= 2

    if _wait_until(running, 120, 0.3) is None:  # generous: a loaded 2-core CI machine
        driver.end()
        pytest.fail(f"the trials did not start in time\n{driver.tail()}")
    return driver


@dataclass
class Listener:
    role: str
    pid: int
    ip: str
    port: int

    def __str__(self) -> str:
        return f"{self.role:18} pid {self.pid:<7} {self.ip}:{self.port}"


def _listeners(driver: Driver) -> list[Listener]:
    found = []
    for pid in sorted(driver.tree()):
        try:
            p = psutil.Process(pid)
            role = "driver" if pid == driver.proc.pid else local_ray.process_role(p.cmdline())
            conns = p.net_connections(kind="inet")
        except psutil.Error:
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN:
                found.append(Listener(role, pid, c.laddr.ip, c.laddr.port))
    return found


def _http_status(port: int) -> int | None:
    """The status of an unauthenticated ``GET /`` to 127.0.0.1:port; None when nothing
    answers HTTP (refused, reset, timed out, or not HTTP: Ray's gRPC ports)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


@pytest.mark.slow
class TestRunningLocalSweep:
    """One sweep (dashboard on, as the CLI's default), looked at while its trials run;
    it ends with the class, so no other test shares the machine with it."""

    @pytest.fixture(scope="class")
    def sweep(self, tmp_path_factory):
        driver = _start_sweep(tmp_path_factory.mktemp("security"), "sec", dashboard=True)
        try:
            yield driver
        finally:
            driver.end()

    def test_listens_on_loopback_only(self, sweep):
        listeners = _listeners(sweep)
        table = "\n".join(map(str, listeners))
        print(f"listeners of the sweep's processes:\n{table}")
        roles = {entry.role for entry in listeners}
        assert {"driver", "gcs_server", "raylet", "worker", "dashboard_agent",
                "runtime_env_agent"} <= roles, table  # fmt: skip
        beyond = [entry for entry in listeners if not local_ray.is_loopback(entry.ip)]
        undocumented = [e for e in beyond if e.role not in local_ray.NON_LOOPBACK_LISTENERS]
        assert not undocumented, f"beyond loopback, not in NON_LOOPBACK_LISTENERS:\n{table}"
        for entry in beyond:  # probed through 127.0.0.1 (a wildcard listener answers there)
            status = _http_status(entry.port)
            assert status is None or status in (401, 403), f"{entry} answers HTTP {status}"
        open_http = {e.role for e in listeners if _http_status(e.port) not in (None, 401, 403)}
        assert open_http <= set(local_ray.LOOPBACK_OPEN_HTTP), (open_http, table)

    def test_token_and_temp_dir_are_owner_only(self, sweep):
        private = sweep.private_dir()
        assert _mode(private) == 0o700
        ray_temp = private / local_ray.RAY_TEMP_SUBDIR
        assert (ray_temp / "session_latest").is_dir(), "Ray does not use the private temp dir"
        token = Path(os.environ["HOME"]) / ".ray" / "auth_token"
        assert token.is_file() and _mode(token) == 0o600


@pytest.mark.slow
def test_driver_sigkill_leaves_no_ray_process(tmp_path):
    driver = _start_sweep(tmp_path, "killed", dashboard=False)
    try:
        tree = driver.tree() - {driver.proc.pid}
        private = driver.private_dir()
        roles = {_role(p) for p in tree}
        assert {"raylet", "dashboard_agent", "runtime_env_agent", "worker"} <= roles, roles
        driver.proc.send_signal(signal.SIGKILL)
        driver.proc.wait()

        def gone() -> bool:
            left = {p for p in tree if _alive(p)}
            left |= {p for p in ray_cluster.pids_mentioning(f"{private}/") if _alive(p)}
            return not left

        took = _wait_until(gone, 10, 0.2)
        assert took is not None, [(p, _role(p)) for p in tree | driver.tree() if _alive(p)]
        print(f"no process of the killed driver's instance left after {took:.1f} s")
    finally:
        driver.end()


@pytest.mark.slow
def test_reap_stale_instance_ends_a_killed_drivers_ray(tmp_path):
    """Driver and watchdog both SIGKILLed (an OOM kill of both, a lost session): Ray's
    agents stay; the next driver's ``reap_stale_instance`` ends them, and only them."""
    run_dir = tmp_path / "runs" / "stale"
    run_dir.mkdir(parents=True)
    driver = _start(tmp_path, INIT_ONLY.format(run_dir=str(run_dir)), "stale")
    try:
        assert _wait_until(lambda: "watchdog_pid" in driver.tail(), 45, 0.3), driver.tail()
        (line,) = [x for x in driver.tail().splitlines() if '"watchdog_pid"' in x]
        info = json.loads(line)
        private = driver.private_dir()
        with _processes([*SHELL, f"{private}/r/log"]) as (other,):
            os.kill(info["watchdog_pid"], signal.SIGKILL)
            driver.proc.kill()
            driver.proc.wait()
            time.sleep(2)  # GCS and raylet go with the driver (Ray's fate sharing)
            left = [p for p in local_ray.instance_pids(private) if _alive(p)]
            assert left, "nothing of the instance was left: Ray changed, rewrite this test"
            killed = local_ray.reap_stale_instance(run_dir)
            assert set(left) <= set(killed)
            assert _wait_until(lambda: not any(_alive(p) for p in killed), 3) is not None
            assert other.poll() is None
        assert not local_ray.instance_pids(private)
        if local_ray.is_tmp_private_dir(private):
            assert not private.exists()
    finally:
        driver.end()
