"""One configuration object for every command: ``GULOU_*`` variables (or ``.env``), then command-line flags.

Each plugin reads its own section: ``GULOU_INFLUX__URL`` sets ``settings.influx.url``. The flat names the
docs have always given (``GULOU_INFLUX_URL``, ``GULOU_BROKER``, ...) keep working through ``LEGACY``; the
nested form wins where both are set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_STORE = Path("gulou-data/gulou.db")


class BrokerAddress(BaseModel):
    """A parsed ``mqtt://`` or ``mqtts://`` broker URL."""

    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://HOST:PORT`` (or ``mqtts://``) into host, port and TLS flag."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError(f"broker URL {url!r}: no host")
    if parts.username or parts.password:
        # Credentials in a URL end up in shell history and process listings.
        raise ValueError(f"broker URL {url!r}: give credentials through GULOU_BROKER_USERNAME/PASSWORD")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ValueError(f"broker URL {url!r}: bad port") from exc
    return BrokerAddress(host=parts.hostname, port=port, tls=tls)


def read_secret(value: SecretStr | None, path: Path | None) -> str | None:
    """A secret given directly, else read from the file named for it, else None."""
    if value is not None:
        return value.get_secret_value()
    if path is not None:
        return path.read_text(encoding="utf-8").strip()
    return None


class Section(BaseModel):
    """A settings section: unknown keys are mistakes."""

    model_config = ConfigDict(extra="forbid")


SectionT = TypeVar("SectionT", bound=BaseModel)


class MqttSettings(Section):
    """The MQTT broker the devices publish to (none: an embedded broker on this machine)."""

    url: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    client_id: str = "gulou-ingest"
    share_group: str = "gulou"
    # Where the embedded broker (no url) listens: HOST:PORT; none: a free loopback port, this machine only.
    listen: str | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value:
            parse_broker_url(value)
        return value or None

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str | None) -> str | None:
        if value:
            _, sep, port = value.rpartition(":")
            if not sep or not port.isdigit() or int(port) > 65535:
                raise ValueError(f"listen address {value!r}: give HOST:PORT, e.g. 0.0.0.0:1883")
        return value or None

    def address(self) -> BrokerAddress | None:
        """The configured broker, or ``None`` when the embedded broker should be used."""
        return parse_broker_url(self.url) if self.url else None

    def secret(self) -> str | None:
        """Password from ``password`` or ``password_file``."""
        return read_secret(self.password, self.password_file)


class InfluxSettings(Section):
    """InfluxDB (2.x/3.x, 1.8+ or VictoriaMetrics) through the v2 write API; on when ``url`` is set."""

    url: str | None = None
    org: str | None = None
    bucket: str | None = None
    token: SecretStr | None = None
    token_file: Path | None = None
    timeout_s: float = 10.0

    def secret(self) -> str | None:
        """Token from ``token`` or ``token_file``."""
        return read_secret(self.token, self.token_file)


class SpoolSettings(Section):
    """The disk spool in front of a remote sink."""

    dir: Path | None = None
    max_bytes: int = 512 * 1024 * 1024

    @field_validator("dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # An empty GULOU_SPOOL__DIR= would otherwise be "." and put the spool in the working directory.
        return None if isinstance(value, str) and not value.strip() else value


class OpsSettings(Section):
    """Operating a long-running service: where ``/metrics`` and ``/healthz`` listen, JSON log lines."""

    listen: str | None = None
    log_json: bool = False


class LimitsSettings(Section):
    """Bounds on what devices may send and on how long rejects and accounting are kept."""

    max_payload_bytes: int = 64 * 1024
    deadletter_copy_bytes: int = 4096
    deadletter_retention_days: float = 30.0
    deadletter_max_rows: int = 1_000_000
    counts_retention_days: float = 400.0


class BusSettings(Section):
    """The NATS JetStream bus for scale-out (``GULOU_BUS=nats://h1:4222,nats://h2:4222``); off: in-process."""

    url: str | None = None
    partitions: int = 16  # fixed when the stream is made
    replicas: int | None = None  # None: min(3, cluster size)
    max_bytes: int = 10 * 1024**3
    max_age_s: float = 7 * 86400.0
    lease_ttl_s: float = 10.0
    publish_timeout_s: float = 30.0
    # Rules workers read the bus: their consumers hold every reading until they have evaluated it.
    rules: bool = True

    def urls(self) -> list[str]:
        """The server URLs, or [] when no bus is configured."""
        return [u.strip() for u in (self.url or "").split(",") if u.strip()]


class WebhookSettings(Section):
    """HTTP webhook alert channel; on when ``url`` is set."""

    url: str | None = None
    secret: SecretStr | None = None


class DingTalkSettings(Section):
    """DingTalk group robot alert channel; on when ``webhook`` is set."""

    webhook: SecretStr | None = None
    secret: SecretStr | None = None


class WeComSettings(Section):
    """WeCom group robot alert channel; on when ``webhook`` is set."""

    webhook: SecretStr | None = None


class GrafanaSettings(Section):
    """Grafana for ``gulou dashboards push``."""

    url: str | None = None
    token: SecretStr | None = None


class WorkflowSettings(Section):
    """The alert workflow: its database (default: the store file), policy files, work-order dispatch."""

    # postgresql+psycopg://user@host/db in production; None: sqlite:///<store>. Also GULOU_DATABASE_URL.
    database_url: SecretStr | None = None
    policy_dir: Path | None = None
    dispatch_url: str | None = None
    dispatch_secret: SecretStr | None = None
    dispatch_secret_file: Path | None = None
    signature_max_age_s: float = 300.0
    flush_s: float = 2.0

    def url(self, store: Path) -> str:
        """The database URL: the configured one, else the embedded SQLite store file."""
        return self.database_url.get_secret_value() if self.database_url else f"sqlite:///{store}"

    def dispatch_key(self) -> str | None:
        """The work-order shared secret, from the value or its file."""
        return read_secret(self.dispatch_secret, self.dispatch_secret_file)


class ApiSettings(Section):
    """``gulou serve``: address, the operators' tokens file, the URL people reach it at."""

    listen: str = "127.0.0.1:8088"
    tokens_file: Path | None = None
    public_url: str | None = None
    open_reads: bool = False


class ReportSettings(Section):
    """Reports: where the daily push writes its HTML, the targets file, the daily push time (Beijing)."""

    dir: Path = Path("gulou-data/reports")
    targets: Path | None = None  # default: the shipped data/targets.yaml
    cache: bool = True  # keep complete months' station daily values in <dir>/cache
    push_at: str | None = None  # "HH:MM" Beijing time; the daily push is on when set
    link_base: str | None = None  # the URL <dir> is served at; the push message links <link_base>/<file>

    @field_validator("push_at")
    @classmethod
    def _check_push_at(cls, value: str | None) -> str | None:
        if value:
            hour, _, minute = value.partition(":")
            if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60 and len(minute) == 2):
                raise ValueError(f"push_at {value!r}: use HH:MM (Beijing time)")
        return value or None


class Hj212Settings(Section):
    """The HJ 212 station gateway; on when ``listen`` (HOST:PORT) is set. Stations come from the registry."""

    listen: str | None = None
    secrets_file: Path | None = None  # MN → password (and SM4 key); outside the repository
    extended: bool = True  # readings carry period and flags (the contract's station fields)
    max_connections: int = Field(default=5000, ge=1)
    max_segment: int = Field(default=9999, ge=100, le=9999)
    idle_timeout_s: float = Field(default=900.0, gt=0)
    write_timeout_s: float = Field(default=30.0, gt=0)
    max_future_s: float = Field(default=600.0, ge=0)
    ack_rejected: bool = True  # answer 9014 to a trusted packet whose content was dead-lettered
    client_id: str = "gulou-hj212"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str | None) -> str | None:
        if value:
            parse_listen(value)
        return value or None

    def address(self) -> tuple[str, int] | None:
        """Host and port to listen on, or None when the gateway is off."""
        return parse_listen(self.listen) if self.listen else None


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port)."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address {value!r}: expected HOST:PORT, e.g. 0.0.0.0:2756")
    return host.strip("[]") or "0.0.0.0", int(port)


# Flat names (environment variables without the prefix, and CLI flag names) → (section, key).
LEGACY: dict[str, tuple[str, str]] = {
    "broker": ("mqtt", "url"),
    "broker_username": ("mqtt", "username"),
    "broker_password": ("mqtt", "password"),
    "broker_password_file": ("mqtt", "password_file"),
    "broker_ca_file": ("mqtt", "ca_file"),
    "client_id": ("mqtt", "client_id"),
    "share_group": ("mqtt", "share_group"),
    "broker_listen": ("mqtt", "listen"),
    "influx_url": ("influx", "url"),
    "influx_org": ("influx", "org"),
    "influx_bucket": ("influx", "bucket"),
    "influx_token": ("influx", "token"),
    "influx_token_file": ("influx", "token_file"),
    "spool_dir": ("spool", "dir"),
    "spool_max_bytes": ("spool", "max_bytes"),
    "webhook_url": ("webhook", "url"),
    "webhook_secret": ("webhook", "secret"),
    "dingtalk_webhook": ("dingtalk", "webhook"),
    "dingtalk_secret": ("dingtalk", "secret"),
    "wecom_webhook": ("wecom", "webhook"),
    "grafana_url": ("grafana", "url"),
    "grafana_token": ("grafana", "token"),
    "database_url": ("workflow", "database_url"),
    "bus_url": ("bus", "url"),
}


def nest_flat(data: dict[str, Any]) -> dict[str, Any]:
    """Move the flat names of ``LEGACY`` into their sections (``influx_url`` → ``influx.url``); they win."""
    nested: dict[str, Any] = {}
    for name, value in data.items():
        if name not in LEGACY:
            nested[name] = {**nested.get(name, {}), **value} if isinstance(value, dict) else value
    for name, value in data.items():
        if name in LEGACY:
            section, key = LEGACY[name]
            current = nested.get(section)
            current = dict(current) if isinstance(current, dict) else {}
            current[key] = value
            nested[section] = current
    return nested


class _LegacySource(PydanticBaseSettingsSource):
    """Reads the flat ``GULOU_*`` names of ``LEGACY`` from the environment and ``.env``."""

    def __init__(self, settings_cls: type[BaseSettings], dotenv: dict[str, str | None]) -> None:
        super().__init__(settings_cls)
        self._dotenv = dotenv

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: ``__call__`` builds the whole mapping."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """The legacy values found, nested into their sections."""
        environ = {k.lower(): v for k, v in os.environ.items()}
        dotenv = {k.lower(): v for k, v in self._dotenv.items()}
        found: dict[str, Any] = {}
        for name in LEGACY:
            env = f"gulou_{name}"
            value = environ.get(env, dotenv.get(env))
            if value not in (None, ""):
                found[name] = value
        return nest_flat(found)


class Settings(BaseSettings):
    """Configuration: ``GULOU_<SECTION>__<KEY>`` (or the documented flat names, or ``.env``), then flags."""

    model_config = SettingsConfigDict(env_prefix="GULOU_", env_file=".env", env_nested_delimiter="__",
                                      extra="ignore")

    registry: Path | None = None
    store: Path = DEFAULT_STORE
    max_future_s: float = 300.0
    log_level: str = "INFO"

    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    spool: SpoolSettings = SpoolSettings()
    webhook: WebhookSettings = WebhookSettings()
    dingtalk: DingTalkSettings = DingTalkSettings()
    wecom: WeComSettings = WeComSettings()
    grafana: GrafanaSettings = GrafanaSettings()
    ops: OpsSettings = OpsSettings()
    limits: LimitsSettings = LimitsSettings()
    workflow: WorkflowSettings = WorkflowSettings()
    api: ApiSettings = ApiSettings()
    hj212: Hj212Settings = Hj212Settings()
    report: ReportSettings = ReportSettings()
    # GULOU_BUS is the URL list itself (not JSON); other keys as GULOU_BUS__<KEY>.
    bus: Annotated[BusSettings, NoDecode] = BusSettings()

    @field_validator("bus", mode="before")
    @classmethod
    def _bus_url(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"log level {value!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags, then nested variables, then the flat legacy names, then ``.env``."""
        dotenv = dotenv_settings.env_vars if isinstance(dotenv_settings, DotEnvSettingsSource) else {}
        return init_settings, env_settings, _LegacySource(settings_cls, dict(dotenv)), dotenv_settings, \
            file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _flat_names(cls, data: Any) -> Any:
        # Flags and keyword arguments may use the flat names; they arrive here next to the sections.
        return nest_flat(data) if isinstance(data, dict) else data

    def with_overrides(self, **flags: Any) -> Settings:
        """A copy where every flag given (not ``None``) replaces its setting; flat names as in ``LEGACY``."""
        given = {k: v for k, v in flags.items() if v is not None}
        if not given:
            return self
        return Settings.model_validate({**self.model_dump(), **given})

    def broker_address(self) -> BrokerAddress | None:
        """The configured broker, or ``None`` when the embedded broker should be used."""
        return self.mqtt.address()

    def plugin_section(self, name: str, model: type[SectionT]) -> SectionT:
        """A plugin's own section, declared in the plugin's module: ``GULOU_<NAME>__<KEY>`` variables (or ``.env``).

        Sections of the shipped plugins are fields above; this lets a new source, sink or channel bring its
        settings in its one module instead of editing this file.
        """
        prefix = f"gulou_{name.lower()}__"
        dotenv_file = self.model_config.get("env_file")
        values: dict[str, Any] = {}
        if isinstance(dotenv_file, str) and Path(dotenv_file).is_file():
            from dotenv import dotenv_values

            values.update({k.lower()[len(prefix):]: v for k, v in dotenv_values(dotenv_file).items()
                           if k.lower().startswith(prefix) and v is not None})
        values.update({k.lower()[len(prefix):]: v for k, v in os.environ.items() if k.lower().startswith(prefix)})
        return model.model_validate(values)
