"""The ``[mqtt]`` section: the broker, its credentials and TLS, the topics, commands on or off.

Checked like every other section at start (file, key, reason), and apart from
them because it is optional and has rules of its own: MQTT topic names may not
hold wildcards, and a TLS file that is missing must stop the start, not the
first connection attempt hours later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chargepoint.config.model import MqttConfig
from chargepoint.config.reader import Reader, table

#: Characters a topic prefix may not hold: the wildcards, and the NUL MQTT forbids.
TOPIC_FORBIDDEN = "+#\0"
#: MQTT's own limit on a packet (256 MiB), in KiB.
MESSAGE_KB_MAX = 256 * 1024


def _check_topic(r: Reader, name: str, value: str) -> None:
    if any(c in value for c in TOPIC_FORBIDDEN):
        r.refuse(name, f"must not contain '+', '#' or NUL (MQTT wildcards), not {value!r}")
    if value.startswith("/") or value.endswith("/") or "//" in value:
        r.refuse(name, f"must not begin or end with '/' nor hold an empty level, not {value!r}")


def _file(r: Reader, name: str, value: str, base: str) -> str:
    """A TLS file, relative to the configuration file, that must exist now."""
    if not value:
        return ""
    path = Path(value)
    if not path.is_absolute() and base not in ("", "<config>"):
        path = Path(base).parent / path
    if not path.is_file():
        r.refuse(name, f"file not found: {value}: give the path of the PEM file (a relative path is taken "
                       "from the configuration file's directory)")
    return str(path)


def parse_mqtt(file: str, data: dict[str, Any], identity: str) -> MqttConfig:
    """``[mqtt]`` of a parsed document; ``identity`` makes the default topic prefix."""
    r = Reader(file, table(file, data, "mqtt"), "mqtt")
    d = MqttConfig()
    cfg = MqttConfig(
        enabled=r.boolean("enabled", d.enabled),
        host=r.string("host", d.host),
        port=r.number("port", d.port, low=1, high=65535, integer=True),
        username=r.string("username", d.username),
        password=r.string("password", d.password),
        tls=r.boolean("tls", d.tls),
        ca_file=_file(r, "ca_file", r.string("ca_file", d.ca_file), file),
        client_cert=_file(r, "client_cert", r.string("client_cert", d.client_cert), file),
        client_key=_file(r, "client_key", r.string("client_key", d.client_key), file),
        topic_prefix=r.string("topic_prefix", d.topic_prefix),
        commands=r.boolean("commands", d.commands),
        discovery=r.boolean("discovery", d.discovery),
        discovery_prefix=r.string("discovery_prefix", d.discovery_prefix),
        interval_s=r.number("interval_s", d.interval_s, low=0.1, high=3600),
        reconnect_min_s=r.number("reconnect_min_s", d.reconnect_min_s, low=0.1, high=3600),
        reconnect_max_s=r.number("reconnect_max_s", d.reconnect_max_s, low=0.1, high=86400),
        keepalive_s=r.number("keepalive_s", d.keepalive_s, low=5, high=3600, integer=True),
        max_message_kb=r.number("max_message_kb", d.max_message_kb, low=1, high=MESSAGE_KB_MAX, integer=True),
    )
    if cfg.enabled and not cfg.host:
        r.refuse("host", "is required with enabled = true")
    if cfg.password and not cfg.username:
        r.refuse("username", "is required when a password is set")
    if (cfg.ca_file or cfg.client_cert) and not cfg.tls:
        r.refuse("tls", "must be true when ca_file or client_cert is set")
    if cfg.client_key and not cfg.client_cert:
        r.refuse("client_cert", "is required when client_key is set")
    if cfg.reconnect_max_s < cfg.reconnect_min_s:
        r.refuse("reconnect_max_s", "must not be smaller than reconnect_min_s")
    if cfg.topic_prefix:
        _check_topic(r, "topic_prefix", cfg.topic_prefix)
    elif any(c in identity for c in TOPIC_FORBIDDEN):
        r.refuse("topic_prefix", f"is required: the station identity {identity!r} holds an MQTT "
                                 "wildcard and cannot make the default chargepoint/<identity>")
    if not cfg.discovery_prefix:
        r.refuse("discovery_prefix", "must not be empty")
    _check_topic(r, "discovery_prefix", cfg.discovery_prefix)
    r.finish()
    return cfg
