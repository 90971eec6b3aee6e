"""Evaluations of a job's checkpoint, each run as its own Ray job (never in the API process).

The Ray job's entrypoint is `python -m service.evaluations --checkpoint URI --out URI ...`, which
copies the checkpoint locally when it lives on `s3://`, calls `algorithms.evaluation.evaluate`
(the one evaluation function) and writes `result.json` and, if asked, `video.mp4` beside it.
The API's record follows the Ray job's status and picks the score up from `result.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from service.jobs import ACTIVE, ClusterUnavailableError, JobStatus, RayJobs, node_command
from service.storage import Storage
from service.store import EvaluationRecord, Store

logger = logging.getLogger(__name__)

VIDEO_FILE = "video.mp4"
RESULT_FILE = "result.json"


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
        job_id: str,
        checkpoint_path: str,
        checkpoint_id: str,
        episodes: int,
        seed: int,
        video: bool,
    ) -> EvaluationRecord:
        """Record the evaluation and submit its Ray job."""
        evaluation = self.store.create_evaluation(
            owner=owner,
            job_id=job_id,
            checkpoint_id=checkpoint_id,
            episodes=episodes,
            seed=seed,
            video=video,
            status=JobStatus.PENDING.value,
        )
        command = [
            "-m",
            "service.evaluations",
            "--checkpoint",
            self.storage.uri_of(checkpoint_path),
            "--out",
            self.storage.evaluation_uri(evaluation.id),
            "--episodes",
            str(episodes),
            "--seed",
            str(seed),
        ]
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
                expected=[JobStatus.PENDING.value],
                status=JobStatus.FAILED.value,
                message=str(error),
            )
        else:
            self.store.update_evaluation(evaluation_id=evaluation.id, ray_job_id=submission_id)
        found = self.store.get_evaluation(evaluation_id=evaluation.id)
        assert found is not None
        return found

    def reconcile(self, evaluation: EvaluationRecord) -> EvaluationRecord:
        """Follow the Ray job; on success read the score from storage."""
        if evaluation.status not in ACTIVE or not evaluation.ray_job_id:
            return evaluation
        try:
            info = self.ray.info(evaluation.ray_job_id)
        except ClusterUnavailableError as error:
            logger.warning("cannot reconcile evaluation %s: %s", evaluation.id, error)
            return evaluation
        if info is None:
            status, message = JobStatus.LOST, "the Ray cluster lost it"
        else:
            status = JobStatus(str(getattr(info.status, "value", info.status)))
            message = str(info.message or "")
        if status.value == evaluation.status:
            return evaluation
        values: dict[str, Any] = {"message": message}
        if status is JobStatus.SUCCEEDED:
            text = self.storage.read_text(
                f"{self.storage.evaluation_path(evaluation.id)}/{RESULT_FILE}"
            )
            if text is None:
                status, values["message"] = JobStatus.FAILED, "the evaluation wrote no result"
            else:
                values["result"] = json.loads(text)
        elif status is JobStatus.FAILED:
            logs = self.ray.logs(evaluation.ray_job_id) or ""
            values["message"] = f"{message}\n{logs[-2000:]}".strip()
        self.store.update_evaluation_status(
            evaluation_id=evaluation.id,
            expected=[evaluation.status],
            status=status.value,
            **values,
        )
        found = self.store.get_evaluation(evaluation_id=evaluation.id)
        assert found is not None
        return found

    def video_path(self, evaluation: EvaluationRecord) -> str | None:
        """Where the evaluation's video is on storage, None if it has none (yet)."""
        path = f"{self.storage.evaluation_path(evaluation.id)}/{VIDEO_FILE}"
        return path if evaluation.video and self.storage.exists(path) else None


# ---- the Ray job's side -------------------------------------------------------------------------


def run(checkpoint: str, out: str, *, episodes: int, seed: int, video: bool) -> dict[str, Any]:
    """Evaluate `checkpoint` (path or URI) and write result.json (+ video) to `out`."""
    import pyarrow.fs as pafs

    from algorithms.evaluation import evaluate

    with tempfile.TemporaryDirectory(prefix="rldojo-eval-") as scratch:
        local = checkpoint
        if "://" in checkpoint:
            local = str(Path(scratch) / "checkpoint")
            pafs.copy_files(checkpoint, local)
        video_file = Path(scratch) / VIDEO_FILE if video else None
        result = evaluate(local, episodes=episodes, seed=seed, video=video_file)
        storage = Storage(out)
        payload = result.model_dump(exclude={"video"})
        payload["video"] = video_file is not None
        if video_file is not None:
            with video_file.open("rb") as source:
                data = source.read()
            storage.fs.create_dir(storage.base, recursive=True)
            with storage.fs.open_output_stream(f"{storage.base}/{VIDEO_FILE}") as stream:
                stream.write(data)
        storage.write_text(f"{storage.base}/{RESULT_FILE}", json.dumps(payload))
    return payload


def main(argv: list[str] | None = None) -> None:
    """Entry point of the evaluation Ray job."""
    parser = argparse.ArgumentParser(description="Evaluate a checkpoint (run as a Ray job).")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--video", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    payload = run(
        args.checkpoint, args.out, episodes=args.episodes, seed=args.seed, video=args.video
    )
    logger.info("evaluation result: %s", json.dumps(payload))


if __name__ == "__main__":
    main()
