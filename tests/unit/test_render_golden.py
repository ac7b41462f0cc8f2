"""Golden files: manifest + literal live data -> plan and drift report in every format.

Regenerate with `UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/unit/test_render_golden.py`
(see tests/golden/README.md) and review the diff.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconciler.kinds.base import Kind
from reconciler.manifest.expand import bookkeeping
from reconciler.manifest.model import DesiredResource
from reconciler.manifest.sections.iam import expand as expand_iam
from reconciler.manifest.validate import load_manifest
from reconciler.plan.build import build_plan
from reconciler.plan.drift import build_drift
from reconciler.plan.kind import KindPlanner
from reconciler.plan.model import Action, LiveResource, Note, NoteKind, Plan
from reconciler.render.drift import format_drift_json, format_drift_markdown, format_drift_text
from reconciler.render.json import format_plan_json
from reconciler.render.markdown import format_plan_markdown
from reconciler.render.text import format_plan_text

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
ROOT = GOLDEN.parent.parent
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
INPUTS = ("manifest.yaml", "desired.json", "live.json", "not_checked.json", "kinds.json", "notes.json",
          "options.json")
OUTPUTS = ("plan.txt", "plan.json", "plan.md", "drift.txt", "drift.json", "drift.md")


class GenericPlanner(Kind):
    """The planner for kinds the goldens do not tie to a real kind module: `Kind`'s defaults,
    plus the notes of notes.json."""

    def __init__(self, name: str, replace_on: frozenset[str], notes_by_address: Mapping[str, list[Note]]) -> None:
        self.name = name  # type: ignore[misc]
        self.replace_on = replace_on  # type: ignore[misc]
        self.notes_by_address = notes_by_address

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> list[Note]:
        address = desired.address if desired is not None else live.address if live is not None else ""
        return list(self.notes_by_address.get(address, []))


def _load(case: Path, name: str, default: Any) -> Any:
    path = case / name
    return json.loads(path.read_text()) if path.exists() else default


def case_plan(name: str) -> tuple[Plan, dict[str, LiveResource], dict[str, KindPlanner]]:
    from reconciler.kinds.iam.access_key import KIND as ACCESS_KEY
    from reconciler.kinds.iam.group import KIND as GROUP
    from reconciler.kinds.iam.user import KIND as USER

    case = GOLDEN / name
    desired: list[DesiredResource] = []
    stack, region = "golden", "us-east-1"
    if (case / "manifest.yaml").exists():
        manifest, _ = load_manifest(case / "manifest.yaml")
        # what `expand` marks as bookkeeping, as the real expansion does
        desired.extend(dataclasses.replace(r, detail=bookkeeping(r, manifest)) for r in expand_iam(manifest))
        stack, region = manifest.stack, manifest.region
    for item in _load(case, "desired.json", []):
        desired.append(DesiredResource(item["address"], item["kind"], item["spec"],
                                       tuple(item.get("depends_on", ())), item.get("protect", False)))
    live = {item["address"]: LiveResource(item["address"], item["kind"], item["id"], item["attrs"],
                                          item.get("owned", True), tuple(item.get("depends_on", ())),
                                          tuple(item.get("unmanaged", ())), protect=item.get("protect", False))
            for item in _load(case, "live.json", [])}
    notes = {address: [Note(NoteKind(n["kind"]), n["text"]) for n in items]
             for address, items in _load(case, "notes.json", {}).items()}
    kinds: dict[str, KindPlanner] = {}
    for kind in sorted({d.kind for d in desired} | {r.kind for r in live.values()}):
        kinds[kind] = GenericPlanner(kind, frozenset(_load(case, "kinds.json", {}).get(kind, {}).get(
            "replace_on", [])), notes)
    kinds.update({"iam.access_key": ACCESS_KEY, "iam.group": GROUP, "iam.user": USER})
    digest = hashlib.sha256()
    for input_name in INPUTS:
        if (case / input_name).exists():
            digest.update(input_name.encode() + b"\0" + (case / input_name).read_bytes())
    plan = build_plan(stack=stack, region=region, account="123456789012", manifest_sha256=digest.hexdigest(),
                      desired=sorted(desired, key=lambda d: d.address), live=live, kinds=kinds,
                      not_checked=_load(case, "not_checked.json", {}),
                      adopt=bool(_load(case, "options.json", {}).get("adopt", False)))
    return plan, live, kinds


def render_case(name: str) -> dict[str, str]:
    plan, live, kinds = case_plan(name)
    report = build_drift(plan, kinds, live)
    return {
        "plan.txt": format_plan_text(plan),
        "plan.json": format_plan_json(plan),
        "plan.md": format_plan_markdown(plan),
        "drift.txt": format_drift_text(report),
        "drift.json": format_drift_json(report),
        "drift.md": format_drift_markdown(report),
    }


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    rendered = render_case(name)
    if os.environ.get("UPDATE_GOLDEN"):
        for output, text in rendered.items():
            (GOLDEN / name / output).write_text(text, encoding="utf-8")
    for output in OUTPUTS:
        expected = (GOLDEN / name / output).read_text(encoding="utf-8")
        assert rendered[output] == expected, f"{name}/{output} differs; UPDATE_GOLDEN=1 regenerates (review the diff)"


@pytest.mark.parametrize("name", CASES)
def test_golden_plan_files_validate_against_the_schema(name: str) -> None:
    schema = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads((GOLDEN / name / "plan.json").read_text()))


@pytest.mark.parametrize("name", CASES)
def test_golden_drift_reports_validate_against_the_schema(name: str) -> None:
    schema = json.loads((ROOT / "schemas" / "drift.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads((GOLDEN / name / "drift.json").read_text()))


def test_every_case_covers_its_outputs() -> None:
    assert CASES, "no golden cases"
    for name in CASES:
        assert (GOLDEN / name / "live.json").exists(), name


def test_the_cases_together_show_every_drift_status() -> None:
    statuses = set()
    for name in CASES:
        report = json.loads((GOLDEN / name / "drift.json").read_text())
        statuses |= {r["status"] for r in report["resources"]}
    assert statuses == {"IN_SYNC", "MODIFIED", "DELETED", "UNMANAGED", "ORPHANED", "NOT_CHECKED"}
