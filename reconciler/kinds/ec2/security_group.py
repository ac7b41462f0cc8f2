"""Security groups: ingress and egress rules as sets (dicts keyed by the canonical rule text), peers by
CIDR, prefix list or another group's address, rule descriptions.

Rules are read with DescribeSecurityGroupRules (one call for every stack group)
and revoked by rule id, which is exact where matching IpPermissions is not.
A group's name, description and VPC cannot change in AWS: they force replacement.

Deletion first revokes the rules of other stack groups that reference this one
(such a rule cannot be wanted: a desired reference would keep this group desired),
then retries DependencyViolation (network interfaces still using the group) to
the deadline, naming them.

The plan flags rules that open ingress to the whole internet.

Adoption identity (`_read.adoptable`): (VPC, group name); the `default` group never (a
manifest cannot declare it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import absent_none, error_code
from reconciler.canonical import parse_rule_key, rule_key
from reconciler.errors import AwsError
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.ec2 import _ops
from reconciler.kinds.ec2._read import (
    address_of,
    find_owned,
    live_items,
    ownership,
    paginate,
    ref,
    security_group_rules,
    tags_of,
    vpc_cidr,
)
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import protected
from reconciler.plan.model import Action, Change, LiveResource, Note, security

PROTOCOLS = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp"}
INTERNET = ("0.0.0.0/0", "::/0")


def _protocol(value: str) -> str:
    return PROTOCOLS.get(value, value)


def live_rule_key(ctx: Context, rule: Mapping[str, Any]) -> tuple[str, str]:
    """(direction, key) of one DescribeSecurityGroupRules item."""
    direction = "egress" if rule.get("IsEgress") else "ingress"
    protocol = _protocol(str(rule["IpProtocol"]))
    low, high = rule.get("FromPort"), rule.get("ToPort")
    if protocol == "all":
        low = high = None
    group = (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
    peer = rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("PrefixListId") or ref(ctx, group) or "?"
    return direction, rule_key(direction, protocol, low, high, str(peer))


def _rules_by_group(ctx: Context, rules: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """group id -> direction -> key -> {"id", "description"}."""
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: {"ingress": {}, "egress": {}})
    for rule in rules:
        direction, key = live_rule_key(ctx, rule)
        out[rule["GroupId"]][direction][key] = {"id": rule["SecurityGroupRuleId"],
                                                "description": rule.get("Description", "") or ""}
    return out


def _fresh_rules(ctx: Context, group_id: str) -> dict[str, dict[str, Any]]:
    rules = paginate(ctx, "describe_security_group_rules", "SecurityGroupRules",
                     Filters=[{"Name": "group-id", "Values": [group_id]}])
    return _rules_by_group(ctx, rules).get(group_id, {"ingress": {}, "egress": {}})


def _peer(ctx: Context, peer: str, self_address: str, group_id: str) -> dict[str, str] | None:
    """The peer part of a rule in AWS terms; None when the peer group does not exist yet (a broken cycle)."""
    if "/" in peer:
        return {"CidrIpv6": peer} if ":" in peer else {"CidrIpv4": peer}
    if peer.startswith("pl-"):
        return {"PrefixListId": peer}
    if peer == self_address:
        return {"ReferencedGroupId": group_id}
    if peer.startswith("sg-"):
        return {"ReferencedGroupId": peer}
    try:
        return {"ReferencedGroupId": ctx.resolve(peer)}
    except KeyError:
        return None


def _permission(key: str, description: str, peer: Mapping[str, str]) -> dict[str, Any]:
    """An IpPermissions entry for authorize_*."""
    protocol, low, high, _ = parse_rule_key(key)
    out: dict[str, Any] = {"IpProtocol": "-1" if protocol == "all" else protocol}
    if low is not None:
        out.update(FromPort=low, ToPort=high)
    entry: dict[str, str] = {}
    if description:
        entry["Description"] = description
    if "CidrIpv4" in peer:
        out["IpRanges"] = [{"CidrIp": peer["CidrIpv4"], **entry}]
    elif "CidrIpv6" in peer:
        out["Ipv6Ranges"] = [{"CidrIpv6": peer["CidrIpv6"], **entry}]
    elif "PrefixListId" in peer:
        out["PrefixListIds"] = [{"PrefixListId": peer["PrefixListId"], **entry}]
    else:
        out["UserIdGroupPairs"] = [{"GroupId": peer["ReferencedGroupId"], **entry}]
    return out


def _rule_body(key: str, description: str, peer: Mapping[str, str]) -> dict[str, Any]:
    """A SecurityGroupRule request body for modify_security_group_rules."""
    protocol, low, high, _ = parse_rule_key(key)
    body: dict[str, Any] = {"IpProtocol": "-1" if protocol == "all" else protocol, **peer, "Description": description}
    body.update(FromPort=-1 if low is None else low, ToPort=-1 if high is None else high)
    return body


def _authorize(ec2: Any, direction: str, group_id: str, grant: list[dict[str, Any]]) -> None:
    """One call for all; if AWS says one already exists (a retry after a lost response did it), AWS has
    refused the whole batch, so grant them one by one, skipping the ones that exist."""
    call = getattr(ec2, f"authorize_security_group_{direction}")
    try:
        call(GroupId=group_id, IpPermissions=grant)
    except ClientError as exc:
        if error_code(exc) != "InvalidPermission.Duplicate":
            raise
        for permission in grant:
            absent_none(lambda p=permission: call(GroupId=group_id, IpPermissions=[p]),  # type: ignore[misc]
                              "InvalidPermission.Duplicate")


def converge_rules(ctx: Context, group_id: str, spec: Mapping[str, Any], address: str) -> None:
    """Make the group's rules exactly the spec's, reading the group's rules fresh."""
    ec2 = ctx.client("ec2")
    current = _fresh_rules(ctx, group_id)
    for direction in ("ingress", "egress"):
        want = {k: str(v.get("description", "")) for k, v in spec[direction].items()}
        have = current[direction]
        revoke = [have[k]["id"] for k in sorted(set(have) - set(want))]
        if revoke:  # NotFound: a retry after a lost response already did it
            absent_none(lambda d=direction, r=revoke: getattr(ec2, f"revoke_security_group_{d}")(  # type: ignore[misc]
                GroupId=group_id, SecurityGroupRuleIds=r), "ec2")
        grant = []
        for key in sorted(set(want) - set(have)):
            peer = _peer(ctx, parse_rule_key(key)[3], address, group_id)
            if peer is None:
                ctx.log(f"{address}: {key}: the peer group does not exist yet; the next apply adds this rule")
                continue
            grant.append(_permission(key, want[key], peer))
        if grant:
            _authorize(ec2, direction, group_id, grant)
        described = []
        for key in sorted(set(want) & set(have)):
            if want[key] != have[key]["description"]:
                peer = _peer(ctx, parse_rule_key(key)[3], address, group_id)
                if peer is not None:
                    described.append({"SecurityGroupRuleId": have[key]["id"],
                                      "SecurityGroupRule": _rule_body(key, want[key], peer)})
        if described:
            ec2.modify_security_group_rules(GroupId=group_id, SecurityGroupRules=described)


class SecurityGroup(Kind):
    name = "ec2.security_group"
    replace_on = frozenset({"vpc", "vpc_cidr", "group_name", "description"})

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        rules = _rules_by_group(ctx, security_group_rules(ctx))
        found: dict[str, LiveResource] = {}
        for group in live_items(ctx, "security_groups"):
            address = address_of(group, group["GroupId"])
            tags = tags_of(group)
            mine = rules.get(group["GroupId"], {"ingress": {}, "egress": {}})
            vpc = ref(ctx, group.get("VpcId"))
            found[address] = LiveResource(address, self.name, group["GroupId"], {
                "vpc": vpc,
                "vpc_cidr": vpc_cidr(ctx, group.get("VpcId")),
                "group_name": group["GroupName"],
                "description": group.get("Description", ""),
                "ingress": {k: {"description": v["description"]} for k, v in sorted(mine["ingress"].items())},
                "egress": {k: {"description": v["description"]} for k, v in sorted(mine["egress"].items())},
                "tags": tags,
            }, protect=protected(tags), **ownership(ctx, group), depends_on=(str(vpc),) if vpc else (),
                outputs={"id": group["GroupId"], "name": group["GroupName"],
                         "arn": group.get("SecurityGroupArn") or ctx.arn("ec2", f"security-group/{group['GroupId']}")})
        return ReadResult(found)

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> list[Note]:
        if desired is None or action is Action.DELETE:
            return []
        existing = live is not None and action in (Action.UPDATE, Action.ADOPT)
        before = set(live.attrs.get("ingress", {})) if live is not None and existing else set()
        notes: list[Note] = []
        for key in sorted(set(desired.spec.get("ingress", {})) - before):
            protocol, _, _, peer = parse_rule_key(key)
            if peer in INTERNET:
                ports = "all ports" if protocol == "all" else key.rsplit(" from ", 1)[0]
                notes.append(security(f"opens {ports} to the internet ({peer})"))
        return notes

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        existing = find_owned(ctx, "security_groups", change.address)
        if existing:
            group_id = str(existing[0]["GroupId"])
            _ops.converge_tags(ctx, group_id, spec["tags"], tags_of(existing[0]))
        else:
            try:
                group_id = str(ctx.client("ec2").create_security_group(
                    GroupName=spec["group_name"], Description=spec["description"], VpcId=ctx.resolve(spec["vpc"]),
                    TagSpecifications=_ops.tag_specs("security-group", spec["tags"]))["GroupId"])
            except ClientError as exc:
                if error_code(exc) != "InvalidGroup.Duplicate":
                    raise
                retried = find_owned(ctx, "security_groups", change.address)
                if not retried:
                    raise AwsError(
                        f"{change.address}: a security group named {spec['group_name']!r} already exists in "
                        f"{spec['vpc']} without this stack's tags; rename one of them") from None
                group_id = str(retried[0]["GroupId"])  # our own create, retried after a lost response
        converge_rules(ctx, group_id, spec, change.address)
        return group_id

    def update(self, ctx: Context, change: Change) -> None:
        converge_rules(ctx, change.have.id, change.want.spec, change.address)
        _ops.converge_tags(ctx, change.have.id, change.want.spec["tags"], change.have.attrs.get("tags", {}))

    def delete(self, ctx: Context, change: Change) -> None:
        _ops.delete_group(ctx, change.have.id, change.address)


KIND = SecurityGroup()
