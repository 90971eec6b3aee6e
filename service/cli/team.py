"""The `rldojo` commands for a cluster many people share: the queue, webhooks, comparing runs,
and the leaderboard of evaluated checkpoints.

    rldojo update ID --priority high --name baseline --tag v2 --shared
    rldojo webhooks add https://hooks.example/rldojo | list | rm ID | log ID | enable ID
    rldojo compare ID1 ID2 ...
    rldojo leaderboard --env rldojo/Atari-v0 --game pong
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from service.cli.common import (
    AsJson,
    Game,
    Token,
    Url,
    UsageError,
    client_for,
    guarded,
    out,
    write_json,
)
from service.schemas import WebhookOut

webhooks_app = typer.Typer(
    name="webhooks",
    help="Webhooks: your jobs' and evaluations' status changes POSTed as signed JSON.",
    no_args_is_help=True,
)


@guarded
def update(
    job_id: str,
    priority: Annotated[str | None, typer.Option(help="low, normal or high")] = None,
    name: Annotated[str | None, typer.Option(help="A name for the job")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Its tags (replace the old ones)")] = None,
    shared: Annotated[
        bool | None, typer.Option("--shared/--private", help="Let every user read it, or not")
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Change a job's priority (re-orders the queue), name, tags or sharing."""
    changes = {"priority": priority, "name": name, "tags": tag, "shared": shared}
    changes = {key: value for key, value in changes.items() if value is not None}
    if not changes:
        raise UsageError("nothing to change: give --priority, --name, --tag or --shared")
    with client_for(url, token) as client:
        job = client.update(job_id, **changes)
    place = f" (queue position {job.queue_position})" if job.queue_position else ""
    out.print(f"{job.id} {job.status.value} priority {job.priority}{place}", markup=False)


@webhooks_app.command("add")
@guarded
def add_webhook(
    target: Annotated[str, typer.Argument(help="The URL to POST events to")],
    secret: Annotated[str | None, typer.Option(help="The signing key (made if left out)")] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Register a webhook; prints its id and signing secret (shown this once)."""
    with client_for(url, token) as client:
        hook = client.add_webhook(target, secret)
    out.print(f"{hook.id} {hook.url}\nsecret: {hook.secret}", markup=False, highlight=False)


@webhooks_app.command("list")
@guarded
def list_webhooks(as_json: AsJson = False, url: Url = None, token: Token = None) -> None:
    """Your webhooks."""
    with client_for(url, token) as client:
        hooks = client.webhooks()
    if as_json:
        write_json([hook.model_dump(mode="json") for hook in hooks])
        return
    for hook in hooks:
        out.print(f"{hook.id}  {hook.url}  {_health(hook)}", markup=False, highlight=False)


def _health(hook: WebhookOut) -> str:
    """A webhook's state in one phrase: enabled (failures in a row, if any) or disabled."""
    if hook.enabled:
        failing = hook.consecutive_failures
        return f"enabled ({failing} failed in a row)" if failing else "enabled"
    when = hook.disabled_at.strftime("%Y-%m-%d %H:%M:%S") if hook.disabled_at else ""
    return f"DISABLED {when}: {hook.disabled_reason or ''}".rstrip(": ")


@webhooks_app.command("enable")
@guarded
def enable_webhook(webhook_id: str, url: Url = None, token: Token = None) -> None:
    """Send to a disabled webhook again (its URL is checked anew, its failures reset)."""
    with client_for(url, token) as client:
        hook = client.update_webhook(webhook_id, enabled=True)
    out.print(f"{hook.id} {_health(hook)}", markup=False, highlight=False)


@webhooks_app.command("disable")
@guarded
def disable_webhook(webhook_id: str, url: Url = None, token: Token = None) -> None:
    """Stop sending to a webhook but keep it (what it has pending is marked failed)."""
    with client_for(url, token) as client:
        hook = client.update_webhook(webhook_id, enabled=False)
    out.print(f"{hook.id} {_health(hook)}", markup=False, highlight=False)


@webhooks_app.command("delete")
@guarded
def delete_webhook(webhook_id: str, url: Url = None, token: Token = None) -> None:
    """Stop sending to a webhook and forget it (as `rldojo delete` does a job)."""
    with client_for(url, token) as client:
        client.delete_webhook(webhook_id)
    out.print(f"deleted {webhook_id}", markup=False)


webhooks_app.command("rm", hidden=True)(delete_webhook)  # its first name, kept for scripts


@webhooks_app.command("log")
@guarded
def delivery_log(
    webhook_id: str, as_json: AsJson = False, url: Url = None, token: Token = None
) -> None:
    """A webhook's deliveries, newest first: event, state, tries, last answer."""
    with client_for(url, token) as client:
        hook = client.webhook(webhook_id)
        found = client.deliveries(webhook_id)
    if as_json:
        write_json([d.model_dump(mode="json") for d in found])
        return
    out.print(f"{hook.id} {hook.url}: {_health(hook)}", markup=False, highlight=False)
    if not hook.enabled:
        out.print(f"re-enable it: rldojo webhooks enable {hook.id}", markup=False)
    table = Table("delivery", "event", "state", "tries", "last answer", "created", box=None)
    for d in found:
        answer = d.last_error or (f"HTTP {d.last_status}" if d.last_status else "")
        table.add_row(
            d.id, d.event, d.state, str(d.attempts), answer, d.created_at.strftime("%H:%M:%S")
        )
    out.print(table)


@guarded
def compare(
    job_ids: Annotated[list[str], typer.Argument(help="Two or more job ids")],
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """The settings where jobs differ, and each one's latest mean return (curves: rldojo plot)."""
    with client_for(url, token) as client:
        found = client.compare(job_ids)
    if as_json:
        write_json(found.model_dump(mode="json"))
        return
    table = Table("setting", *job_ids, box=None)
    for setting, by_job in found.differences.items():
        table.add_row(setting, *(str(by_job.get(job_id, "-")) for job_id in job_ids))
    last = {c.job_id: c.y[-1] for c in found.curves if c.y}
    table.add_row("latest return", *(f"{last[j]:.2f}" if j in last else "-" for j in job_ids))
    out.print(table)


@guarded
def leaderboard(
    env: Annotated[str | None, typer.Option(help="Only checkpoints trained on this env")] = None,
    game: Game = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many")] = 20,
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """The best evaluated checkpoints you may see (yours and shared ones), best first within
    each env and game (by human-normalized score on ALE games), with the protocol played."""
    with client_for(url, token) as client:
        entries = client.leaderboard(env, limit, game)
    if as_json:
        write_json([e.model_dump(mode="json") for e in entries])
        return
    table = Table(
        "return",
        "±",
        "HNS",
        "episodes",
        "protocol",
        "env",
        "game",
        "algorithm",
        "job",
        "checkpoint",
        "owner",
    )
    for e in entries:
        std = f"{e.return_std:.2f}" if e.return_std is not None else "-"
        hns = f"{e.human_normalized:.3f}" if e.human_normalized is not None else "-"
        table.add_row(
            f"{e.return_mean:.2f}",
            std,
            hns,
            str(e.episodes),
            e.protocol,
            e.env,
            e.game or "",
            e.algorithm,
            e.job_name or e.job_id,
            e.checkpoint_id,
            e.owner,
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add the shared-cluster commands to the `rldojo` app."""
    app.command()(update)
    app.add_typer(webhooks_app)
    app.command()(compare)
    app.command()(leaderboard)
