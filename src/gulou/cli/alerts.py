"""``gulou alerts``: recorded alerts with their handling state; ``ack``, ``assign``, ``close``, ``show`` one."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import click

from gulou.cli.common import echo_json, json_option, load_settings, store_option
from gulou.settings import Settings

# Workflow fields added to each alert of ``gulou alerts --json`` (the engine's fields stay as they were).
WORKFLOW_FIELDS = ("status", "acked_by", "acked_at", "ack_note", "assignee", "assignee_kind", "assigned_by",
                   "assigned_at", "escalation_level", "escalated_at", "closed_by", "closed_at", "close_note",
                   "silence_id", "work_order_id", "work_order_status", "version")
# Engine fields the workflow does not keep (left empty for alerts only the workflow recorded).
ENGINE_ONLY = ("key", "lat", "lon", "notified_at", "updates")
by_option = click.option("--by", "operator", default=None, metavar="NAME",
                         help="Who acts (recorded in the history; default: your login name).")
note_option = click.option("--note", default=None, help="A note for the history.")


def _workflow(settings: Settings, migrate: bool) -> Any:
    from gulou.workflow.store import WorkflowStore

    return WorkflowStore(settings.workflow.url(settings.store), migrate=migrate)


def _merged(settings: Settings, rows: list[dict[str, Any]], active: bool, limit: int | None) -> list[dict[str, Any]]:
    """The engine's alert rows with the workflow's fields, plus alerts only the workflow recorded, newest first."""
    import sqlalchemy as sa

    from gulou.workflow.store import AlertFilter

    try:
        wf = _workflow(settings, migrate=False)
    except sa.exc.SQLAlchemyError:
        return rows
    try:
        records = {r.alert_id: r for r in wf.alerts(AlertFilter(condition="firing" if active else None),
                                                    limit=limit or 1_000_000)}
    except sa.exc.SQLAlchemyError:  # a store from before the workflow: no such tables
        records = {}
    finally:
        wf.close()
    out = []
    for row in rows:
        record = records.pop(str(row["alert_id"]), None)
        extra = record.model_dump(mode="json", include={"id", *WORKFLOW_FIELDS}) if record else \
            {"id": None, **dict.fromkeys(WORKFLOW_FIELDS)}
        out.append({**row, **extra})
    for record in records.values():  # the workflow saw it, the engine's table did not (yet)
        data = record.model_dump(mode="json")
        out.append({**dict.fromkeys(ENGINE_ONLY), **data, "state": record.condition, "source": record.standard})
    out.sort(key=lambda r: (_parse(str(r["first_seen"])), str(r["alert_id"])), reverse=True)
    return out[:limit] if limit else out


@click.group("alerts", invoke_without_command=True)
@click.option("--active", is_flag=True, help="Only alerts that are firing now.")
@click.option("--open", "open_only", is_flag=True, help="Leave out closed (销号) alerts.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many, newest first.")
@store_option
@json_option
@click.pass_context
def alerts(ctx: click.Context, active: bool, open_only: bool, limit: int | None, store: Path | None,
           as_json: bool) -> None:
    """Alerts recorded by the rules engine with who handles them (newest first)."""
    ctx.obj = {"store": store}
    if ctx.invoked_subcommand is not None:
        return
    from gulou.rules.alert_store import AlertStore

    settings = load_settings(store=store)
    try:
        db = AlertStore(settings.store, readonly=True)
    except FileNotFoundError:
        raise click.ClickException(f"no store at {settings.store}") from None
    try:
        rows = db.alerts(active_only=active, limit=limit)
    finally:
        db.close()
    rows = _merged(settings, rows, active, limit)
    if open_only:
        rows = [r for r in rows if r.get("status") != "closed"]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no alerts")
    from gulou.timeutil import beijing

    for a in rows:
        number = f"#{a['id']}" if a.get("id") else "-"
        who = a.get("assignee") or a.get("acked_by") or ""
        click.echo(f"{number:<6} {a['state']:<9} {a.get('status') or '-':<12} {a['severity']:<13} "
                   f"{a['rule_id']:<34} {a['device_id']:<16} {beijing(_parse(a['first_seen']))}  {who:<10} "
                   f"{a['message']}")


def _parse(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)


def _act(ctx: click.Context, ref: str, decide: Any) -> None:
    from gulou.workflow.model import WorkflowError

    settings = load_settings(store=ctx.obj.get("store"))
    wf = _workflow(settings, migrate=True)
    try:
        record = wf.act(ref, decide)
    except WorkflowError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        wf.close()
    click.echo(f"#{record.id} {record.status} (version {record.version})")


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@alerts.command("ack")
@click.argument("ref")
@note_option
@by_option
@click.pass_context
def ack(ctx: click.Context, ref: str, note: str | None, operator: str | None) -> None:
    """Acknowledge alert REF (its number or alert_id): you are on it; escalation stops."""
    from gulou.workflow.transitions import acknowledge

    who = operator or getpass.getuser()
    _act(ctx, ref, lambda a: acknowledge(a, who, note, _now()))


@alerts.command("assign")
@click.argument("ref")
@click.argument("assignee")
@click.option("--team", is_flag=True, help="ASSIGNEE is a team, not a person.")
@note_option
@by_option
@click.pass_context
def assign(ctx: click.Context, ref: str, assignee: str, team: bool, note: str | None, operator: str | None) -> None:
    """Assign alert REF to a person (or --team)."""
    from gulou.workflow.transitions import assign as assign_to

    who = operator or getpass.getuser()
    _act(ctx, ref, lambda a: assign_to(a, who, assignee, "team" if team else "person", note, _now()))


@alerts.command("close")
@click.argument("ref")
@note_option
@by_option
@click.pass_context
def close(ctx: click.Context, ref: str, note: str | None, operator: str | None) -> None:
    """Close (销号) alert REF; one still firing needs --note saying why."""
    from gulou.workflow.transitions import close as close_alert

    who = operator or getpass.getuser()
    _act(ctx, ref, lambda a: close_alert(a, who, note, _now()))


@alerts.command("show")
@click.argument("ref")
@json_option
@click.pass_context
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """One alert with its full history."""
    from gulou.timeutil import beijing
    from gulou.workflow.model import WorkflowError

    settings = load_settings(store=ctx.obj.get("store"))
    wf = _workflow(settings, migrate=True)
    try:
        record, history = wf.get(ref), wf.history(ref)
    except WorkflowError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        wf.close()
    if as_json:
        echo_json({"alert": record.model_dump(mode="json"), "history": [h.model_dump(mode="json") for h in history]})
        return
    click.echo(f"#{record.id} {record.alert_id}\n{record.condition} / {record.status}  {record.message}")
    for h in history:
        click.echo(f"  {beijing(h.at)}  {h.actor:<24} {h.action:<18} {h.note or ''}")
