"""`Idempotency-Key` on submit: a client that lost the answer can send the same request again.

The first submit with a key creates the job and stores the key (unique per owner) with the
fingerprint of its spec. A later submit by the same owner with that key gets the same job back
and starts nothing; with the same key but another spec it is refused (`KeyReusedError`, a 422
naming the header). Another owner's key is another key.

Example:
    >>> from service.spec import parse_spec
    >>> a = fingerprint(parse_spec({"algorithm": "q_learning", "seed": 1}))
    >>> a == fingerprint(parse_spec({"seed": 1, "algorithm": "q_learning"}))
    True
"""

from __future__ import annotations

import hashlib
import json

from service.spec import JobSpec
from service.store import JobRecord, Store

HEADER = "Idempotency-Key"


class KeyReusedError(ValueError):
    """The owner used this Idempotency-Key before, for another spec."""

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(
            f"{HEADER} {key!r} was used for job {job_id} with another spec; "
            "a new request needs a new key"
        )


def fingerprint(spec: JobSpec) -> str:
    """A digest of the spec as parsed (defaults filled in, key order aside)."""
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def earlier_job(
    store: Store, owner: str, key: str | None, spec_fingerprint: str
) -> JobRecord | None:
    """The job this owner submitted with `key` before, if any.

    Raises:
        KeyReusedError: that job was submitted with another spec.
    """
    if key is None:
        return None
    job = store.job_by_idempotency_key(owner=owner, key=key)
    if job is not None and job.request_fingerprint != spec_fingerprint:
        raise KeyReusedError(key, job.id)
    return job
