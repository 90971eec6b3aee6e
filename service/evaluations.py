"""Evaluations of a job's checkpoint, each run as its own Ray job (never in the API process).

The Ray job's entrypoint is `python -m service.evaluations --checkpoint URI --out URI ...`, which
copies the checkpoint locally when it lives on `s3://`, calls `algorithms.evaluation.evaluate`
(the one evaluation function) under the asked protocol (`book` or `standard`) and writes
`result.json` (which records the protocol) and, if asked, `video.mp4` into `evaluations/<id>/`
of the job's directory. The API's record follows the Ray job's status
(`status_from_ray`, as for training jobs) and picks the score up from `result.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from service.cluster import ClusterUnavailableError, RayJobs, node_command
from service.jobdir import EVALUATION_RESULT, EVALUATION_VIDEO, Checkpoint, JobDirectory
from service.status import ON_RAY, JobStatus, root_cause
from service.storage import Storage
from service.store import EvaluationRecord, Store

logger = logging.getLogger(__name__)


class EvaluationService:
    """Create evaluations and follow them; used by the evaluation routes."""

    def __init__(self, *, store: Store, storage: Storage, ray: RayJobs) -> None:
        self.store = store
        self.storage = storage
        self.ray = ray

    def create(
        self,
        *,
        owner: str,
        directory: JobDirectory,
        checkpoint: Checkpoint,
        episodes: int,
        seed: int,
        video: bool,
        protocol: str = "book",
        epsilon: float | None = None,
    ) -> EvaluationRecord:
        """Record the evaluation and submit its Ray job (the result records the protocol)."""
        evaluation = self.store.create_evaluation(
            owner=owner,
            job_id=directory.name,
            checkpoint_id=checkpoint.id,
            episodes=episodes,
            seed=seed,
            video=video,
            status=JobStatus.PENDING,
        )
        command = [
            "-m",
            "service.evaluations",
            "--checkpoint",
            directory.checkpoint_uri(checkpoint),
            "--out",
            directory.evaluation_uri(evaluation.id),
            "--episodes",
            str(episodes),
            "--seed",
            str(seed),
            "--protocol",
            protocol,
        ]
        if epsilon is not None:
            command += ["--epsilon", repr(float(epsilon))]
        if video:
            command.append("--video")
        submission_id = f"rldojo-eval-{evaluation.id}"
        try:
            self.ray.submit(
                entrypoint=node_command("python", command),
                submission_id=submission_id,
                metadata={"rldojo_evaluation_id": evaluation.id, "owner": owner},
            )
        except ClusterUnavailableError as error:
            self.store.update_evaluation_status(
                evaluation_id=evaluation.id,
                expected=[JobStatus.PENDING],
                status=JobStatus.FAILED,
                message=str(error),
            )
        else:
            self.store.update_evaluation(evaluation_id=evaluation.id, ray_job_id=submission_id)
        found = self.store.get_evaluation(evaluation_id=evaluation.id)
        assert found is not None
        return found

    def _folder(self, evaluation: EvaluationRecord) -> tuple[JobDirectory, str]:
        """Where an evaluation's files are: (its job's directory, the prefix of the files)."""
        return self.storage.job(evaluation.job_id), f"evaluations/{evaluation.id}/"

    def reconcile(self, evaluation: EvaluationRecord) -> EvaluationRecord:
        """Follow the Ray job; on success read the score from storage."""
        if evaluation.status not in ON_RAY or not evaluation.ray_job_id:
            return evaluation
        try:
            state = self.ray.state(evaluation.ray_job_id)
        except ClusterUnavailableError as error:
            logger.warning("cannot reconcile evaluation %s: %s", evaluation.id, error)
            return evaluation
        status = state.status
        if status is evaluation.status:
            return evaluation
        values: dict[str, Any] = {"message": state.message}
        if status is JobStatus.SUCCEEDED:
            directory, prefix = self._folder(evaluation)
            text = directory.read_text(f"{prefix}{EVALUATION_RESULT}")
            if text is None:
                status, values["message"] = JobStatus.FAILED, "the evaluation wrote no result"
            else:
                values["result"] = json.loads(text)
        elif status is JobStatus.FAILED:
            logs = self.ray.logs(evaluation.ray_job_id) or state.message
            values["message"] = root_cause(logs)
        self.store.update_evaluation_status(
            evaluation_id=evaluation.id,
            expected=[evaluation.status],
            status=status,
            **values,
        )
        found = self.store.get_evaluation(evaluation_id=evaluation.id)
        assert found is not None
        return found

    def video(self, evaluation: EvaluationRecord) -> tuple[JobDirectory, str] | None:
        """The directory and path of the evaluation's video, None if it has none (yet)."""
        if not evaluation.video:
            return None
        directory, prefix = self._folder(evaluation)
        path = f"{directory.path}/{prefix}{EVALUATION_VIDEO}"
        return (directory, path) if directory.exists(f"{prefix}{EVALUATION_VIDEO}") else None


# ---- the Ray job's side -------------------------------------------------------------------------


def run(
    checkpoint: str,
    out: str,
    *,
    episodes: int,
    seed: int,
    video: bool,
    protocol: str = "book",
    epsilon: float | None = None,
) -> dict[str, Any]:
    """Evaluate `checkpoint` (path or URI) and write result.json (+ video) to `out`."""
    import pyarrow.fs as pafs

    from algorithms.evaluation import evaluate

    with tempfile.TemporaryDirectory(prefix="rldojo-eval-") as scratch:
        local = checkpoint
        if "://" in checkpoint:
            local = str(Path(scratch) / "checkpoint")
            pafs.copy_files(checkpoint, local)
        video_file = Path(scratch) / EVALUATION_VIDEO if video else None
        result = evaluate(
            local,
            episodes=episodes,
            seed=seed,
            epsilon=epsilon,
            protocol=protocol,
            video=video_file,
        )
        folder = JobDirectory.open(out)
        payload = result.model_dump(exclude={"video"})
        payload["video"] = video_file is not None
        if video_file is not None:
            folder.write_bytes(EVALUATION_VIDEO, video_file.read_bytes())
        folder.write_text(EVALUATION_RESULT, json.dumps(payload))
    return payload


def main(argv: list[str] | None = None) -> None:
    """Entry point of the evaluation Ray job."""
    parser = argparse.ArgumentParser(description="Evaluate a checkpoint (run as a Ray job).")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--video", action="store_true")
    parser.add_argument("--protocol", choices=("book", "standard"), default="book")
    parser.add_argument("--epsilon", type=float, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    payload = run(
        args.checkpoint,
        args.out,
        episodes=args.episodes,
        seed=args.seed,
        video=args.video,
        protocol=args.protocol,
        epsilon=args.epsilon,
    )
    logger.info("evaluation result: %s", json.dumps(payload))


if __name__ == "__main__":
    main()
