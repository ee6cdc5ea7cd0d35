"""One settings object for every component, read from the environment (prefix ``SITEWATCH_``).

Nested sections use a double underscore: ``SITEWATCH_MQTT__URL=mqtt://broker:1883``,
``SITEWATCH_STORE__BACKEND=influxdb``. Build it with :func:`load_settings` and pass it in;
nothing in the package reads the environment at import time.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from .i18n import DEFAULT_LANGUAGE, _
from .i18n import normalize as normalize_language


class Environment(StrEnum):
    """Where the process runs; production refuses insecure defaults."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class StoreBackend(StrEnum):
    """Time-series store implementations."""

    EMBEDDED = "embedded"
    INFLUXDB = "influxdb"


class UnknownDevicePolicy(StrEnum):
    """What ingest does with a device the asset registry does not know."""

    DEADLETTER = "deadletter"
    FLAG = "flag"


class MqttProtocol(StrEnum):
    """MQTT version spoken to the broker."""

    V5 = "5"
    V311 = "3.1.1"  # brokers without MQTT 5 (the demo's embedded amqtt): no Receive Maximum, no
    # shared subscriptions, no reason codes (a publish the broker refuses is not reported)


class Section(BaseModel):
    """A settings section: a name it does not have (``SITEWATCH_MQTT__NO_SUCH``) is refused, as at the top."""

    model_config = ConfigDict(extra="forbid")


class MqttSettings(Section):
    """Broker connection."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str = "sitewatch"
    keepalive_s: int = Field(30, ge=5, le=3600)
    max_inflight: int = Field(200, ge=1, le=65535)
    protocol: MqttProtocol = MqttProtocol.V5

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(
                f"broker URL must look like mqtt://host:1883 or mqtts://host:8883, got {value!r}"
            )
        return value

    @property
    def host(self) -> str:
        """Broker host name."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """Broker port (1883, or 8883 for mqtts, unless given)."""
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        """Whether the connection uses TLS."""
        return urlsplit(self.url).scheme == "mqtts" or self.ca_file is not None


class StoreSettings(Section):
    """Time-series store: the embedded file or an InfluxDB server."""

    backend: StoreBackend = StoreBackend.EMBEDDED
    path: Path | None = None  # embedded file; default: <data_dir>/readings.db
    influx_url: str = "http://127.0.0.1:8086"
    influx_database: str = "sitewatch"
    influx_retention_policy: str | None = None
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_token: SecretStr | None = None  # InfluxDB 2.x / 3 Core: sent as "Authorization: Token ..."
    influx_batch_size: int = Field(10_000, ge=1, le=100_000)  # lines (samples) per request
    influx_timeout_s: float = Field(10.0, gt=0, le=300)
    influx_query_timeout_s: float = Field(
        300.0, gt=0, le=3600
    )  # a query over months computes before it answers
    influx_gzip: bool = True


class DatabaseSettings(Section):
    """Asset registry database (SQLAlchemy URL)."""

    url: str | None = None  # default: sqlite:///<data_dir>/registry.db
    echo: bool = False


class WebSettings(Section):
    """Built-in web console and REST API."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    max_body_bytes: int = Field(1_048_576, ge=1024, le=1_073_741_824)  # larger bodies get 413


class ContractSettings(Section):
    """Limits applied by the message validator."""

    max_payload_bytes: int = Field(1_048_576, ge=1024)
    max_samples: int = Field(10_000, ge=1)
    max_future_s: float = Field(300.0, ge=0)
    max_age_s: float = Field(90 * 86400.0, gt=0)


class IngestSettings(Section):
    """Ingest service behaviour."""

    batch_readings: int = Field(36_000, ge=1)  # about one full InfluxDB request
    batch_interval_s: float = Field(0.5, gt=0, le=60)
    # batches a worker writes at once: InfluxDB serves one request on about one core, so a single
    # write in flight leaves it idle between requests (the store may allow fewer: concurrent_writes)
    store_writers: int = Field(3, ge=1, le=16)
    shared_group: str | None = None  # MQTT 5 shared subscription group
    unknown_devices: UnknownDevicePolicy = UnknownDevicePolicy.DEADLETTER
    registry_url: str | None = None  # REST API of the asset registry, for device lookups
    registry_token: SecretStr | None = None  # bearer token for the registry (role bureau or admin)
    registry_cache_s: float = Field(300.0, gt=0)  # how long a looked-up device is trusted before a refresh
    liveness: bool = True  # store gateways' births, deaths and counters (ingest.liveness)


class AnalyticsSettings(Section):
    """Analytics: the rules (docs/analytics.md) and the live service (docs/analytics-service.md)."""

    rules_file: Path | None = None  # a YAML file of rules replacing the shipped ones
    state_dir: Path | None = None  # engine checkpoints; default: <data_dir>/analytics
    checkpoint_messages: int = Field(1000, ge=1, le=1_000_000)  # checkpoint (then ack) after this many messages
    # Receive Maximum of the worker: messages unacknowledged until the next checkpoint; a whole city's
    # checkpoint takes about a second, and the gateways' messages keep coming meanwhile
    max_inflight: int = Field(2000, ge=1, le=65535)
    checkpoint_interval_s: float = Field(1.0, gt=0, le=60)  # ... or this long after the first unacked one
    tick_s: float = Field(5.0, gt=0, le=3600)  # the engine's timer (no data, durations, day/night)
    sites_refresh_s: float = Field(300.0, ge=0, le=86_400)  # re-read the compound list (0: never)
    # the detectors on the store's recent history (docs/analytics-service.md#windowed-scoring); 0: off
    score_interval_s: float = Field(300.0, ge=0, le=86_400)
    models_dir: Path | None = None  # trained models (analytics train); default: <data_dir>/models


class AlertsSettings(Section):
    """Alerting: grouping timers, escalation, inhibition, delivery (see docs/alerts.md)."""

    console_url: str = "http://127.0.0.1:8080"  # links in messages: <console_url>/alerts/<id>
    group_wait_s: float = Field(30.0, ge=0, le=3600)  # a new group waits this long for company
    group_wait_critical_s: float = Field(0.0, ge=0, le=3600)  # ... unless it holds a critical alert
    group_interval_s: float = Field(300.0, gt=0, le=86_400)  # a changed group is re-notified after this
    repeat_interval_s: float = Field(14_400.0, gt=0, le=7 * 86_400)  # an unchanged firing group, after this
    # minutes without acknowledgement before each escalation step, per severity (absent: never)
    escalation_minutes: dict[str, float] = Field(default_factory=lambda: {"critical": 10.0})
    inhibit_rules: Path | None = None  # a YAML file of rules replacing the shipped ones
    inhibit_hold_s: float = Field(300.0, ge=0)  # a resolved source still inhibits this long
    outage_share: float = Field(0.5, gt=0, le=1)  # share of a kind's devices offline for an outage
    outage_kinds: int = Field(2, ge=1)  # kinds that must be that far offline at once
    close_after_s: float = Field(900.0, ge=0)  # resolved → closed; a re-fire before reopens the alert
    channel_rate_per_min: int = Field(20, ge=1, le=10_000)  # per channel (robots allow 20 a minute)
    delivery_timeout_s: float = Field(10.0, gt=0, le=300)
    retry_min_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(300.0, gt=0)
    give_up_h: float = Field(24.0, gt=0)  # a notification still undelivered then is abandoned
    channel_failure_after: int = Field(5, ge=1)  # failed attempts in a row before a channel's own alert
    max_label_chars: int = Field(200, ge=16, le=2000)
    decode_process: bool = True  # `alerts run` decodes finding payloads in a child process beside the applying one
    smtp_ca_file: Path | None = None  # CA bundle for e-mail channels' TLS (default: the system's)

    @model_validator(mode="before")
    @classmethod
    def _refuse_removed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "timezone" in data:
            raise ValueError(
                _("alerts.timezone was removed: times in alert messages use the top-level timezone setting "
                  "(SITEWATCH_TIMEZONE); set that and remove SITEWATCH_ALERTS__TIMEZONE")
            )  # fmt: skip
        return data

    @field_validator("escalation_minutes")
    @classmethod
    def _check_escalation(cls, value: dict[str, float]) -> dict[str, float]:
        severities = ("info", "warning", "critical")
        for severity, minutes in value.items():
            if severity not in severities:
                raise ValueError(
                    f"escalation_minutes: {severity!r} is not a severity ({', '.join(severities)})"
                )
            if not 0 <= minutes <= 10_080:
                raise ValueError(
                    f"escalation_minutes: {minutes} minutes for {severity} is not within 0 to 10080"
                )
        return value


class Settings(BaseSettings):
    """Everything sitewatch can be told; see docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix="SITEWATCH_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path(".sitewatch")
    log_level: str = "INFO"
    # what people read (screens, reports, alerts): zh_CN or en; logs stay in English
    language: str = DEFAULT_LANGUAGE
    # IANA time zone of days, weeks and months in queries, reports and dashboards
    timezone: str = "Asia/Shanghai"
    mqtt: MqttSettings = MqttSettings()
    store: StoreSettings = StoreSettings()
    database: DatabaseSettings = DatabaseSettings()
    web: WebSettings = WebSettings()
    contract: ContractSettings = ContractSettings()
    ingest: IngestSettings = IngestSettings()
    alerts: AlertsSettings = AlertsSettings()
    analytics: AnalyticsSettings = AnalyticsSettings()

    @field_validator("language")
    @classmethod
    def _check_language(cls, value: str) -> str:
        return normalize_language(value)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai or UTC)"
            ) from None
        return value

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            problems = []
            if not self.mqtt.tls:
                problems.append("mqtt.url must use mqtts:// (or set mqtt.ca_file) in production")
            if self.mqtt.username is None or self.mqtt.password is None:
                problems.append("mqtt.username and mqtt.password are required in production")
            if problems:
                raise ValueError("; ".join(problems))
        return self

    @property
    def store_path(self) -> Path:
        """File of the embedded store."""
        return self.store.path or self.data_dir / "readings.db"

    @property
    def analytics_state_dir(self) -> Path:
        """Folder of the analytics service's checkpoints."""
        return self.analytics.state_dir or self.data_dir / "analytics"

    @property
    def analytics_models_dir(self) -> Path:
        """Folder of the trained models (``analytics train``) the live service loads."""
        return self.analytics.models_dir or self.data_dir / "models"

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the asset registry."""
        return self.database.url or f"sqlite:///{self.data_dir / 'registry.db'}"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, with explicit overrides taking precedence."""
    return Settings(**overrides)


def validation_problems(exc: ValidationError, docs: str = "docs/configuration.md") -> list[str]:
    """Each problem of a pydantic validation as ``where: what`` for people (settings, gateway and
    connector configuration), in the current language: a missing field and an unknown one (a
    misspelling, usually) say so, and the latter where to look (``docs``). Other problems are the
    validators' own messages (pydantic's are in English)."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or _("(top level)")
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = _("required field is missing")
        elif error["type"] == "extra_forbidden":
            message = _("unknown field; check the spelling against {docs}", docs=docs)
        problems.append(f"{where}: {message}")
    return problems
