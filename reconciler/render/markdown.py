"""Markdown plans for pull-request comments (filled in by the code-review issue)."""

from __future__ import annotations

from reconciler.plan.model import Plan
from reconciler.render.text import format_plan_text


def format_plan_markdown(plan: Plan) -> str:
    """For now: the text plan in a fenced block."""
    return "```\n" + format_plan_text(plan) + "```\n"
