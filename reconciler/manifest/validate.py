"""`load_manifest`: file -> validated `Manifest`, or one ManifestError with every problem."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

from reconciler.errors import ManifestError, Problem
from reconciler.manifest.checks import semantic_problems
from reconciler.manifest.findings import Finding, Waiver, parse_waivers, security_findings
from reconciler.manifest.loader import MAX_BYTES, MAX_PROBLEMS, load_yaml
from reconciler.manifest.model import Manifest
from reconciler.manifest.paths import PathRefused, read_regular
from reconciler.manifest.schema import check_schema


def load_manifest(path: str | FsPath) -> tuple[Manifest, list[Finding]]:
    """Load, schema-check and semantically check a manifest; no AWS call.

    Returns the manifest and its security findings (waived or warnings). Raises
    ManifestError listing every problem, including unwaived high findings.
    """
    fs_path = FsPath(path)
    shown = str(path)
    try:
        # a regular file only, read with a bound: `/dev/stdin`, a FIFO or `/dev/zero` would block or never end,
        # and a manifest's relative paths need a directory to resolve against anyway
        raw, size = read_regular(fs_path, shown, "the manifest", MAX_BYTES)
    except PathRefused as exc:
        raise ManifestError([Problem(shown, 1, 1, "$", exc.message,
                                     "pass the manifest as a regular file; its paths resolve against its "
                                     "directory")]) from None
    except OSError as exc:
        raise ManifestError([Problem(shown, 1, 1, "$", f"cannot read the manifest: {exc.strerror}",
                                     "check the path")]) from None
    data, source, problems = load_yaml(raw, shown, size=size)
    if data is None:
        raise ManifestError(problems)
    schema_errors, broken = check_schema(data, source)
    problems.extend(schema_errors)
    # a section with a schema or loader problem is left out of the checks that rely on its shape
    dirty = {str(path[0]) for path in (*broken, *source.damaged) if path}
    if () in broken:
        dirty.update(str(key) for key in data)
    policies: dict[str, Any] = {}
    problems.extend(semantic_problems(data, source, fs_path.parent, policies, dirty))
    findings = security_findings(data, source, policies, dirty)
    digest = hashlib.sha256(raw)
    for name in sorted(policies):
        digest.update(name.encode() + b"\0" + json.dumps(policies[name], sort_keys=True).encode())
    manifest = Manifest(fs_path, data, source, digest.hexdigest(), policies)
    waivers = parse_waivers(data)
    if not problems and any(w.addresses is not None for w in waivers.values()):
        # expansion needs a manifest that passed every check; an unwaived finding does not stop it, so
        # a misspelt waiver address is reported with the finding it failed to waive
        problems.extend(_waiver_address_problems(manifest, waivers))
    for finding in findings:
        if finding.rule.severity == "high" and not finding.waived:
            hint = f'fix it, or waive it: `waivers: {{{finding.rule.id}: "reason"}}`'
            if finding.rule.id in waivers and finding.address:
                hint = f"fix it, or add {finding.address} to the addresses of the waiver of {finding.rule.id}"
            problems.append(Problem(shown, finding.line, finding.col, finding.path,
                                    f"{finding.rule.id} {finding.detail} ({finding.rule.reference})", hint))
    if problems:
        raise ManifestError(_capped(problems))
    return manifest, findings


def _waiver_address_problems(manifest: Manifest, waivers: Mapping[str, Waiver]) -> list[Problem]:
    """A waiver address that names no resource of the manifest (a typo would waive nothing, silently)."""
    from difflib import get_close_matches
    from fnmatch import fnmatchcase

    from reconciler.manifest.expand import expand

    known = [r.address for r in expand(manifest)]
    problems = []
    for rule, waiver in sorted(waivers.items()):
        for index, pattern in enumerate(waiver.addresses or ()):
            if any(fnmatchcase(address, pattern) for address in known):
                continue
            close = get_close_matches(pattern, known, n=3)
            problems.append(manifest.source.problem(
                ("waivers", rule, "addresses", index), f"waiver {rule}: {pattern} names no resource of the manifest",
                f"did you mean {', '.join(close)}?" if close else "`reconcile validate -v` lists the addresses"))
    return problems


def _capped(problems: list[Problem]) -> list[Problem]:
    """The first MAX_PROBLEMS by position, and a line saying how many more there are."""
    if len(problems) <= MAX_PROBLEMS + 1:
        return problems
    ordered = sorted(problems, key=lambda p: (p.line, p.col, p.path, p.message))
    last = ordered[MAX_PROBLEMS - 1]
    more = Problem(last.file, last.line, last.col, "$", f"... and {len(problems) - MAX_PROBLEMS} more problems",
                   "fix the ones above first")
    return [*ordered[:MAX_PROBLEMS], more]
