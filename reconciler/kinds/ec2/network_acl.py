"""Network ACLs: numbered ingress/egress entries and subnet associations, both inside the spec.

`entries` maps `"ingress 100"` / `"egress 100"` to `{protocol, ports?, cidr, action}`
in the form of `canonical.acl_entry`, which the manifest's expansion uses too;
`subnets` maps each associated subnet's address to its `{az, cidr}` identity
(as route tables do), so a replaced subnet shows as an association to re-make.

Never touched, on either side of the diff: AWS's own final entries (rule 32767,
the `*` deny) and the VPC's default ACL, which the stack never tags. A subnet
always has exactly one ACL in AWS, so "disassociate" means "move back to the
VPC's default ACL": that is what removing a subnet from the list, and deleting
the ACL, do.

Everything else in a stack-owned ACL is ours: an entry added by hand shows as an
extra key (UNMANAGED) and apply removes it. `converge` re-reads the one ACL it
works on, so an entry is created, replaced or deleted only from what AWS says now
(an emulator answers a delete of a missing entry with a server error).

Create is idempotent twice over: a look-up by the address tag first (a crashed run
may have made it), then a ClientToken (botocore's retries of one request).

Adoption identity (`_read.adoptable`): (VPC, the subnets associated with it); the default
ACL never.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import absent_ok, error_code
from reconciler.canonical import acl_entry, acl_entry_key
from reconciler.errors import AwsError
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.ec2._ops import client_token, converge_tags, tag_specs, until_free
from reconciler.kinds.ec2._read import (
    address_of,
    find_owned,
    live_items,
    ownership,
    placements,
    ref,
    tags_of,
    vpc_cidr,
)
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import protected
from reconciler.plan.model import Change, LiveResource

# Moving a subnet from ACL x to ACL y is two updates at once: x sends it back to the default ACL, y
# takes it; each replaces an association id that the other may have replaced a moment before (AWS:
# InvalidAssociationID.NotFound, which `absent_ok` swallowed and left the subnet on the default ACL;
# moto: a server error). One apply runs its kinds in threads of one process, so one lock makes each
# ACL's association phase a fresh read and its replacements with nothing moving in between; either
# order then ends right (y first: x no longer finds the subnet on itself).
_ASSOCIATIONS = threading.Lock()

AWS_DEFAULT_RULE = 32767  # the `*` entry AWS puts last in every ACL; never ours
PROTOCOL_NUMBERS = {"all": "-1", "tcp": "6", "udp": "17", "icmp": "1"}
# AWS requires a type and code for ICMP, and for ICMPv6 (58) with an IPv6 CIDR (refused without one,
# which moto does not check); with an IPv4 CIDR it ignores them for 58, so both always get "every one"
ICMP_PROTOCOLS = frozenset({"icmp", "58"})


def entries_of(acl: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The ACL's entries by key, in canonical form; AWS's own final entries left out."""
    out = {}
    for entry in acl.get("Entries", []):
        if int(entry["RuleNumber"]) >= AWS_DEFAULT_RULE:
            continue
        ports = entry.get("PortRange") or {}
        out[acl_entry_key("egress" if entry.get("Egress") else "ingress", int(entry["RuleNumber"]))] = acl_entry(
            str(entry["Protocol"]), ports.get("From"), ports.get("To"),
            str(entry.get("CidrBlock") or entry.get("Ipv6CidrBlock") or ""), str(entry["RuleAction"]))
    return dict(sorted(out.items()))


def associations_of(acl: Mapping[str, Any]) -> dict[str, str]:
    """subnet id -> association id."""
    return {a["SubnetId"]: a["NetworkAclAssociationId"] for a in acl.get("Associations", []) if a.get("SubnetId")}


def _entry_params(key: str, entry: Mapping[str, str]) -> dict[str, Any]:
    """The CreateNetworkAclEntry / ReplaceNetworkAclEntry arguments of one canonical entry."""
    direction, _, rule = key.partition(" ")
    protocol = entry["protocol"]
    params: dict[str, Any] = {"RuleNumber": int(rule), "Egress": direction == "egress",
                              "Protocol": PROTOCOL_NUMBERS.get(protocol, protocol), "RuleAction": entry["action"]}
    params["Ipv6CidrBlock" if ":" in entry["cidr"] else "CidrBlock"] = entry["cidr"]
    if "ports" in entry:
        low, _, high = entry["ports"].partition("-")
        params["PortRange"] = {"From": int(low), "To": int(high or low)}
    if protocol in ICMP_PROTOCOLS:  # every ICMP type and code: the manifest does not narrow ICMP
        params["IcmpTypeCode"] = {"Type": -1, "Code": -1}
    return params


def _fresh(ctx: Context, acl_id: str) -> dict[str, Any] | None:
    """The ACL as AWS holds it now, or None when it is gone."""
    with absent_ok("ec2"):
        found = ctx.client("ec2").describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"]
        return dict(found[0]) if found else None
    return None


def default_acl(ctx: Context, vpc_id: str) -> str:
    """The id of the VPC's default ACL (AWS makes it with the VPC; it is never ours)."""
    found = ctx.client("ec2").describe_network_acls(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default", "Values": ["true"]}])["NetworkAcls"]
    if not found:
        raise AwsError(f"{vpc_id} has no default network ACL (AWS makes one with every VPC); re-run apply")
    return str(found[0]["NetworkAclId"])


def move_subnet(ctx: Context, subnet_id: str, acl_id: str) -> None:
    """Associate a subnet with `acl_id`, replacing whichever association it has (a subnet always has one)."""
    ec2 = ctx.client("ec2")
    current = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
    for acl in current["NetworkAcls"]:
        association = associations_of(acl).get(subnet_id)
        if association is None:
            continue
        if acl["NetworkAclId"] == acl_id:
            return  # a retry after a lost response already did it
        with absent_ok("ec2"):  # the subnet went meanwhile: nothing to associate
            ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl_id)
        return
    # never a silent success: the next plan would show the association missing with nothing said now
    raise AwsError(f"subnet {subnet_id} has no network ACL association to replace (AWS gives every subnet one); "
                   "re-run apply")


def converge(ctx: Context, acl_id: str, spec: Mapping[str, Any]) -> None:
    """Make one ACL's entries and associations exactly the spec's, from a fresh read of it."""
    ec2 = ctx.client("ec2")
    acl = _fresh(ctx, acl_id)
    if acl is None:
        raise AwsError(f"network ACL {acl_id} is gone (deleted meanwhile); re-run apply to re-create it")
    have = entries_of(acl)
    want: Mapping[str, Mapping[str, str]] = spec["entries"]
    for key in sorted(want):
        if key not in have:
            try:
                ec2.create_network_acl_entry(NetworkAclId=acl_id, **_entry_params(key, want[key]))
            except ClientError as exc:  # a retried create after a lost response: make sure it says what we want
                if error_code(exc) != "NetworkAclEntryAlreadyExists":
                    raise
                ec2.replace_network_acl_entry(NetworkAclId=acl_id, **_entry_params(key, want[key]))
        elif have[key] != want[key]:
            ec2.replace_network_acl_entry(NetworkAclId=acl_id, **_entry_params(key, want[key]))
    for key in sorted(set(have) - set(want)):
        direction, _, rule = key.partition(" ")
        with absent_ok("ec2"):
            ec2.delete_network_acl_entry(NetworkAclId=acl_id, RuleNumber=int(rule), Egress=direction == "egress")
    wanted = {ctx.resolve(address) for address in spec["subnets"]}
    with _ASSOCIATIONS:
        now = _fresh(ctx, acl_id)
        if now is None:
            raise AwsError(f"network ACL {acl_id} is gone (deleted meanwhile); re-run apply to re-create it")
        associated = associations_of(now)
        for subnet_id in sorted(wanted - set(associated)):
            move_subnet(ctx, subnet_id, acl_id)
        leaving = sorted(set(associated) - wanted)
        if leaving:
            fallback = default_acl(ctx, str(acl["VpcId"]))
            for subnet_id in leaving:
                with absent_ok("ec2"):
                    ec2.replace_network_acl_association(AssociationId=associated[subnet_id], NetworkAclId=fallback)


def delete_acl(ctx: Context, acl_id: str, address: str) -> None:
    """Move its subnets back to the VPC's default ACL, then delete it; absent is fine."""
    ec2 = ctx.client("ec2")
    with _ASSOCIATIONS:  # another ACL's update may be taking one of these subnets right now
        acl = _fresh(ctx, acl_id)
        if acl is None:
            return
        associated = associations_of(acl)
        if associated:
            fallback = default_acl(ctx, str(acl["VpcId"]))
            for subnet_id in sorted(associated):
                with absent_ok("ec2"):
                    ec2.replace_network_acl_association(AssociationId=associated[subnet_id], NetworkAclId=fallback)

    def blockers() -> list[str]:
        left = _fresh(ctx, acl_id) or {}
        return [f"association {a} ({s})" for s, a in sorted(associations_of(left).items())]

    def attempt() -> None:
        with absent_ok("ec2"):
            ec2.delete_network_acl(NetworkAclId=acl_id)

    until_free(ctx, f"{address} ({acl_id})", attempt, blockers)


class NetworkAcl(Kind):
    name = "ec2.network_acl"
    replace_on = frozenset({"vpc", "vpc_cidr"})

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        found: dict[str, LiveResource] = {}
        for acl in live_items(ctx, "network_acls"):
            if acl.get("IsDefault"):
                continue  # never ours, even if someone tagged it with the stack
            address = address_of(acl, acl["NetworkAclId"])
            tags = tags_of(acl)
            subnets = placements(ctx, sorted(associations_of(acl)))
            vpc = ref(ctx, acl["VpcId"])
            found[address] = LiveResource(address, self.name, acl["NetworkAclId"], {
                "vpc": vpc,
                "vpc_cidr": vpc_cidr(ctx, acl["VpcId"]),
                "entries": entries_of(acl),
                "subnets": dict(sorted(subnets.items())),
                "tags": tags,
            }, protect=protected(tags), **ownership(ctx, acl), depends_on=tuple(sorted({str(vpc), *subnets})),
                outputs={"id": acl["NetworkAclId"], "arn": ctx.arn("ec2", f"network-acl/{acl['NetworkAclId']}")})
        return ReadResult(found)

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        existing = find_owned(ctx, "network_acls", change.address)
        if existing:
            acl_id = str(existing[0]["NetworkAclId"])
            converge_tags(ctx, acl_id, spec["tags"], tags_of(existing[0]))
        else:
            vpc_id = ctx.resolve(spec["vpc"])
            acl_id = str(ctx.client("ec2").create_network_acl(
                VpcId=vpc_id, ClientToken=client_token(ctx, change.address, vpc_id),
                TagSpecifications=tag_specs("network-acl", spec["tags"]))["NetworkAcl"]["NetworkAclId"])
        converge(ctx, acl_id, spec)
        return acl_id

    def update(self, ctx: Context, change: Change) -> None:
        converge(ctx, change.have.id, change.want.spec)
        converge_tags(ctx, change.have.id, change.want.spec["tags"], change.have.attrs.get("tags", {}))

    def delete(self, ctx: Context, change: Change) -> None:
        delete_acl(ctx, change.have.id, change.address)


KIND = NetworkAcl()
