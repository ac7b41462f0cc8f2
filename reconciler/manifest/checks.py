"""Semantic checks run after the schema: references, uniqueness, CIDRs, policies, secrets.

Each section checks its own part (`Section.checks`); this module holds the rules
that cut across sections (credentials anywhere, tags, waivers, policy files, the
region, and the names checked against AWS's data) and runs them all.

None touches AWS. Policy files are read here (relative to the manifest) and
parsed as IAM JSON. Each check declares the top-level sections it reads and runs
only when the schema (and the loader) found nothing wrong in them, so it may rely
on the schema's guarantees there; the credential and policy-file checks read any
data defensively and always run. That way one run reports schema and semantic
problems together without ever tripping over malformed data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from difflib import get_close_matches
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from reconciler.errors import Problem
from reconciler.manifest.aws_names import (
    ROLE_ARN,
    endpoint_service_problems,
    partition_problems,
    region_partitions,
    region_problems,
)
from reconciler.manifest.findings import RULES
from reconciler.manifest.loader import Path, Source, json_path
from reconciler.manifest.paths import PathRefused, describe_root, read_regular, resolve_inside, tree_root
from reconciler.manifest.schema import leaf_errors, manifest_schema
from reconciler.manifest.section import Check
from reconciler.manifest.sections import SECTIONS

_ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}\b")
_SECRET_KEY = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")

MAX_POLICY_BYTES = 64 * 1024  # far above IAM's own limits (6-10 KB), far below trouble
# AWS allows 50 tags per resource; the tool itself sets Name, reconciler:stack, reconciler:address,
# reconciler:kind and reconciler:protect (which records `protect` on the resource, written "false" too).
MAX_USER_TAGS = 50 - 5


def semantic_problems(data: dict[str, Any], source: Source, base_dir: FsPath,
                      policies: dict[str, Any], dirty: frozenset[str] | set[str] = frozenset()) -> list[Problem]:
    """Run every semantic check whose sections are not `dirty`; `policies` is filled with parsed policy files."""
    problems: list[Problem] = []
    for check, sections in _CHECKS:
        if not dirty.intersection(sections):
            problems.extend(check(data, source, base_dir, policies))
    return problems


def _walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) under `value`, parents before children, in document order; iterative (no recursion)."""
    stack: list[tuple[Path, Any]] = [(path, value)]
    while stack:
        here, node = stack.pop()
        yield here, node
        if isinstance(node, dict):
            stack.extend(((*here, key), child) for key, child in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*here, index), node[index]) for index in range(len(node) - 1, -1, -1))


def looks_like_secret_key(text: str) -> bool:
    """A 40-character base64 run with mixed case and digits, as AWS secret keys are."""
    for match in _SECRET_KEY.finditer(text):
        token = match.group(0)
        if re.search(r"[a-z]", token) and re.search(r"[A-Z]", token) and re.search(r"[0-9]", token):
            return True
    return False


def _credentials(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    for path, value in _walk(data):
        # keys too: `tags: {AKIA...: x}` leaks as surely as a value does
        for text, is_key in ((path[-1] if path else None, True), (value, False)):
            if not isinstance(text, str):
                continue
            if _ACCESS_KEY_ID.search(text):
                message, hint = "looks like an AWS access key id", "access keys are created and stored by the tool"
            elif looks_like_secret_key(text) and path != _EXTERNAL_ID:  # often a random 40 characters
                message, hint = "looks like an AWS secret access key", "remove it and rotate that key"
            else:
                continue
            line, col = source.where(path, key=is_key)
            # a key is never echoed: the path names its parent, so the credential stays out of logs
            yield Problem(source.file, line, col, json_path(path[:-1] if is_key else path),
                          f"{'a key' if is_key else 'value'} {message}", f"never put credentials in a manifest; {hint}")


_EXTERNAL_ID = ("assume_role", "external_id")
_EXTERNAL_ID_TEXT = re.compile(r"[A-Za-z0-9+=,.@:/_-]{2,1224}")


def _assume_role(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    """`assume_role:`: one of role_name / role_arn, the ARN in `account:` and the region's partition.

    The external id is never echoed, not even when it is malformed (the schema leaves its value
    to this check for that reason): messages name its position only.
    """
    role = data.get("assume_role")
    if not isinstance(role, dict):
        return
    account = data.get("account")
    if "role_name" in role and "role_arn" in role:
        yield source.problem(("assume_role", "role_arn"), "give role_name or role_arn, not both",
                             "keep role_name (the ARN is built from `account:`) or role_arn, and remove the other")
    elif "role_name" not in role and "role_arn" not in role:
        yield source.problem(("assume_role",), "assume_role needs the role: role_name or role_arn",
                             "add `role_name: NAME` (with `account:`), or `role_arn: arn:aws:iam::ACCOUNT:role/NAME`")
    elif "role_name" in role and account is None:
        yield source.problem(("assume_role", "role_name"), "role_name needs `account:` to build the role's ARN",
                             'add `account: "123456789012"` (the account the role is in), or give role_arn')
    found = ROLE_ARN.match(role["role_arn"]) if isinstance(role.get("role_arn"), str) else None
    if found and isinstance(account, str) and found["account"] != account:
        yield source.problem(("assume_role", "role_arn"),
                             f"{role['role_arn']} is a role of account {found['account']}, but `account:` is "
                             f"{account}", f"use arn:{found['partition']}:iam::{account}:role/{found['rest']}, "
                             "or fix `account:`")
    region = data.get("region")
    partition = region_partitions().get(region) if isinstance(region, str) else None
    if found and partition is not None and found["partition"] != partition:
        yield source.problem(("assume_role", "role_arn"),
                             f"{role['role_arn']} is in partition {found['partition']}, but {region} is in "
                             f"{partition}", f"use arn:{partition}:{role['role_arn'].split(':', 2)[2]}")
    if "external_id" in role:
        value = role["external_id"]
        if not isinstance(value, str):
            yield source.problem(_EXTERNAL_ID, "external_id must be text (its value is not shown)",
                                 "quote it")
        elif not _EXTERNAL_ID_TEXT.fullmatch(value):
            yield source.problem(_EXTERNAL_ID, f"external_id is {len(value)} characters (its value is not shown); "
                                 "AWS takes 2 to 1224 of letters, digits and +=,.@:/_-",
                                 "use the external id the role's trust policy names")


if TYPE_CHECKING:  # imported where a policy file is checked: most manifests have none
    from jsonschema import Draft202012Validator

_POLICY_VALIDATOR: Draft202012Validator | None = None


def _policy_validator() -> Draft202012Validator:
    global _POLICY_VALIDATOR
    if _POLICY_VALIDATOR is None:
        from jsonschema import Draft202012Validator

        schema = manifest_schema()
        _POLICY_VALIDATOR = Draft202012Validator({"$ref": "#/$defs/policy_document", "$defs": schema["$defs"]})
    return _POLICY_VALIDATOR


def _policy_files(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    """Read and check each `{file: path}` policy; no message echoes anything read from the file."""
    root = tree_root(base)
    for path, value in _walk(data):
        if not (isinstance(value, dict) and set(value) == {"file"} and isinstance(value["file"], str)):
            continue
        if not (len(path) >= 2 and path[-2] == "inline_policies") and not (path and path[-1] == "policy"):
            continue
        rel = str(value["file"])
        where = (*path, "file")
        try:
            file = resolve_inside(root, base.resolve(), rel, "policy file", describe_root(root, base))
            raw, _ = read_regular(file, rel, "policy file", MAX_POLICY_BYTES)
        except PathRefused as exc:
            yield source.problem(where, exc.message, exc.hint)
            continue
        except OSError as exc:
            yield source.problem(where, f"cannot read policy file {rel!r}: {exc.strerror or type(exc).__name__}",
                                 "the path is relative to the manifest file")
            continue
        if len(raw) > MAX_POLICY_BYTES:
            yield source.problem(where, f"policy file {rel!r} is over {MAX_POLICY_BYTES} bytes",
                                 "IAM policies are at most a few kilobytes")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield source.problem(where, f"policy file {rel!r} is not UTF-8 text", "save it as UTF-8 JSON")
            continue
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            # position and the parser's own words (never the text around it)
            yield source.problem(where, f"{rel}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}",
                                 "policy files are IAM JSON documents")
            continue
        except RecursionError:
            yield source.problem(where, f"{rel}: invalid JSON: nested too deeply",
                                 "policy files are IAM JSON documents")
            continue
        problem = policy_grammar_problem(document)
        if problem is not None:
            at, message = problem
            yield source.problem(where, f"{rel}: not a valid IAM policy at {at}: {message}",
                                 "see the IAM policy grammar: Version, Statement[Effect, Action, Resource]")
            continue
        pol[rel] = document


# The words of the IAM policy grammar: a path through a policy file shows these, and masks every other key.
_GRAMMAR_WORDS = frozenset({"Version", "Id", "Statement", "Sid", "Effect", "Action", "NotAction", "Resource",
                            "NotResource", "Principal", "NotPrincipal", "Condition", "AWS", "Service", "Federated",
                            "CanonicalUser"})
_GRAMMAR_PROBLEMS = {
    "additionalProperties": "unknown key", "required": "a required key is missing", "type": "wrong type",
    "enum": "value not allowed", "const": "value not allowed", "pattern": "value not allowed",
    "minItems": "empty list", "minLength": "empty text", "propertyNames": "key not allowed",
}


def _masked_path(path: Path) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if part in _GRAMMAR_WORDS else "[(a key)]"
    return out


def policy_grammar_problem(document: Any) -> tuple[str, str] | None:
    """(masked `$.path`, what is wrong) for the first way `document` breaks the IAM grammar, or None.

    A policy file may be the only copy of something its author did not mean to
    show: the answer names grammar words, indices and the kind of problem, never
    a key or value of the file (other keys show as `(a key)`).
    """
    try:
        errors = list(_policy_validator().iter_errors(document))
    except RecursionError:
        return "$", "nested too deeply"
    if not errors:
        return None
    found: list[tuple[str, str]] = []
    for error in errors:
        for leaf in leaf_errors(error):
            path: Path = tuple(leaf.absolute_path)
            what = _GRAMMAR_PROBLEMS.get(str(leaf.validator), "not allowed by the grammar")
            if leaf.validator == "additionalProperties" and isinstance(leaf.instance, dict):
                known = sorted(leaf.schema.get("properties", {})) if isinstance(leaf.schema, dict) else []
                keys = list(leaf.instance)
                first = next((i for i, k in enumerate(keys) if k not in known), 0)
                # which key, by position: its name is content of the file
                what = f"unknown key (key {first + 1} of {len(keys)})"
                what += f"; allowed keys: {', '.join(known)}" if known else ""
            elif leaf.validator == "required" and isinstance(leaf.instance, dict):
                missing = [k for k in leaf.validator_value if k not in leaf.instance]
                what = f"missing required key {missing[0]!r}" if missing else what
            elif leaf.validator in ("enum", "const"):
                allowed = leaf.validator_value if leaf.validator == "enum" else [leaf.validator_value]
                what += ": use one of " + ", ".join(json.dumps(a) for a in allowed)
            elif leaf.validator == "type":
                what = f"wrong type: {leaf.validator_value} expected"
            found.append((_masked_path(path), what))
    return sorted(found)[0]


def _waivers(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    for rule_id in data.get("waivers", {}):
        if rule_id not in RULES:
            close = get_close_matches(rule_id, sorted(RULES), n=1)
            yield source.problem(("waivers", rule_id), f"unknown rule {rule_id!r}",
                                 f"did you mean {close[0]!r}?" if close else "rule ids: " + ", ".join(sorted(RULES)),
                                 key=True)


def _tags(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    """`Name` comes from the resource name; the manifest's tags plus a resource's must fit AWS's limit."""
    common = data.get("tags")
    common = common if isinstance(common, dict) else {}
    for path, value in _walk(data):
        if not (path and path[-1] == "tags" and isinstance(value, dict)):
            continue
        if "Name" in value:
            yield source.problem((*path, "Name"), "the Name tag is set by the tool from the resource name",
                                 "remove it; rename the resource instead", key=True)
        total = len(set(common) | set(value)) if path != ("tags",) else len(common)
        if total > MAX_USER_TAGS:
            yield source.problem(path, f"{total} tags with the manifest's own; at most {MAX_USER_TAGS} fit",
                                 "AWS allows 50 tags per resource and the tool sets 5 itself")


# (check, top-level sections it relies on being schema-valid): the cross-section rules, then every section's own
_CHECKS: tuple[tuple[Check, tuple[str, ...]], ...] = (
    (_credentials, ()),
    (_tags, ()),
    (_waivers, ("waivers",)),
    (_assume_role, ("assume_role", "account")),
    (_policy_files, ()),
    # names checked against AWS's own data (aws_names.py), each gated on exactly what it reads: the endpoint
    # services need no valid region, so they are not in the network section (whose AZ check needs one)
    (region_problems, ("region",)),
    (partition_problems, ("region", "iam")),
    (endpoint_service_problems, ("network",)),
    *((section.checks, section.reads) for section in SECTIONS),
)
