"""A job's directory: the one room that holds everything of one training job.

Both sides go through `JobDirectory`: the Ray job that trains (or evaluates) writes here, and
the API, the CLI and the plots read here; nothing else opens these files. It lives on a local
path or an `s3://` URI (`pyarrow.fs`), and its layout is:

    spec.json                         the validated job spec, as submitted
    compiled.json                     the job compiled at submit (service/compiler.py): the
                                      driver trains exactly this
    attempts/<n>/stop                 a stop was asked for attempt n (the trainer watches it)
    attempts/<n>/progress.json        what attempt n's trainer is doing (starting, waiting, ...)
    logs/attempt-<n>.log              attempt n's driver log, kept once it ended
    <trial>/result.json               Tune's rows of the current attempt (one JSON per line)
    <trial>/result.attempt-NNN.json   the rows of attempt NNN, set aside when the next started
    <trial>/checkpoint_NNNNNN/        RLlib algorithm checkpoints
    evaluations/<id>/result.json      an evaluation's score (and video.mp4)
    experiment_state-*.json, ...      Tune's own snapshot, which a resume restores

The directory *is* the Tune experiment (storage path: its parent; experiment name: its own
name, the job id), so no two jobs share an experiment name or Tune's staging folder.

One file per concept, each adding its part to `JobDirectory` (directory.py):

    files.py        the filesystem wrapper every part builds on (`JobFiles`, `filesystem`)
    specs.py        the spec and the compiled job the API stores for the driver
    control.py      the API-driver control protocol: stop requests, progress, kept logs
    rows.py         the Tune experiment's trials and their rows, continuous over attempts
    row_parser.py   the incremental parser of Tune's row files (`RowCache`, `continuous_rows`)
    checkpoints.py  checkpoint discovery, with an unpickler that rebuilds only plain data
    archives.py     a checkpoint streamed as a .tar.gz
    evaluations.py  an evaluation's result and video
"""

from service.jobdir.checkpoints import Checkpoint
from service.jobdir.directory import JobDirectory
from service.jobdir.evaluations import EVALUATION_RESULT, EVALUATION_VIDEO
from service.jobdir.files import filesystem
from service.jobdir.row_parser import RowCache, continuous_rows, finite_float
from service.jobdir.rows import RESULT
from service.jobdir.specs import COMPILED, SPEC

__all__ = [
    "COMPILED",
    "EVALUATION_RESULT",
    "EVALUATION_VIDEO",
    "RESULT",
    "SPEC",
    "Checkpoint",
    "JobDirectory",
    "RowCache",
    "continuous_rows",
    "filesystem",
    "finite_float",
]
