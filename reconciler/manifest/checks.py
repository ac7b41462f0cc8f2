"""Semantic checks run after the schema: references, uniqueness, CIDRs, policies, secrets.

None touches AWS. Policy files are read here (relative to the manifest) and
parsed as IAM JSON. Each check declares the top-level sections it reads and runs
only when the schema (and the loader) found nothing wrong in them, so it may rely
on the schema's guarantees there; the credential and policy-file checks read any
data defensively and always run. That way one run reports schema and semantic
problems together without ever tripping over malformed data.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from difflib import get_close_matches
from pathlib import Path as FsPath
from typing import Any

from jsonschema import Draft202012Validator

from reconciler.errors import Problem
from reconciler.manifest.aws_names import endpoint_service_problems, partition_problems, region_problems
from reconciler.manifest.findings import RULES
from reconciler.manifest.loader import Path, Source, json_path
from reconciler.manifest.paths import (
    PathRefused,
    describe_root,
    read_regular,
    refuse_non_regular,
    resolve_inside,
    tree_root,
)
from reconciler.manifest.schema import leaf_errors, manifest_schema
from reconciler.manifest.suggest import Suggest

# Tags that exist to be moved to the newest build; an immutable repository refuses them.
MOVING_TAGS = frozenset({"latest", "stable", "main", "master", "edge", "nightly", "dev", "prod", "current"})
GATEWAY_SERVICES = frozenset({"s3", "dynamodb"})
_ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}\b")
_SECRET_KEY = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")

MAX_POLICY_BYTES = 64 * 1024  # far above IAM's own limits (6-10 KB), far below trouble
# AWS allows 50 tags per resource; the tool itself sets Name, reconciler:stack, reconciler:address and
# reconciler:protect (which records `protect` on the resource, written "false" too).
MAX_USER_TAGS = 50 - 4

Check = Callable[[dict[str, Any], Source, FsPath, dict[str, Any]], Iterator[Problem]]


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
            elif looks_like_secret_key(text):
                message, hint = "looks like an AWS secret access key", "remove it and rotate that key"
            else:
                continue
            line, col = source.where(path, key=is_key)
            # a key is never echoed: the path names its parent, so the credential stays out of logs
            yield Problem(source.file, line, col, json_path(path[:-1] if is_key else path),
                          f"{'a key' if is_key else 'value'} {message}", f"never put credentials in a manifest; {hint}")


def _duplicates(items: list[dict[str, Any]], key: str, base: Path, source: Source, what: str,
                fold: bool = False) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        name = str(item.get(key, ""))
        probe = name.lower() if fold else name
        if probe in seen:
            yield source.problem((*base, index, key), f"duplicate {what} {name!r} (also at index {seen[probe]})",
                                 f"{what} names must be unique" + (" ignoring case" if fold else ""))
        else:
            seen[probe] = index


def _iam(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    iam = data.get("iam", {})
    groups = iam.get("groups", [])
    users = iam.get("users", [])
    yield from _duplicates(groups, "name", ("iam", "groups"), source, "IAM group", fold=True)
    yield from _duplicates(users, "name", ("iam", "users"), source, "IAM user", fold=True)
    group_names = {g["name"] for g in groups}
    suggest_group = Suggest(group_names)
    stores: dict[str, Path] = {}
    for ui, user in enumerate(users):
        for gi, group in enumerate(user.get("groups", [])):
            if group not in group_names:
                close = suggest_group(group)
                hint = f"did you mean {close[0]!r}?" if close else "declare it under iam.groups"
                yield source.problem(("iam", "users", ui, "groups", gi), f"unknown group {group!r}", hint)
        store = user.get("access_keys", {}).get("store", {})
        for kind in ("secretsmanager", "ssm"):
            if kind in store:
                where: Path = ("iam", "users", ui, "access_keys", "store", kind)
                reserved = reserved_store_name(kind, store[kind])
                if reserved:
                    yield source.problem(where, reserved, "name the store after your stack, e.g. "
                                         + ("/STACK/USER/access-key" if kind == "ssm" else "STACK/USER/access-key"))
                ident = f"{kind}:{store[kind]}"
                if ident in stores:
                    yield source.problem(where, f"store {store[kind]!r} is used by two users",
                                         "give each user its own secret or parameter")
                stores[ident] = where
        if "access_keys" in user:
            where = ("iam", "users", ui, "access_keys", "store")
            if "secretsmanager" in store and "ssm" in store:
                yield source.problem(where, "store names two destinations", "keep either secretsmanager or ssm")
            elif "secretsmanager" not in store and "ssm" not in store:
                yield source.problem(where, "store names no destination", "add `secretsmanager: NAME` or `ssm: /NAME`")


# Names the tool keeps for itself (its apply lease lives at /reconciler/locks/<stack>...), and the SSM
# hierarchies AWS reserves (/aws/ holds the public parameters). Compared case-insensitively: a store one
# letter-case away from the lease is refused too, rather than explained later.
RESERVED_SSM_PREFIXES = ("/reconciler/",)
RESERVED_SECRET_PREFIXES = ("reconciler/",)
_AWS_SSM_RESERVED = re.compile(r"^/(aws|ssm)(/|$)", re.IGNORECASE)


def reserved_store_name(kind: str, name: str) -> str | None:
    """Why `name` cannot be a key store of `kind` ("ssm" or "secretsmanager"), or None when it can."""
    folded = name.lower()
    if kind == "ssm":
        if (folded + "/").startswith(RESERVED_SSM_PREFIXES):
            return (f"store {name!r} is under /reconciler/, which is reserved for the tool's own parameters "
                    "(the apply lease /reconciler/locks/...)")
        if _AWS_SSM_RESERVED.match(name):
            return f"store {name!r}: SSM parameter names under /aws/ or /ssm/ are reserved by AWS"
    elif (folded + "/").startswith(RESERVED_SECRET_PREFIXES):
        return f"store {name!r} is under reconciler/, which is reserved for the tool's own use"
    return None


def _ecr_and_images(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    repos = data.get("ecr", {}).get("repositories", [])
    yield from _duplicates(repos, "name", ("ecr", "repositories"), source, "repository")
    by_name = {r["name"]: r for r in repos}
    for ri, repo in enumerate(repos):
        enc = repo.get("encryption", {})
        if enc.get("type") == "AES256" and "kms_key" in enc:
            yield source.problem(("ecr", "repositories", ri, "encryption", "kms_key"),
                                 "kms_key is only valid with type: KMS", "remove kms_key or set type: KMS")
    seen_tags: dict[tuple[str, str], Path] = {}
    root = tree_root(base)
    suggest_repo = Suggest(by_name)
    for ii, image in enumerate(data.get("images", [])):
        repo_name = image["repository"]
        if repo_name not in by_name:
            close = suggest_repo(repo_name)
            hint = f"did you mean {close[0]!r}?" if close else "declare it under ecr.repositories"
            yield source.problem(("images", ii, "repository"), f"unknown repository {repo_name!r}", hint)
            continue
        immutable = by_name[repo_name].get("tag_mutability", "immutable") == "immutable"
        for ti, tag in enumerate(image["tags"]):
            where: Path = ("images", ii, "tags", ti)
            if (repo_name, tag) in seen_tags:
                yield source.problem(where, f"tag {tag!r} of {repo_name} is built by two images",
                                     "each repository tag comes from one image")
            seen_tags[(repo_name, tag)] = where
            if immutable and tag in MOVING_TAGS:
                yield source.problem(where, f"tag {tag!r} must move with each build, but {repo_name} is immutable",
                                     "use a version tag such as 1.4.2, or set tag_mutability: mutable")
        yield from _image_paths(image, ii, source, base, root)


def _image_paths(image: dict[str, Any], ii: int, source: Source, base: FsPath, root: FsPath) -> Iterator[Problem]:
    """The context is a directory inside the tree; the Dockerfile and `.dockerignore` are regular files inside it.

    A Dockerfile outside its context would be read by the Docker SDK and sent to the
    daemon, whose error messages quote it: so it must lie inside the context, symlinks
    resolved, exactly like the files the build sends.
    """
    written = image["context"]
    dockerfile = image.get("dockerfile", "Dockerfile")
    dockerfile_at: Path = ("images", ii, "dockerfile" if "dockerfile" in image else "context")
    try:
        context = resolve_inside(root, base.resolve(), written, "build context", describe_root(root, base))
    except PathRefused as exc:
        yield source.problem(("images", ii, "context"), exc.message, exc.hint)
        return
    if not context.is_dir():
        yield source.problem(("images", ii, "context"), f"build context {written!r} is not a directory",
                             "the path is relative to the manifest file")
        return
    try:
        file = resolve_inside(context, context, dockerfile, "Dockerfile", f"its build context {written!r}")
    except PathRefused as exc:
        yield source.problem(dockerfile_at, exc.message, exc.hint)
        return
    if not file.exists():
        yield source.problem(dockerfile_at, f"no {dockerfile} in {written}",
                             "set `dockerfile:` to the file's path inside the context")
    else:
        try:
            refuse_non_regular(file, dockerfile, "Dockerfile")
        except PathRefused as exc:
            yield source.problem(dockerfile_at, exc.message, exc.hint)
        except OSError as exc:
            yield source.problem(dockerfile_at, f"cannot read Dockerfile {dockerfile!r}: {exc.strerror}",
                                 "the Dockerfile must be readable")
    problem = dockerignore_problem(context)
    if problem is not None:
        yield source.problem(("images", ii, "context"), f"{written}/.dockerignore {problem}",
                             "make .dockerignore a UTF-8 text file inside the context (or remove it)")


def dockerignore_problem(context: FsPath) -> str | None:
    """What is wrong with the context's `.dockerignore` (the Docker SDK reads it too), or None."""
    from reconciler.manifest.image_inputs import DockerignoreError, dockerignore_patterns

    try:
        dockerignore_patterns(context)
    except DockerignoreError as exc:
        return str(exc)
    return None


_POLICY_VALIDATOR: Draft202012Validator | None = None


def _policy_validator() -> Draft202012Validator:
    global _POLICY_VALIDATOR
    if _POLICY_VALIDATOR is None:
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


def _network(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    region = data.get("region", "")
    vpcs = data.get("network", {}).get("vpcs", [])
    yield from _duplicates(vpcs, "name", ("network", "vpcs"), source, "VPC")
    for vi, vpc in enumerate(vpcs):
        at: Path = ("network", "vpcs", vi)
        network = ipaddress.ip_network(vpc["cidr"], strict=False)
        if str(network) != vpc["cidr"]:
            yield source.problem((*at, "cidr"), f"{vpc['cidr']} has host bits set", f"did you mean {network}?")
        if not 16 <= network.prefixlen <= 28:
            yield source.problem((*at, "cidr"), f"VPC CIDR /{network.prefixlen} is outside /16../28",
                                 "AWS accepts VPC sizes from /16 to /28")
        subnets = vpc.get("subnets", [])
        yield from _duplicates(subnets, "name", (*at, "subnets"), source, "subnet")
        placed: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int]] = []
        for si, subnet in enumerate(subnets):
            sat: Path = (*at, "subnets", si)
            cidr = ipaddress.ip_network(subnet["cidr"], strict=False)
            if str(cidr) != subnet["cidr"]:
                yield source.problem((*sat, "cidr"), f"{subnet['cidr']} has host bits set", f"did you mean {cidr}?")
            if not cidr.subnet_of(network):  # type: ignore[arg-type]
                yield source.problem((*sat, "cidr"), f"{subnet['cidr']} is not inside the VPC's {vpc['cidr']}",
                                     f"pick a range inside {vpc['cidr']}")
            elif not 16 <= cidr.prefixlen <= 28:
                yield source.problem((*sat, "cidr"), f"subnet CIDR /{cidr.prefixlen} is outside /16../28",
                                     "AWS accepts subnet sizes from /16 to /28")
            placed.append((cidr, si))
            az = subnet["az"]
            if not (az.startswith(region) and len(az) == len(region) + 1):
                yield source.problem((*sat, "az"), f"{az} is not an availability zone of {region}",
                                     f"use {region}a, {region}b, ...")
            if subnet.get("map_public_ip") and not subnet.get("public"):
                yield source.problem((*sat, "map_public_ip"), "map_public_ip on a private subnet",
                                     "set public: true, or remove map_public_ip")
        cidrs = {index: cidr for cidr, index in placed}
        for later, earlier in overlapping(placed):
            subnet, other = subnets[later], cidrs[earlier]
            yield source.problem((*at, "subnets", later, "cidr"),
                                 f"{subnet['cidr']} overlaps subnet {subnets[earlier]['name']!r} ({other})",
                                 "subnets of a VPC must not overlap")
        yield from _network_routing(vpc, at, source)
        yield from _security_groups(vpc, at, source)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def overlapping(placed: list[tuple[Network, int]]) -> list[tuple[int, int]]:
    """(later index, earlier index) pairs of overlapping networks, at most one per network: sort and sweep.

    CIDR blocks either nest or are disjoint, so after sorting by (first address,
    widest first), a block overlaps an earlier one exactly when it starts before
    the farthest end seen so far: one comparison per block, O(n log n) in all,
    and at most one problem per block however many blocks it overlaps. Each pair
    is reported at the block written later in the manifest, naming the other.
    """
    ordered = sorted(placed, key=lambda p: (p[0].version, int(p[0].network_address), -int(p[0].broadcast_address),
                                            p[1]))
    pairs: list[tuple[int, int]] = []
    reach: tuple[Network, int] | None = None
    for cidr, index in ordered:
        if reach is not None and reach[0].version == cidr.version and \
                int(cidr.network_address) <= int(reach[0].broadcast_address):
            pairs.append((max(index, reach[1]), min(index, reach[1])))
            if int(cidr.broadcast_address) <= int(reach[0].broadcast_address):
                continue  # nested inside the reach: the reach stays the farthest end
        reach = (cidr, index)
    return sorted(set(pairs))


def _network_routing(vpc: dict[str, Any], at: Path, source: Source) -> Iterator[Problem]:
    subnets = vpc.get("subnets", [])
    by_name = {s["name"]: s for s in subnets}
    public = [s for s in subnets if s.get("public")]
    private = [s for s in subnets if not s.get("public")]
    igw = vpc.get("internet_gateway", bool(public))
    if public and not igw:
        yield source.problem((*at, "internet_gateway"), "public subnets need an internet gateway",
                             "set internet_gateway: true, or make the subnets private")
    nat = vpc.get("nat", {})
    mode = nat.get("mode", "none")
    if mode != "none":
        if not private:
            yield source.problem((*at, "nat"), "NAT without private subnets has nothing to serve",
                                 "add a private subnet or remove nat")
        placement = nat.get("placement", "single")
        if "subnet" in nat:
            target = by_name.get(nat["subnet"])
            if target is None:
                yield source.problem((*at, "nat", "subnet"), f"unknown subnet {nat['subnet']!r}",
                                     "name a public subnet of this VPC")
            elif not target.get("public"):
                yield source.problem((*at, "nat", "subnet"), f"subnet {nat['subnet']!r} is not public",
                                     "a NAT must sit in a public subnet (public: true)")
            if placement == "per_az":
                yield source.problem((*at, "nat", "subnet"), "subnet is only for placement: single",
                                     "remove subnet; per_az places one NAT in a public subnet of each AZ")
        elif not public:
            yield source.problem((*at, "nat"), "NAT needs a public subnet", "add a subnet with public: true")
        if placement == "per_az":
            public_azs = {s["az"] for s in public}
            for si, subnet in enumerate(subnets):
                if not subnet.get("public") and subnet["az"] not in public_azs:
                    yield source.problem((*at, "subnets", si, "az"),
                                         f"no public subnet in {subnet['az']} for its per-AZ NAT",
                                         f"add a public subnet in {subnet['az']}")
        if mode != "instance":
            for key in ("instance_type", "ami"):
                if key in nat:
                    yield source.problem((*at, "nat", key), f"{key} is only for mode: instance",
                                         "remove it or set mode: instance")
    else:
        for key in ("placement", "subnet", "instance_type", "ami"):
            if key in nat:
                yield source.problem((*at, "nat", key), f"{key} has no effect with mode: none",
                                     "set mode: gateway or instance, or remove it")
    sg_names = {g["name"] for g in vpc.get("security_groups", [])}
    seen: dict[str, int] = {}
    for ei, endpoint in enumerate(vpc.get("endpoints", [])):
        service = endpoint["service"]
        kind = endpoint.get("type", "gateway" if service in GATEWAY_SERVICES else "interface")
        if service in seen:
            yield source.problem((*at, "endpoints", ei, "service"), f"duplicate endpoint {service!r}",
                                 "one endpoint per service")
        seen[service] = ei
        if kind == "gateway":
            if service not in GATEWAY_SERVICES:
                yield source.problem((*at, "endpoints", ei, "service"), f"{service} has no gateway endpoint",
                                     "only s3 and dynamodb are gateway endpoints; use type: interface")
            for key in ("private_dns", "security_groups"):
                if key in endpoint:
                    yield source.problem((*at, "endpoints", ei, key), f"{key} applies to interface endpoints only",
                                         "remove it")
        elif not private:
            yield source.problem((*at, "endpoints", ei), "interface endpoints go in private subnets; there are none",
                                 "add a private subnet")
        for gi, group in enumerate(endpoint.get("security_groups", [])):
            if group not in sg_names:
                yield source.problem((*at, "endpoints", ei, "security_groups", gi), f"unknown security group {group!r}",
                                     "declare it under security_groups of this VPC")


def _security_groups(vpc: dict[str, Any], at: Path, source: Source) -> Iterator[Problem]:
    groups = vpc.get("security_groups", [])
    yield from _duplicates(groups, "name", (*at, "security_groups"), source, "security group")
    names = {g["name"] for g in groups}
    suggest_group = Suggest(names)
    for gi, group in enumerate(groups):
        for direction, peer_key in (("ingress", "from"), ("egress", "to")):
            for ri, rule in enumerate(group.get(direction, [])):
                rat: Path = (*at, "security_groups", gi, direction, ri)
                wrong = "to" if peer_key == "from" else "from"
                if wrong in rule:
                    yield source.problem((*rat, wrong), f"{direction} rules name their peer with `{peer_key}`",
                                         f"rename `{wrong}` to `{peer_key}`", key=True)
                peer = rule.get(peer_key)
                if peer is None:
                    yield source.problem(rat, f"missing `{peer_key}`", f"add `{peer_key}: CIDR or group name`")
                elif "/" in peer:
                    try:
                        ipaddress.ip_network(peer, strict=True)
                    except ValueError:
                        yield source.problem((*rat, peer_key), f"{peer!r} is not a valid CIDR",
                                             "write a network such as 10.0.0.0/16")
                elif re.fullmatch(r"[0-9.:]+", peer):
                    yield source.problem((*rat, peer_key), f"{peer!r} is an address, not a network",
                                         f"write it as a CIDR: {peer}/{32 if '.' in peer else 128}")
                elif peer not in names:
                    close = suggest_group(peer)
                    yield source.problem((*rat, peer_key), f"unknown security group {peer!r}",
                                         f"did you mean {close[0]!r}?" if close else
                                         "use a CIDR or the name of a security group in this VPC")
                protocol = rule["protocol"]
                ports = rule.get("ports")
                if protocol in ("tcp", "udp"):
                    if ports is None:
                        yield source.problem(rat, f"{protocol} rules need `ports`", 'add ports: "443" or "8000-8100"')
                    else:
                        low, _, high = ports.partition("-")
                        lo, hi = int(low), int(high or low)
                        if not (0 <= lo <= hi <= 65535):
                            yield source.problem((*rat, "ports"), f"port range {ports} is invalid",
                                                 "ports run from 0 to 65535, low-high")
                elif ports is not None:
                    yield source.problem((*rat, "ports"), f"protocol {protocol} takes no ports", "remove ports")


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
                                 "AWS allows 50 tags per resource and the tool sets 4 itself")


# (check, top-level sections it relies on being schema-valid)
_CHECKS: tuple[tuple[Check, tuple[str, ...]], ...] = (
    (_credentials, ()),
    (_tags, ()),
    (_waivers, ("waivers",)),
    (_iam, ("iam",)),
    (_ecr_and_images, ("ecr", "images")),
    (_policy_files, ()),
    (_network, ("network", "region")),
    (region_problems, ("region",)),
    (endpoint_service_problems, ("network",)),
    (partition_problems, ("region", "iam")),
)
