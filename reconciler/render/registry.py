"""The one place that maps a format name to its renderer; the CLI picks from here, nothing else does."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.plan.drift import DriftReport
from reconciler.plan.model import Plan
from reconciler.render.drift import format_drift_json, format_drift_markdown, format_drift_text
from reconciler.render.fleet import format_fleet_json, format_fleet_markdown, format_fleet_text
from reconciler.render.json import format_plan_json
from reconciler.render.lines import Style as Style  # where it lives: render/fleet.py needs it too
from reconciler.render.markdown import format_plan_markdown
from reconciler.render.text import format_plan_text

PLAN_RENDERERS: Mapping[str, Callable[[Plan, Style], str]] = {
    "text": lambda plan, style: format_plan_text(plan, color=style.color, verbose=style.verbose),
    "json": lambda plan, style: format_plan_json(plan),
    "markdown": lambda plan, style: format_plan_markdown(plan, verbose=style.verbose),
}
DRIFT_RENDERERS: Mapping[str, Callable[[DriftReport, Style], str]] = {
    "text": lambda report, style: format_drift_text(report, color=style.color, verbose=style.verbose),
    "json": lambda report, style: format_drift_json(report),
    "markdown": lambda report, style: format_drift_markdown(report),
}
# a fleet report is the JSON document of plan.fleet (several stacks, or one shard of them)
FLEET_RENDERERS: Mapping[str, Callable[[Mapping[str, Any], Style], str]] = {
    "text": format_fleet_text,
    "json": lambda report, style: format_fleet_json(report),
    "markdown": lambda report, style: format_fleet_markdown(report),
}
FORMATS = tuple(PLAN_RENDERERS)  # what --format offers; drift speaks the same ones (a unit test checks)
