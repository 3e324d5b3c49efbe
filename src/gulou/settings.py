"""One configuration object for every command, read from ``GULOU_*`` variables and overridden by flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class Settings(BaseSettings):
    """Configuration: environment variables ``GULOU_<NAME>`` (or a ``.env`` file), then command-line flags."""

    model_config = SettingsConfigDict(env_prefix="GULOU_", env_file=".env", extra="ignore")

    broker: str | None = None
    broker_username: str | None = None
    broker_password: SecretStr | None = None
    broker_password_file: Path | None = None
    broker_ca_file: Path | None = None
    client_id: str = "gulou-ingest"
    share_group: str = "gulou"

    registry: Path | None = None
    store: Path = DEFAULT_STORE
    spool_dir: Path | None = None
    spool_max_bytes: int = 512 * 1024 * 1024

    influx_url: str | None = None
    influx_org: str | None = None
    influx_bucket: str | None = None
    influx_token: SecretStr | None = None
    influx_token_file: Path | None = None

    grafana_url: str | None = None
    grafana_token: SecretStr | None = None

    # Alert delivery (gulou.rules.notify): each channel is on when its URL is set.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    dingtalk_webhook: SecretStr | None = None
    dingtalk_secret: SecretStr | None = None
    wecom_webhook: SecretStr | None = None

    max_future_s: float = 300.0
    log_level: str = "INFO"

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, value: str | None) -> str | None:
        if value:
            parse_broker_url(value)
        return value or None

    def broker_address(self) -> BrokerAddress | None:
        """The configured broker, or ``None`` when the embedded broker should be used."""
        return parse_broker_url(self.broker) if self.broker else None

    def broker_secret(self) -> str | None:
        """Broker password from ``GULOU_BROKER_PASSWORD`` or the file named by ``GULOU_BROKER_PASSWORD_FILE``."""
        return _secret(self.broker_password, self.broker_password_file)

    def influx_secret(self) -> str | None:
        """InfluxDB token from ``GULOU_INFLUX_TOKEN`` or ``GULOU_INFLUX_TOKEN_FILE``."""
        return _secret(self.influx_token, self.influx_token_file)

    def with_overrides(self, **flags: Any) -> Settings:
        """Return a copy where every flag that was given (not ``None``) replaces the setting."""
        given = {k: v for k, v in flags.items() if v is not None}
        if not given:
            return self
        return Settings.model_validate({**self.model_dump(), **given})


def _secret(value: SecretStr | None, path: Path | None) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if path is not None:
        return path.read_text(encoding="utf-8").strip()
    return None
