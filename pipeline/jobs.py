"""Which job a run belongs to, and picking an unfinished run of it up again.

A job is the input's content plus what is asked of it and where it goes. Running
the same job again resumes its newest unfinished run (same run id, next session);
once a run finished, the next one is a new run that reuses the store's answers
through the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import EXIT_OK, UsageError
from pipeline.io.reader import InputFile
from pipeline.providers import Provider
from pipeline.store.base import AnswerStore
from pipeline.store.records import NewRun, RunRecord, RunState, cache_window


def new_run_id(now: datetime) -> str:
    """Sortable and unique: UTC time plus a little randomness."""
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def job_identity(config: Config, source: InputFile, providers: list[Provider]) -> dict[str, Any]:
    """What makes two runs the same job: the input's content, what is asked of it, and
    where it goes. Budget, batch size and a lane's pace are not part of it, so a run
    stopped by its budget or a 429 storm resumes after those are changed. Kept with the
    run (as JSON), so a new run can name what changed since the last one."""
    tuning = {"requests_per_minute", "max_concurrency", "timeout_s", "max_attempts", "api_key_env"}
    settings = config.providers.enabled()
    identity = {
        "input": str(Path(config.input.path).resolve()),
        "fingerprint": source.fingerprint,
        "columns": _input_identity(config),
        "output": str(config.output_file.resolve()),
        "normalize": config.normalize.model_dump(mode="json"),
        "providers": {
            # options, not params: a new key (after a 401, say) resumes the same run;
            # its answers are still filed under the account that bought them.
            p.name: [p.options(), settings[p.name].model_dump(mode="json", exclude=tuning)]
            for p in providers
        },
    }
    loaded: dict[str, Any] = json.loads(identity_text(identity))
    return loaded


def identity_text(identity: dict[str, Any]) -> str:
    """The identity as the store keeps it (and the job id hashes it)."""
    return json.dumps(identity, sort_keys=True, default=str)


def job_key(identity: dict[str, Any]) -> str:
    """The job's id: a hash of its identity."""
    return hashlib.sha256(identity_text(identity).encode()).hexdigest()[:32]


def job_id(config: Config, source: InputFile, providers: list[Provider]) -> str:
    """The id of the job (:func:`job_identity`)."""
    return job_key(job_identity(config, source, providers))


def _input_identity(config: Config) -> dict[str, object]:
    """The input settings, without its path (that is above) and without a setting added
    later while it has its default: a job started before the setting existed resumes."""
    settings = config.input.model_dump(mode="json", exclude={"path"})
    if settings.get("encoding_errors") == "strict":
        del settings["encoding_errors"]
    return settings


def remove_stale_temp_outputs(output_path: Path) -> None:
    """Temp outputs left by runs that were killed (their process is gone)."""
    for tmp in output_path.parent.glob(f".{output_path.name}.*.tmp"):
        pid = tmp.name.removeprefix(f".{output_path.name}.").removesuffix(".tmp")
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_run(
    store: AnswerStore,
    job: str,
    config: Config,
    config_path: str | None,
    started: datetime,
    no_cache: bool,
    identity: str | None = None,
) -> RunRecord:
    """The job's newest unfinished run, resumed (next session), or a new run (which
    keeps ``identity``, the job's :func:`identity_text`)."""
    previous = store.resumable_run(job)
    if previous is not None:
        return store.resume(previous.run_id)
    return store.start(
        NewRun(
            run_id=new_run_id(started),
            job=job,
            config_path=config_path,
            input_path=str(config.input.path),
            output_path=str(config.output_file),
            cache_cutoff=None if no_cache else started.timestamp(),
            identity=identity,
        )
    )


def cache_from(record: RunRecord, config: Config) -> dict[str, float | None]:
    """Per provider: the oldest fetch time an earlier run's answer may have to be reused."""
    return {
        name: cache_window(record.cache_cutoff, settings.cache_ttl_days)
        for name, settings in config.providers.enabled().items()
    }


def run_to_retry(store: AnswerStore, job: str, run_id: str | None, config: Config) -> RunRecord:
    """The run ``retry`` takes up again: ``run_id`` (which must be of this job), or the
    job's latest run."""
    if run_id is None:
        latest = store.latest_run(job)
        if latest is None:
            raise UsageError(
                f"{config.input.path}: no run of this input with this config to retry; use run"
            )
        return latest
    record = store.get_run(run_id)
    if record is None:
        raise UsageError(f"--run {run_id}: no such run in {config.run.state_dir}")
    if record.job != job:
        raise UsageError(
            f"--run {run_id}: that run enriched another input or config "
            f"({record.input_path} -> {record.output_path}); pass the config it ran with"
        )
    return record


def nothing_to_retry(store: AnswerStore, record: RunRecord) -> bool:
    """The run finished and none of its lookups failed: ``retry`` has nothing to do."""
    return record.state == RunState.FINISHED and not store.failure_reasons(record.run_id)


def finished_run(store: AnswerStore, job: str, output: Path) -> RunRecord | None:
    """The job's last run, if it finished with every row settled and its output is there:
    nothing to do (unless forced)."""
    last = store.latest_run(job)
    if last is None or last.state != RunState.FINISHED or last.exit_code != EXIT_OK:
        return None
    return last if output.exists() else None
