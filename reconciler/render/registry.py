"""The one place that maps a format name to its renderer; the CLI picks from here, nothing else does."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reconciler.plan.drift import DriftReport
from reconciler.plan.model import Plan
from reconciler.render.drift import format_drift_json, format_drift_markdown, format_drift_text
from reconciler.render.json import format_plan_json
from reconciler.render.markdown import format_plan_markdown
from reconciler.render.text import format_plan_text


@dataclass(frozen=True)
class Style:
    """How the terminal wants text: ANSI colours, and every address rather than only the pending ones."""

    color: bool = False
    verbose: bool = False


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
FORMATS = tuple(PLAN_RENDERERS)  # what --format offers; drift speaks the same ones (a unit test checks)
