"""Cluster submission through Ray's Jobs SDK: submit, status, logs, stop.

``submit`` packs a working directory with the spec (its data file paths rewritten to the
uploaded copies) and the small local data files, ships our packages as ``py_modules``
(so the cluster runs the submitter's code), and starts the entrypoint
``python -m sweeps.cli.main sweep spec.yaml --address auto``.

Addresses follow Ray: ``RAY_API_SERVER_ADDRESS``, then ``RAY_ADDRESS``, override the
``--address`` given, exactly as ``JobSubmissionClient`` does. Token authentication
(``RAY_AUTH_MODE=token`` with ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH``/
``~/.ray/auth_token``) is added to every request by the SDK itself.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from sweeps.spec import load_spec, spec_to_dict
from trainer.errors import UserInputError

# Ray refuses working_dir packages above its GCS limit; stay well below it.
MAX_UPLOAD_BYTES = 100 * 2**20
AGENT_WAIT_S = 120


class JobError(UserInputError):
    """The job could not be submitted or found; the message says why."""


def _token_auth_like_ray_init() -> None:
    """Use token auth when a token is available and ``RAY_AUTH_MODE`` is unset.

    This is what ``ray.init(address=...)`` does when it joins an existing cluster; the
    Jobs SDK alone only sends the token when ``RAY_AUTH_MODE=token``. (Private Ray
    helper: Ray is pinned, see pyproject.toml.)
    """
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # pragma: no cover - another Ray version
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def client(address: str | None):
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    _token_auth_like_ray_init()

    try:
        return JobSubmissionClient(address)
    except AuthenticationError as err:
        raise JobError(
            f"the Ray cluster at {address or '(auto)'} refused this request: it has token "
            "authentication on and this machine sent no token or a wrong one. Give the "
            "cluster's token in RAY_AUTH_TOKEN, or in a file named by RAY_AUTH_TOKEN_PATH "
            f"(see docs/cluster.md).\nRay said: {err.message}"
        ) from None
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise JobError(f"cannot reach the Ray job server at {address or '(auto)'}: {err}") from err


def _package_dirs() -> list[str]:
    import sweeps
    import trainer

    return [str(Path(m.__file__).parent) for m in (sweeps, trainer)]


def prepare_upload(
    spec_path: str | Path,
    workdir: Path,
    *,
    shared_data: bool = False,
    storage: str | None = None,
    data_dir: str | Path | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Write ``workdir/spec.yaml`` (+ ``data/``); return the spec dict written.

    ``overrides`` (``--set KEY=VALUE``) are applied here, before validation, so the job
    runs the spec they make (and refuses a bad one on this machine, before submitting).

    Local data files are copied into ``workdir/data`` unless ``shared_data`` (then their
    absolute paths must exist on every node). A relative ``storage`` is made absolute on
    this machine, so results land where the submitter expects on a shared filesystem.
    """
    spec = load_spec(spec_path, data_dir=data_dir, overrides=overrides)
    data = spec_to_dict(spec)
    if storage:
        data["storage"] = storage
    elif not spec.is_remote_storage() and not Path(spec.storage).is_absolute():
        data["storage"] = str(Path(spec.storage).resolve())
    total = 0
    for i, ds in enumerate(data["datasets"]):
        files = ds.get("files")
        if not files or shared_data:
            continue
        for split in ("train", "dev", "test"):
            if not files.get(split):
                continue
            src = Path(files[split])
            size = src.stat().st_size
            total += size
            if total > MAX_UPLOAD_BYTES:
                raise JobError(
                    f"datasets[{i}].files.{split} ({src}, {size / 2**20:.0f} MiB) makes the "
                    f"upload larger than {MAX_UPLOAD_BYTES // 2**20} MiB, too large to send "
                    "with the job. Put the data on storage every node can read (NFS, or "
                    "the hub) and submit with --shared-data so its paths are used as they are."
                )
            dest = workdir / "data" / f"{i}-{split}{''.join(src.suffixes)}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            files[split] = str(dest.relative_to(workdir))
    (workdir / "spec.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return data


def submit(
    spec_path: str | Path,
    address: str | None,
    *,
    shared_data: bool = False,
    storage: str | None = None,
    submission_id: str | None = None,
    extra_args: list[str] | None = None,
    data_dir: str | Path | None = None,
    overrides: list[str] | None = None,
) -> str:
    """Submit the sweep as a Ray Job; return the job id."""
    c = client(address)
    workdir = Path(tempfile.mkdtemp(prefix="steadytune-job-"))
    try:
        spec = prepare_upload(
            spec_path, workdir, shared_data=shared_data, storage=storage, data_dir=data_dir,
            overrides=overrides,
        )  # fmt: skip
        command = ["python", "-m", "sweeps.cli.main", "sweep", "spec.yaml", "--address", "auto"]
        entrypoint = " ".join([*command, *(extra_args or [])])
        # a freshly started head answers "No available agent" until its job agent is up
        deadline = time.monotonic() + AGENT_WAIT_S
        while True:
            try:
                return c.submit_job(
                    entrypoint=entrypoint,
                    submission_id=submission_id,
                    runtime_env={"working_dir": str(workdir), "py_modules": _package_dirs()},
                    metadata={"steadytune_sweep": spec["name"]},
                )
            except RuntimeError as err:
                if "No available agent" not in str(err) or time.monotonic() > deadline:
                    raise JobError(f"submitting to {address or '(auto)'} failed: {err}") from err
                time.sleep(2)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def status(job_id: str, address: str | None) -> dict[str, Any]:
    info = _info(job_id, address)
    return {
        "job_id": job_id,
        "status": str(info.status.value if hasattr(info.status, "value") else info.status),
        "message": info.message,
        "entrypoint": info.entrypoint,
        "start_time": info.start_time,
        "end_time": info.end_time,
    }


def _info(job_id: str, address: str | None):
    c = client(address)
    try:
        return c.get_job_info(job_id)
    except RuntimeError as err:
        raise JobError(f"no job {job_id!r} at {address or '(auto)'}: {err}") from err


def logs(job_id: str, address: str | None) -> str:
    _info(job_id, address)
    return client(address).get_job_logs(job_id)


def follow_logs(job_id: str, address: str | None):
    """Yield log chunks until the job ends."""
    import asyncio

    c = client(address)

    async def _collect(queue: list[str]) -> None:
        async for chunk in c.tail_job_logs(job_id):
            print(chunk, end="", flush=True)

    asyncio.run(_collect([]))
    return ""


def stop(job_id: str, address: str | None) -> bool:
    _info(job_id, address)
    return client(address).stop_job(job_id)


def wait(job_id: str, address: str | None, timeout_s: float = 600) -> str:
    """Poll until the job is terminal; return its status name."""
    from ray.job_submission import JobStatus

    c = client(address)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        s = c.get_job_status(job_id)
        if s in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            return s.value
        time.sleep(1)
    raise TimeoutError(f"job {job_id} still running after {timeout_s}s")
