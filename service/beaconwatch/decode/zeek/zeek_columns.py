"""Zeek's TSV columns of the logs beaconwatch reads, and which of them each log needs.

A Zeek TSV file says its columns in a ``#fields`` header, but Zeek TSV lines shipped to Kafka
one by one (Filebeat, Vector or fluent-bit tailing one log per topic) carry none: such a topic
is read with the columns its configuration names (`kafka.zeek_tsv_topics`), by default Zeek's
own for that log. Imports nothing, so `config` can check a column list at start-up.
"""

from __future__ import annotations

# Logs a Zeek TSV topic may carry: connections, or the records that name them.
ZEEK_TSV_LOGS = ("conn", "ssl", "http")

# Streams whose records name a connection: the field holding the name.
NAME_FIELDS = {"ssl": "server_name", "http": "host"}

# Zeek's default columns (base scripts only, no optional policy scripts loaded): conn.log of
# base/protocols/conn/main.zeek; ssl.log and http.log as Zeek 6 and 7 write them.
DEFAULT_CONN_FIELDS: tuple[str, ...] = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
    "duration", "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp",
    "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes",
    "tunnel_parents",
)  # fmt: skip
DEFAULT_SSL_FIELDS: tuple[str, ...] = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "version", "cipher",
    "curve", "server_name", "resumed", "last_alert", "next_protocol", "established",
    "ssl_history", "cert_chain_fps", "client_cert_chain_fps", "sni_matches_cert",
)  # fmt: skip
DEFAULT_HTTP_FIELDS: tuple[str, ...] = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "trans_depth", "method",
    "host", "uri", "referrer", "version", "user_agent", "origin", "request_body_len",
    "response_body_len", "status_code", "status_msg", "info_code", "info_msg", "tags",
    "username", "password", "proxied", "orig_fuids", "orig_filenames", "orig_mime_types",
    "resp_fuids", "resp_filenames", "resp_mime_types",
)  # fmt: skip
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "conn": DEFAULT_CONN_FIELDS,
    "ssl": DEFAULT_SSL_FIELDS,
    "http": DEFAULT_HTTP_FIELDS,
}

REQUIRED_FIELDS = ("ts", "id.orig_h", "id.resp_h", "id.resp_p", "proto")
# Of an ssl.log/http.log (and its `NAME_FIELDS` column).
NOTE_REQUIRED_FIELDS = ("ts", "id.orig_h", "id.resp_h", "id.resp_p")


def required_fields(log: str) -> tuple[str, ...]:
    """The columns a ``log`` (one of `ZEEK_TSV_LOGS`) cannot be read without."""
    name = NAME_FIELDS.get(log)
    return (*NOTE_REQUIRED_FIELDS, name) if name else REQUIRED_FIELDS


def column_problem(log: str, fields: list[str] | tuple[str, ...]) -> str | None:
    """Why ``fields`` cannot be the columns of a ``log``, or None when they can."""
    if not fields:
        return "must name at least one column"
    blank = next((f for f in fields if not f.strip() or f != f.strip()), None)
    if blank is not None:
        return f"column name {blank!r} is blank or has spaces around it"
    seen: set[str] = set()
    for field in fields:
        if field in seen:
            return f"column {field!r} is named twice"
        seen.add(field)
    missing = [f for f in required_fields(log) if f not in seen]
    if missing:
        return f"a {log}.log needs the columns {', '.join(missing)}"
    return None
