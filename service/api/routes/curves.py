"""/v1/jobs/{id}/curve.png: a job's learning curve, drawn by `service.plots` like `rldojo plot`."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response

from algorithms.common import metrics
from service import plots
from service.api.deps import JobsDep, VisibleJob
from service.api.routes.jobs import ERRORS
from service.text import PlainText

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERRORS)

MetricName = Annotated[
    PlainText, Query(max_length=200, description="A metric key of the result rows")
]


@router.get(
    "/{job_id}/curve.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "A PNG learning curve"}},
)
def job_curve(
    job: VisibleJob,
    jobs: JobsDep,
    metric: MetricName = metrics.EPISODE_RETURN_MEAN,
    x: MetricName = metrics.ENV_STEPS,
) -> Response:
    """Every trial's `metric` against `x` (raw and smoothed); 404 until a row reports both."""
    rows = jobs.directory(job).rows()
    image = io.BytesIO()
    try:
        plots.learning_curve(
            rows, image, metric=metric, x=x, title=plots.job_title(job.id, job.spec)
        )
    except ValueError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job.id}: {error}") from None
    return Response(image.getvalue(), media_type="image/png")
