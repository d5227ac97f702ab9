"""deploy/splunk/TA-beaconwatch: sourcetypes and the CIM mapping, against Splunk's own parts.

The .conf files are read with Splunk's parser (addonfactory-splunk-conf-parser-lib); the CIM
data models are Splunk's JSON definitions from pytest-splunk-addon (tests/harness/splunk_cim.py,
downloaded from PyPI on first use). The alerts are real: made by the detector, encoded as the
service publishes them, their fields named as Splunk's JSON extraction names them.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from addonfactory_splunk_conf_parser_lib import TABConfigParser

from beaconwatch.alerting.ecs import encode_alert
from beaconwatch.alerting.log_line import alert_log_line
from beaconwatch.runtime.log_setup import LOG_FORMAT
from tests.harness.splunk_cim import data_model, datasets
from tests.unit.siem_alerts import emitted_alerts

APP = Path(__file__).parents[2] / "deploy" / "splunk" / "TA-beaconwatch" / "default"
MODEL, DATASET = "Intrusion_Detection", "IDS_Attacks"
# Fields Splunk gives every event, whatever its source.
SPLUNK_DEFAULT_FIELDS = {"host", "source", "sourcetype", "index", "_time", "_raw"}
# Keys of props.conf and transforms.conf this app may use (a typo is an error, not a no-op).
PROPS_KEYS = {"category", "description", "pulldown_type", "SHOULD_LINEMERGE", "LINE_BREAKER",
              "TRUNCATE", "KV_MODE", "TIME_PREFIX", "TIME_FORMAT",
              "MAX_TIMESTAMP_LOOKAHEAD"}  # fmt: skip
PROPS_CLASSES = ("FIELDALIAS-", "EVAL-", "REPORT-")
TRANSFORMS_KEYS = {"REGEX", "FORMAT", "CLEAN_KEYS", "MV_ADD"}
ALIAS = re.compile(r'("[^"]+"|\S+)\s+AS(?:NEW)?\s+("[^"]+"|\S+)')
STRPTIME = {"%3N": "%f", "%:z": "%z"}  # Splunk's extensions, as Python's strptime spells them


def conf(name: str) -> dict[str, dict[str, str]]:
    parser = TABConfigParser()
    assert parser.read(APP / name), name
    return {
        section: {k: v for k, v in parser.items(section) if not k.startswith("__")}
        for section in parser.sections()
    }


def splunk_fields(value: Any, prefix: str = "") -> dict[str, Any]:
    """Field name -> value as KV_MODE=json extracts them: dotted paths, `{}` for arrays."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(splunk_fields(inner, f"{prefix}.{key}" if prefix else key))
        return out
    if isinstance(value, list):
        return {f"{prefix}{{}}": value}
    return {prefix: value}


def alert_events() -> list[dict[str, Any]]:
    """The published bytes of each real alert, as Splunk would see the event."""
    return [
        {**splunk_fields(orjson.loads(encode_alert(a))), "host": "beaconwatch-1"}
        for a in emitted_alerts()
    ]


def cim_fields() -> dict[str, dict[str, Any]]:
    (dataset,) = [d for d in datasets(data_model(MODEL)) if d["name"] == DATASET]
    return {f["name"]: f for f in dataset["fields"]}


def unquote(name: str) -> str:
    return name[1:-1] if name[:1] == name[-1:] and name[:1] in "\"'" else name


def evaluate(expression: str, event: dict[str, Any]) -> Any:
    """The EVAL forms this app uses: "literal", a field (bare or 'quoted'), coalesce(...)."""
    expression = expression.strip()
    if expression.startswith('"') and expression.endswith('"'):
        return expression[1:-1]
    call = re.fullmatch(r"coalesce\((.*)\)", expression)
    if call:
        values = [evaluate(arg, event) for arg in call.group(1).split(",")]
        return next((v for v in values if v is not None), None)
    name = unquote(expression)
    assert re.fullmatch(r"[\w.@{}]+", name), f"EVAL form not understood here: {expression}"
    return event.get(name)


def mapping() -> tuple[dict[str, str], dict[str, str]]:
    """(CIM field -> source field) of the aliases, (CIM field -> expression) of the EVALs."""
    props = conf("props.conf")["beaconwatch:alert"]
    aliases: dict[str, str] = {}
    evals: dict[str, str] = {}
    for key, value in props.items():
        if key.startswith("FIELDALIAS-"):
            found = ALIAS.findall(value)
            assert found and ALIAS.sub("", value).strip() == "", f"{key}: {value}"
            for source, target in found:
                assert unquote(target) not in aliases, target
                aliases[unquote(target)] = unquote(source)
        elif key.startswith("EVAL-"):
            evals[key.removeprefix("EVAL-")] = value
    return aliases, evals


def test_the_conf_files_use_only_keys_splunk_knows() -> None:
    props = conf("props.conf")
    assert set(props) == {"beaconwatch:alert", "beaconwatch:log"}
    for stanza in props.values():
        for key in stanza:
            assert key in PROPS_KEYS or key.startswith(PROPS_CLASSES), key
    transforms = conf("transforms.conf")
    for stanza in transforms.values():
        assert set(stanza) <= TRANSFORMS_KEYS and {"REGEX", "FORMAT"} <= set(stanza)
    for key, value in props["beaconwatch:log"].items():
        if key.startswith("REPORT-"):
            assert all(name.strip() in transforms for name in value.split(","))
    app = conf("app.conf")
    assert app["package"]["id"] == app["id"]["name"] == APP.parent.name


def test_splunk_reads_the_alert_time_from_the_published_bytes() -> None:
    props = conf("props.conf")["beaconwatch:alert"]
    time_format = props["TIME_FORMAT"]
    for token, python in STRPTIME.items():
        time_format = time_format.replace(token, python)
    for alert in emitted_alerts():
        raw = encode_alert(alert).decode()
        assert re.search(props["LINE_BREAKER"], raw) is None  # one event per document
        prefix = re.search(props["TIME_PREFIX"], raw)
        assert prefix is not None
        text = raw[prefix.end() : prefix.end() + int(props["MAX_TIMESTAMP_LOOKAHEAD"])]
        text = text.split('"')[0]
        assert datetime.strptime(text, time_format).timestamp() * 1000 == alert.detected_ms


def test_every_alias_and_eval_reads_an_emitted_field_and_writes_a_cim_field() -> None:
    aliases, evals = mapping()
    fields = cim_fields()
    for event in alert_events():
        for target, source in aliases.items():
            assert target in fields, f"{target} is no field of CIM {MODEL}"
            assert source in event, f"{source} (aliased to {target}) is not in an alert"
        for target, expression in evals.items():
            assert target in fields, f"{target} is no field of CIM {MODEL}"
            assert evaluate(expression, event) is not None, target
            for name in re.findall(r"'([^']+)'|\b([a-z_]+)\b(?!\()", expression):
                field = next(n for n in name if n)
                if f'"{field}"' not in expression:
                    assert field in event or field in SPLUNK_DEFAULT_FIELDS, field


def test_the_cim_fields_are_filled_as_the_data_model_requires() -> None:
    aliases, evals = mapping()
    fields = cim_fields()
    required = {name for name, f in fields.items() if f["type"] == "required"}
    assert required <= set(aliases) | set(evals), required - set(aliases) - set(evals)
    for event in alert_events():
        values = {t: event[s] for t, s in aliases.items()}
        values |= {t: evaluate(e, event) for t, e in evals.items()}
        for name, value in values.items():
            expected = fields[name].get("expected_values")
            if expected:
                assert value in expected, f"{name}={value!r}, CIM expects one of {expected}"
        assert values["dest"] == event["destination.ip"] and values["src"] == event["source.ip"]
        assert values["dest_port"] == event["destination.port"]


def test_the_eventtype_matches_the_alerts_and_carries_the_datasets_tags() -> None:
    (eventtype,) = conf("eventtypes.conf").values()
    terms = dict(re.findall(r"([\w.:]+)=(\S+)", eventtype["search"]))
    assert terms.pop("sourcetype") in conf("props.conf")
    for event in alert_events():
        assert all(str(event[k]) == v for k, v in terms.items()), terms
    (tags,) = conf("tags.conf").values()
    enabled = {tag for tag, state in tags.items() if state == "enabled"}
    (dataset,) = [d for d in datasets(data_model(MODEL)) if d["name"] == DATASET]
    assert any(set(group) <= enabled for group in dataset["tags"]), dataset["tags"]
    (name,) = conf("tags.conf")
    assert name == f"eventtype={next(iter(conf('eventtypes.conf')))}"


def test_the_log_sourcetype_extracts_the_pairs_of_a_real_alert_line() -> None:
    props = conf("props.conf")["beaconwatch:log"]
    transforms = conf("transforms.conf")
    for alert in emitted_alerts():
        record = logging.LogRecord("beaconwatch.alerts", logging.INFO, __file__, 0,
                                   "%s", (alert_log_line(alert),), None)  # fmt: skip
        line = logging.Formatter(LOG_FORMAT).format(record)
        stamp = line[: int(props["MAX_TIMESTAMP_LOOKAHEAD"])].rsplit(" ", 1)[0]
        datetime.strptime(stamp, props["TIME_FORMAT"].replace("%3N", "%f"))
        extracted: dict[str, str] = {}
        for name in props["REPORT-beaconwatch_alert_pairs"].split(","):
            stanza = transforms[name.strip()]
            assert stanza["FORMAT"] == "$1::$2"
            extracted |= dict(re.findall(stanza["REGEX"], line))
        assert extracted["event.id"] == alert.event_id
        assert extracted["src"] == alert.src_ip and extracted["severity"] == alert.severity
        assert extracted["dst"].startswith(f"{alert.dst_ip}:{alert.dst_port}/")
        assert extracted["reason"] and " " in extracted["reason"]
        assert "INFO" not in extracted and "beaconwatch.alerts:" not in extracted


@pytest.mark.parametrize("bad", ['"allowed', "lower('x')", "'a' + 'b'"])
def test_an_eval_form_the_check_cannot_read_fails_it(bad: str) -> None:
    with pytest.raises(AssertionError):
        evaluate(bad, {})
