"""Extend a job (API, at `POST /v1/jobs/{id}/resume` with a stop): its stop made larger.

Its trials paused with a checkpoint at the old stop (`service.pausing`), so the resumed run
continues each of them from there to the new one. Only the stop changes: the compiled config
is kept as it ran, and the spec, the compiled job and the record say the new stop.
"""

from __future__ import annotations

from typing import Any

from service import compiler
from service.compiler import CompiledJob
from service.jobdir import JobDirectory
from service.spec import SpecError, parse_spec
from service.store import JobRecord, Store


def extend(job: JobRecord, stop: dict[str, Any], directory: JobDirectory, store: Store) -> None:
    """Write `job`'s spec and compiled job with `stop` (fields of the spec's stop) merged in.

    Raises:
        SpecError: the merged stop is not a valid one (a field named, as at submit), or the
            job's trials ended at its stop (PBT, a model-based searcher).
    """
    spec = parse_spec({**job.spec, "stop": {**job.spec.get("stop", {}), **stop}})
    if spec.trials_end_at_stop:
        raise SpecError(
            [
                {
                    "loc": ["stop"],
                    "msg": "this job's trials ended at its stop (its PBT or model-based searcher "
                    "needs them ended): there is nothing to extend; submit a new job",
                }
            ]
        )
    stored = CompiledJob.model_validate(directory.read_compiled())
    directory.write_compiled(compiler.with_stop(stored, spec).model_dump(mode="json"))
    spec_json = spec.model_dump(mode="json")
    directory.write_spec(spec_json)
    store.update_job(job_id=job.id, spec=spec_json)
