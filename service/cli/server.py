"""The `rldojo` commands that run the service on this machine: `serve` and `stop-head`.

rldojo serve [--host H] [--port P]        rldojo stop-head
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from service.cli.common import err, fail, guarded, out


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (RLDOJO_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (RLDOJO_PORT)")] = None,
) -> None:
    """Run the HTTP service (starts or re-joins the embedded Ray head unless RLDOJO_RAY_ADDRESS).

    The embedded head outlives the service, so jobs keep running across restarts; `rldojo
    stop-head` stops it.
    """
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from service.main import create_app
    from service.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call to Ray's dashboard
    overrides: dict[str, Any] = {"host": host, "port": port}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    try:
        settings.check_bind()
        app = create_app(settings)
    except (ValueError, OSError, SQLAlchemyError) as error:  # storage root or database unusable
        raise fail(str(error)) from None
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    if settings.ray_address is None:
        err.print(
            "the embedded Ray head keeps running (jobs go on); `rldojo stop-head` stops it",
            markup=False,
        )


@guarded
def stop_head() -> None:
    """Stop the embedded Ray head of this data directory (RLDOJO_DATA_DIR) and its jobs."""
    from service.cluster.head import stop_embedded_head
    from service.settings import Settings

    settings = Settings()
    if stop_embedded_head(settings):
        out.print(f"stopped the embedded Ray head of {settings.data_dir}", markup=False)
    else:
        out.print(f"no embedded Ray head runs for {settings.data_dir}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the server commands to the `rldojo` app."""
    app.command()(serve)
    app.command("stop-head")(stop_head)
