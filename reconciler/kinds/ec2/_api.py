"""EC2 reads and helpers shared by the network kinds.

Reads: ONE stack-tag-filtered, paginated Describe per resource type for the whole
stack, memoised in the Context, so nine kinds reading at once cost nine calls,
not nine per kind. Ghosts (NAT gateways and endpoints `deleting`/`deleted`/
`failed`, instances `shutting-down`/`terminated`) are dropped here, once.

Invariants:
- every read helper is complete or raises (paginators; no swallowed errors);
- `id_map` maps every stack-owned id (and a NAT instance's network interface)
  to its address, so kinds normalise references to addresses;
- writes that AWS refuses with DependencyViolation go through `until_free`,
  which retries to a deadline and then names the network interfaces in the way;
- VPC endpoint create/modify/delete go through `ENDPOINT_PACER` (AWS throttles
  those hardest).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any

from reconciler.aws import absent_none, error_code
from reconciler.errors import AwsError
from reconciler.kinds.base import Context
from reconciler.ownership import ADDRESS_TAG, PROTECT_TAG, STACK_TAG, tag_dict, tag_list
from reconciler.plan.model import Note, cost

NAT_GHOSTS = frozenset({"deleting", "deleted", "failed"})
ENDPOINT_GHOSTS = frozenset({"deleting", "deleted", "failed", "rejected", "expired"})
INSTANCE_GHOSTS = frozenset({"shutting-down", "terminated"})
# Errors that mean "still in use by something else; try again shortly".
IN_USE_CODES = frozenset({"DependencyViolation", "InvalidIPAddress.InUse", "Resource.AlreadyAssociated"})
HOURS_PER_MONTH = 730
ID_KEYS = {"vpcs": "VpcId", "subnets": "SubnetId", "internet_gateways": "InternetGatewayId",
           "addresses": "AllocationId", "nat_gateways": "NatGatewayId", "route_tables": "RouteTableId",
           "vpc_endpoints": "VpcEndpointId", "security_groups": "GroupId", "instances": "InstanceId"}
# Set by `describe` on the extra copies a retried create left behind (see `_dedupe`).
DUPLICATE_KEY = "ReconcilerDuplicateOf"


class DependencyBlocked(AwsError):
    """A delete kept failing with DependencyViolation until the deadline; names what blocks it."""


def stack_filter(ctx: Context) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{STACK_TAG}", "Values": [ctx.stack]}]


def tags_of(item: Mapping[str, Any]) -> dict[str, str]:
    return tag_dict(item.get("Tags") or item.get("TagSet"))


def address_of(item: Mapping[str, Any], fallback_id: str) -> str:
    """The address a resource carries in its tag (or was given as a duplicate by `describe`); an owned
    resource without one gets a unique stand-in."""
    return str(item.get(DUPLICATE_KEY) or tags_of(item).get(ADDRESS_TAG) or f"ec2.untagged.{fallback_id}")


def protected(tags: Mapping[str, str]) -> bool:
    return tags.get(PROTECT_TAG) == "true"


def _paginate(ctx: Context, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    paginator = ctx.client("ec2").get_paginator(operation)
    return [item for page in paginator.paginate(**kwargs) for item in page.get(key, [])]


def mine(ctx: Context, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only what carries this stack's tag. Every read passes through here: a server-side tag filter is a
    saving, never the proof of ownership (an emulator was seen to ignore it and return other stacks')."""
    return [i for i in items if tags_of(i).get(STACK_TAG) == ctx.stack]


def _describe(ctx: Context, what: str) -> list[dict[str, Any]]:
    found = _describe_raw(ctx, what)
    return found if what == "security_group_rules" else _dedupe(ctx, what, mine(ctx, found))


def _dedupe(ctx: Context, what: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two owned resources under one address: a create whose response was lost and that botocore retried
    (CreateVpc, CreateInternetGateway and AllocateAddress take no ClientToken). The one in use keeps the
    address (the VPC that holds subnets, the attached gateway, the associated address; else the lowest id);
    the others get `<address>#duplicate-<id>`, which no manifest declares, so the plan deletes them, loudly."""
    key = ID_KEYS[what]
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        groups.setdefault(address_of(item, item[key]), []).append(item)
    if all(len(group) == 1 for group in groups.values()):
        return items
    in_use: set[str] = set()
    if what == "vpcs":
        in_use = {s["VpcId"] for s in describe(ctx, "subnets")}
    elif what == "internet_gateways":
        in_use = {i[key] for i in items if i.get("Attachments")}
    elif what == "addresses":
        in_use = {i[key] for i in items if i.get("AssociationId")}
    out = []
    for address, group in groups.items():
        group.sort(key=lambda i: (i[key] not in in_use, i[key]))
        out.append(group[0])
        for extra in group[1:]:
            out.append({**extra, DUPLICATE_KEY: f"{address}#duplicate-{extra[key]}"})
    return out


def _describe_raw(ctx: Context, what: str) -> list[dict[str, Any]]:
    ec2 = ctx.client("ec2")
    filters = stack_filter(ctx)
    if what == "vpcs":
        return _paginate(ctx, "describe_vpcs", "Vpcs", Filters=filters)
    if what == "subnets":
        return _paginate(ctx, "describe_subnets", "Subnets", Filters=filters)
    if what == "internet_gateways":
        return _paginate(ctx, "describe_internet_gateways", "InternetGateways", Filters=filters)
    if what == "addresses":  # no paginator: AWS returns every address in one page
        return list(ec2.describe_addresses(Filters=filters).get("Addresses", []))
    if what == "nat_gateways":
        found = _paginate(ctx, "describe_nat_gateways", "NatGateways", Filter=filters)
        return [n for n in found if str(n.get("State", "")).lower() not in NAT_GHOSTS]
    if what == "route_tables":
        return _paginate(ctx, "describe_route_tables", "RouteTables", Filters=filters)
    if what == "vpc_endpoints":
        found = _paginate(ctx, "describe_vpc_endpoints", "VpcEndpoints", Filters=filters)
        return [e for e in found if str(e.get("State", "")).lower() not in ENDPOINT_GHOSTS]
    if what == "security_groups":
        return _paginate(ctx, "describe_security_groups", "SecurityGroups", Filters=filters)
    if what == "security_group_rules":
        ids = sorted(g["GroupId"] for g in describe(ctx, "security_groups"))
        rules: list[dict[str, Any]] = []
        for start in range(0, len(ids), 200):  # AWS takes at most 200 filter values
            rules.extend(_paginate(ctx, "describe_security_group_rules", "SecurityGroupRules",
                                   Filters=[{"Name": "group-id", "Values": ids[start:start + 200]}]))
        return rules
    if what == "instances":
        reservations = _paginate(ctx, "describe_instances", "Reservations", Filters=filters)
        return [i for r in reservations for i in r.get("Instances", [])
                if i.get("State", {}).get("Name") not in INSTANCE_GHOSTS]
    raise ValueError(what)


def describe(ctx: Context, what: str) -> list[dict[str, Any]]:
    """Every live, stack-owned resource of one EC2 type; one batched read per stack and run."""
    return ctx.memo(f"ec2:{what}", lambda: _describe(ctx, what))


def id_map(ctx: Context) -> dict[str, str]:
    """AWS id -> address for everything the stack owns (a NAT instance's ENI maps to the instance)."""

    def build() -> dict[str, str]:
        out: dict[str, str] = {}
        for what, key in (("vpcs", "VpcId"), ("subnets", "SubnetId"), ("internet_gateways", "InternetGatewayId"),
                          ("addresses", "AllocationId"), ("nat_gateways", "NatGatewayId"),
                          ("route_tables", "RouteTableId"), ("vpc_endpoints", "VpcEndpointId"),
                          ("security_groups", "GroupId"), ("instances", "InstanceId")):
            for item in describe(ctx, what):
                out[item[key]] = address_of(item, item[key])
        for instance in describe(ctx, "instances"):
            for eni in instance.get("NetworkInterfaces", []):
                out[eni["NetworkInterfaceId"]] = address_of(instance, instance["InstanceId"])
        return out

    return ctx.memo("ec2:id-map", build)


def ref(ctx: Context, ident: str | None) -> str | None:
    """An id as its address when the stack owns it, else the raw id (so foreign targets still show)."""
    if not ident:
        return None
    return id_map(ctx).get(ident, ident)


def vpc_cidr(ctx: Context, vpc_id: str | None) -> str | None:
    cidrs = ctx.memo("ec2:vpc-cidrs", lambda: {v["VpcId"]: v["CidrBlock"] for v in describe(ctx, "vpcs")})
    return cidrs.get(vpc_id or "")


def subnet_placement(ctx: Context, subnet_id: str) -> dict[str, str]:
    """`{"az", "cidr"}` of a stack subnet (the identity a reference to it carries), or {} if not ours."""
    subnets = ctx.memo("ec2:subnet-by-id", lambda: {s["SubnetId"]: s for s in describe(ctx, "subnets")})
    subnet = subnets.get(subnet_id)
    if subnet is None:
        return {}
    return {"az": subnet["AvailabilityZone"], "cidr": subnet["CidrBlock"]}


def placements(ctx: Context, subnet_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    return {str(ref(ctx, s)): subnet_placement(ctx, s) for s in subnet_ids}


def igw_of(address: str) -> str:
    """The internet gateway address of the VPC an address lives in (`vpc.main.x.y` -> `vpc.main.igw`)."""
    parts = address.split(".")
    return ".".join(parts[:2]) + ".igw" if len(parts) > 2 and parts[0] == "vpc" else ""


# -- writes -------------------------------------------------------------------


def tag_specs(resource_type: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": tag_list(tags)}]


def client_token(ctx: Context, address: str, *parts: str) -> str:
    """Deterministic per run and inputs: botocore's retries of one request reuse it, a later run does not
    (AWS would hand back the resource a token made hours ago, even a deleted one); a later run finds its
    resource by tag instead."""
    body = "|".join((ctx.stack, address, ctx.now.isoformat(), *parts))
    return hashlib.sha256(body.encode()).hexdigest()[:48]


def find_owned(ctx: Context, what: str, address: str) -> list[dict[str, Any]]:
    """A fresh look-up by stack and address tags (before a create: a crashed run may have made it)."""
    return [i for i in mine(ctx, _find(ctx, what, address)) if tags_of(i).get(ADDRESS_TAG) == address]


def _find(ctx: Context, what: str, address: str) -> list[dict[str, Any]]:
    filters = [*stack_filter(ctx), {"Name": f"tag:{ADDRESS_TAG}", "Values": [address]}]
    ec2 = ctx.client("ec2")
    if what == "addresses":
        return list(ec2.describe_addresses(Filters=filters).get("Addresses", []))
    if what == "nat_gateways":
        found = _paginate(ctx, "describe_nat_gateways", "NatGateways", Filter=filters)
        return [n for n in found if str(n.get("State", "")).lower() not in NAT_GHOSTS]
    if what == "vpc_endpoints":
        found = _paginate(ctx, "describe_vpc_endpoints", "VpcEndpoints", Filters=filters)
        return [e for e in found if str(e.get("State", "")).lower() not in ENDPOINT_GHOSTS]
    if what == "instances":
        reservations = _paginate(ctx, "describe_instances", "Reservations", Filters=filters)
        return [i for r in reservations for i in r.get("Instances", [])
                if i.get("State", {}).get("Name") not in INSTANCE_GHOSTS]
    operation, key = {
        "vpcs": ("describe_vpcs", "Vpcs"), "subnets": ("describe_subnets", "Subnets"),
        "internet_gateways": ("describe_internet_gateways", "InternetGateways"),
        "route_tables": ("describe_route_tables", "RouteTables"),
        "security_groups": ("describe_security_groups", "SecurityGroups"),
    }[what]
    return _paginate(ctx, operation, key, Filters=filters)


def converge_tags(ctx: Context, resource_id: str, desired: Mapping[str, str], live: Mapping[str, str]) -> None:
    """Set the declared tags that differ; tags someone else added are left alone."""
    changed = {k: v for k, v in desired.items() if live.get(k) != v}
    if changed:
        ctx.client("ec2").create_tags(Resources=[resource_id], Tags=tag_list(changed))



def free_stale_association(ctx: Context, allocation_id: str) -> None:
    """Drop an Elastic IP association left by a NAT gateway or instance that no longer exists.

    AWS clears it when the holder goes (after a short lag, which `until_free` absorbs); an emulator may
    keep it forever. A live holder is never touched (AWS would refuse anyway).
    """
    ec2 = ctx.client("ec2")
    found = ec2.describe_addresses(AllocationIds=[allocation_id]).get("Addresses", [])
    if not found or not found[0].get("AssociationId"):
        return
    item = found[0]
    if item.get("InstanceId"):
        reservations = absent_none(lambda: ec2.describe_instances(InstanceIds=[item["InstanceId"]]),
                                    "InvalidInstanceID.NotFound") or {}
        states = [i["State"]["Name"] for r in reservations.get("Reservations", []) for i in r.get("Instances", [])]
        if any(s not in INSTANCE_GHOSTS for s in states):
            return
    else:
        holders = _paginate(ctx, "describe_nat_gateways", "NatGateways",
                            Filter=[{"Name": "state", "Values": ["pending", "available", "deleting"]}])
        if any(a.get("AllocationId") == allocation_id for n in holders for a in n.get("NatGatewayAddresses", [])):
            return
    absent_none(lambda: ec2.disassociate_address(AssociationId=item["AssociationId"]),
                 "InvalidAssociationID.NotFound", "AuthFailure", "InvalidIPAddress.InUse")


def dependency_timeout() -> float:
    """Seconds to keep retrying a delete that AWS refuses while something still uses the resource."""
    return float(os.environ.get("RECONCILER_DEPENDENCY_TIMEOUT", "600"))


def until_free(ctx: Context, what: str, call: Callable[[], Any], blockers: Callable[[], list[str]],
               codes: frozenset[str] = IN_USE_CODES) -> Any:
    """Retry `call` while AWS says the resource is in use, up to the deadline; then name the blockers."""
    timeout = dependency_timeout()
    deadline = time.monotonic() + timeout
    delay = 1.0
    while True:
        try:
            return call()
        except Exception as exc:
            code = error_code(exc)
            if code not in codes:
                raise
            if time.monotonic() + delay > deadline:
                found = blockers()
                named = "; ".join(found) if found else "no network interface found (it may be a route or a rule)"
                raise DependencyBlocked(
                    f"{what} is still in use after {timeout:.0f}s ({code}); blocked by: {named}. "
                    "Remove those (or what owns them) and re-run apply") from None
            ctx.log(f"{what}: {code}, retrying in {delay:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 15.0)


def network_interfaces(ctx: Context, filter_name: str, value: str) -> list[str]:
    """Human descriptions of the network interfaces matching one filter (subnet-id, vpc-id, group-id)."""
    found = _paginate(ctx, "describe_network_interfaces", "NetworkInterfaces",
                      Filters=[{"Name": filter_name, "Values": [value]}])
    out = []
    for eni in sorted(found, key=lambda e: e["NetworkInterfaceId"]):
        owner = eni.get("Attachment", {}).get("InstanceId") or eni.get("RequesterId") or ""
        text = eni["NetworkInterfaceId"]
        details = [d for d in (eni.get("Description"), eni.get("InterfaceType"), owner) if d]
        out.append(f"{text} ({', '.join(details)})" if details else text)
    return out


def wait_for(what: str, probe: Callable[[], str | None], done: Callable[[str | None], bool],
             failed: Callable[[str | None], bool] = lambda _: False, timeout: float = 900.0,
             delay: float = 2.0) -> None:
    """Poll `probe` (a state) until `done`; raise if `failed` or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        state = probe()
        if done(state):
            return
        if failed(state):
            raise AwsError(f"{what} entered state {state!r}")
        if time.monotonic() > deadline:
            raise AwsError(f"{what} did not settle within {timeout:.0f}s (state {state!r})")
        time.sleep(delay)
        delay = min(delay * 1.5, 15.0)


class TokenBucket:
    """Client-side pacing: `capacity` calls at once, then `rate` per second. Thread-safe."""

    def __init__(self, capacity: float, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.capacity, self.rate = capacity, rate
        self._tokens = capacity
        self._clock, self._sleep = clock, sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1 - 1e-9:  # tolerate float rounding of the refill
                    self._tokens = max(0.0, self._tokens - 1)
                    return waited
                pause = (1 - self._tokens) / self.rate
            self._sleep(pause)
            waited += pause


# AWS throttles VPC endpoint mutations far below other EC2 calls.
ENDPOINT_PACER = TokenBucket(capacity=4, rate=0.3)


# -- prices -------------------------------------------------------------------


@functools.cache
def prices() -> dict[str, Any]:
    """The dated price table shipped with the package (`reconciler/data/prices.json`)."""
    text = resources.files("reconciler").joinpath("data/prices.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def cost_note(region: str, item: str, what: str, units: float = 1.0, action: str = "create") -> Note:
    """A COST note, `~$45/month (NAT gateway, ap-northeast-1, prices as of ...)`; item is a key of the region's
    table, or `instance:<type>`."""
    table = prices()
    regional = table["regions"].get(region, {})
    if item.startswith("instance:"):
        hourly = regional.get("instances", {}).get(item.split(":", 1)[1])
    else:
        hourly = regional.get(item)
    prefix = "saves " if action == "delete" else ""
    if hourly is None:
        return cost(f"{prefix}unknown ({what}: no {region} price in the table as of {table['as_of']})")
    monthly = float(hourly) * HOURS_PER_MONTH * units
    return cost(f"{prefix}~${monthly:,.0f}/month ({what}, {region}, prices as of {table['as_of']})")
