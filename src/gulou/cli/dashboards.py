"""``gulou dashboards``: generate and push the operators' Grafana dashboards."""

from __future__ import annotations

from pathlib import Path

import click

from gulou.cli.common import echo_json, json_option, load_settings, open_registry, registry_option

DEFAULT_GRAFANA_URL = "http://localhost:3000"


@click.group()
def dashboards() -> None:
    """Generate and push Grafana dashboards."""


@dashboards.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Directory for the dashboard JSON (default: dashboards/).")
@click.option("--gazetteer", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Device-coordinates file for the Geomap (default: grafana/gazetteer/gulou-devices.json).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 listing the files that are stale.")
@registry_option
@json_option
def generate(out: Path | None, gazetteer: Path | None, check: bool, registry: Path | None, as_json: bool) -> None:
    """Write the dashboards from code (or check that the committed JSON is current)."""
    from gulou.dashboards.generate import DEFAULT_GAZETTEER, DEFAULT_OUT, render, stale, write

    settings = load_settings(registry=registry)
    files = render(open_registry(settings), out or DEFAULT_OUT, gazetteer or DEFAULT_GAZETTEER)
    changed = stale(files) if check else write(files)
    if as_json:
        echo_json({"check": check, "files": [str(f.path) for f in files], "stale" if check else "written":
                   [str(p) for p in changed]})
    else:
        for f in files:
            mark = ("stale" if check else "written") if f.path in changed else "up to date"
            click.echo(f"{f.path}: {mark}", err=True)
    if check and changed:
        raise click.ClickException(
            f"{len(changed)} generated file(s) are stale: {', '.join(str(p) for p in changed)}; "
            "run `gulou dashboards generate`")


@dashboards.command()
@click.option("--url", default=None, metavar="URL",
              help=f"Grafana URL (env GULOU_GRAFANA_URL; default {DEFAULT_GRAFANA_URL}).")
@click.option("--token", default=None, metavar="TOKEN",
              help="Service-account token (prefer env GULOU_GRAFANA_TOKEN: a flag shows in process listings).")
@click.option("--influx-url", default=None, metavar="URL",
              help="InfluxDB URL as Grafana reaches it (env GULOU_INFLUX_URL).")
@click.option("--database", default=None, metavar="NAME",
              help="InfluxQL database: the 1.x database or the 2.x bucket's DBRP name (env GULOU_INFLUX_BUCKET).")
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Push these JSON files instead of generating (default: generate in memory).")
@registry_option
@json_option
def push(url: str | None, token: str | None, influx_url: str | None, database: str | None,
         directory: Path | None, registry: Path | None, as_json: bool) -> None:
    """Create or update the datasource, the 鼓楼智脑 folder and every dashboard in Grafana."""
    import json

    from gulou.dashboards.common import FOLDER_TITLE
    from gulou.dashboards.generate import build_all
    from gulou.dashboards.push import InfluxTarget, PushError, connect
    from gulou.dashboards.push import push as do_push

    settings = load_settings(registry=registry, grafana_url=url, grafana_token=token, influx_url=influx_url,
                             influx_bucket=database)
    grafana_url = settings.grafana.url or DEFAULT_GRAFANA_URL
    if not settings.influx.url or not settings.influx.bucket:
        raise click.UsageError("the datasource needs GULOU_INFLUX_URL and GULOU_INFLUX_BUCKET (or --influx-url, "
                               "--database)")
    if directory is not None:
        boards = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))}
        if not boards:
            raise click.ClickException(f"no *.json dashboards in {directory}")
    else:
        boards = build_all(open_registry(settings))
    secret = settings.grafana.token.get_secret_value() if settings.grafana.token else None
    target = InfluxTarget(url=settings.influx.url, database=settings.influx.bucket, token=settings.influx.secret())
    try:
        result = do_push(connect(grafana_url, secret), target, boards, grafana_url,
                         progress=lambda line: click.echo(line, err=True))
    except PushError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json(result.as_dict())
    else:
        click.echo(f"pushed {len(result.dashboards)} dashboards to {grafana_url}, folder {FOLDER_TITLE}")
