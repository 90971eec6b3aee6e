"""The `rldojo` command line: one app; local commands (`local.py`), the server's (`server.py`),
jobs on it (`remote.py`) and their results (`results.py`), teams and policies.

    rldojo train q_learning --env rldojo/GridWorld-v0 --stop-iters 30 --out results
    rldojo submit q_learning --env rldojo/GridWorld-v0 --stop-iters 30 --follow

Bad input prints one line naming the problem and exits non-zero; never a traceback. Set
`RLDOJO_DEBUG=1` to see RLlib's and Ray's own warnings, which are filtered out otherwise.
"""

from __future__ import annotations

import os

import typer

from service import quiet
from service.cli import local, policies, remote, results, server, team

app = typer.Typer(
    name="rldojo",
    help="The RLCode book's algorithms, trained on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
local.register(app)
server.register(app)
remote.register(app)
results.register(app)
team.register(app)
policies.register(app)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Tune's newer console output ignores verbose=0; rldojo draws its own progress instead.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    quiet.install()
    app()


if __name__ == "__main__":
    main()
