"""The shipped alerting rules: valid, wired into the Prometheus config, unit-tested with
`promtool test rules` (fire and stay quiet for every alert), and documented in the runbook."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.monitoring.tools import (
    PROMETHEUS_CONFIG,
    RULE_TESTS,
    RULES,
    RUNBOOK,
    run,
    tool,
)


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_rule_unit_tests_pass() -> None:
    result = run(tool("promtool"), "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_checks_the_rules_and_the_config_that_loads_them() -> None:
    rules = run(tool("promtool"), "check", "rules", str(RULES))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in rules.stdout
    config = run(tool("promtool"), "check", "config", str(PROMETHEUS_CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr
    # A rule_files glob that matches nothing is valid: the rules file must be the one found.
    assert "SUCCESS: 1 rule files found" in config.stdout, config.stdout
    assert f"Checking {RULES}" in config.stdout, config.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases: dict[str, list[bool]] = {}
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], []).append(bool(case.get("exp_alerts")))
    for rule in alert_rules():
        name = rule["alert"]
        assert True in cases.get(name, []), f"{name}: no promtool case where it fires"
        assert False in cases.get(name, []), f"{name}: no promtool case where it stays quiet"


def test_every_alert_has_a_severity_and_a_runbook_section() -> None:
    runbook = RUNBOOK.read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in runbook.splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        anchor = rule["annotations"]["runbook"]
        assert anchor == f"docs/operations.md#{name.lower()}", anchor
        assert name.lower() in headings, f"{name}: no '### {name}' section in {RUNBOOK.name}"
