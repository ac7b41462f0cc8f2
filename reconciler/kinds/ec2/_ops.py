"""The EC2 write floor: the mutating primitives the network kinds share.

Why a floor and not the kinds themselves: a kind never imports a sibling kind, yet
a route table routes to a NAT instance's interface and the same delete-when-free,
detach and wait loops serve every type. What more than one kind (or the kind and
its tests) needs to change the account lives here; each kind keeps only its own
create/update/delete logic.

Invariants:
- deletes are idempotent: "already gone" (`aws.NOT_FOUND["ec2"]`) is success;
- writes that AWS refuses while something still uses the resource go through
  `until_free`, which retries to a deadline and then names what is in the way
  (`DependencyBlocked`);
- every delete returns only once the resource is gone (waited for), so what it
  freed (an Elastic IP, a subnet) can be used or deleted next;
- the writes whose documented EC2 bucket one apply can reach (VPC endpoint and NAT gateway
  creates and deletes) first take a token of it (`_pacing.pace`).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import NOT_FOUND, absent_none, error_code
from reconciler.errors import AwsError, DependencyBlocked
from reconciler.kinds.base import Context
from reconciler.kinds.ec2 import _read
from reconciler.kinds.ec2._pacing import pace
from reconciler.ownership import tag_list

# Errors that mean "still in use by something else; try again shortly".
IN_USE_CODES = frozenset({"DependencyViolation", "InvalidIPAddress.InUse", "Resource.AlreadyAssociated"})
NAT_WAIT = {"Delay": 5, "MaxAttempts": 180}
INSTANCE_WAIT = {"Delay": 5, "MaxAttempts": 120}


def tag_specs(resource_type: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": tag_list(tags)}]


def client_token(ctx: Context, address: str, *parts: str) -> str:
    """Deterministic per run and inputs: botocore's retries of one request reuse it, a later run does not
    (AWS would hand back the resource a token made hours ago, even a deleted one); a later run finds its
    resource by tag instead."""
    body = "|".join((ctx.stack, address, ctx.now.isoformat(), *parts))
    return hashlib.sha256(body.encode()).hexdigest()[:48]


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
        if any(s not in _read.INSTANCE_GHOSTS for s in _read.instance_states(ctx, item["InstanceId"])):
            return
    else:
        holders = _read.paginate(ctx, "describe_nat_gateways", "NatGateways",
                                 Filter=[{"Name": "state", "Values": ["pending", "available", "deleting"]}])
        if any(a.get("AllocationId") == allocation_id for n in holders for a in n.get("NatGatewayAddresses", [])):
            return
    absent_none(lambda: ec2.disassociate_address(AssociationId=item["AssociationId"]),
                "ec2", "AuthFailure", "InvalidIPAddress.InUse")


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
        except ClientError as exc:
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
            raise AwsError(f"{what} entered state {state!r}; check it in the EC2 console, then re-run apply")
        if time.monotonic() > deadline:
            raise AwsError(f"{what} did not settle within {timeout:.0f}s (state {state!r}); re-run apply, which waits "
                           "for it again")
        time.sleep(delay)
        delay = min(delay * 1.5, 15.0)


# -- deletes, each waited until gone ---------------------------------------------


def delete_subnet(ctx: Context, subnet_id: str, address: str) -> None:
    ec2 = ctx.client("ec2")
    until_free(ctx, f"{address} ({subnet_id})",
               lambda: absent_none(lambda: ec2.delete_subnet(SubnetId=subnet_id), "ec2"),
               lambda: _read.network_interfaces(ctx, "subnet-id", subnet_id))


def delete_nat_gateway(ctx: Context, nat_id: str) -> None:
    """Delete and wait until gone; a gateway already gone is fine."""
    if _read.nat_gateway_state(ctx, nat_id) in (None, "deleted"):
        return
    ec2 = ctx.client("ec2")
    pace(ctx, "DeleteNatGateway")
    absent_none(lambda: ec2.delete_nat_gateway(NatGatewayId=nat_id), "ec2")
    ec2.get_waiter("nat_gateway_deleted").wait(NatGatewayIds=[nat_id], WaiterConfig=NAT_WAIT)


def primary_interface(ctx: Context, instance_id: str) -> str:
    """The network interface routes point at (AWS routes to an interface, not an instance)."""
    reservations = ctx.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    eni = _read.first_interface(reservations[0]["Instances"][0])
    if eni is None:
        raise AwsError(f"instance {instance_id} has no network interface yet; re-run apply")
    return eni


def terminate(ctx: Context, instance_id: str) -> None:
    """Terminate and wait until terminated; an instance AWS no longer knows is fine."""
    ec2 = ctx.client("ec2")
    if absent_none(lambda: ec2.terminate_instances(InstanceIds=[instance_id]), "ec2") is None:
        return
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=INSTANCE_WAIT)


def delete_endpoint(ctx: Context, endpoint_id: str, address: str) -> None:
    """Delete (paced) and wait until it is gone."""
    if _read.endpoint_state(ctx, endpoint_id) in (None, "deleted"):
        return
    pace(ctx, "DeleteVpcEndpoints")
    result = ctx.client("ec2").delete_vpc_endpoints(VpcEndpointIds=[endpoint_id])
    for failure in result.get("Unsuccessful", []):
        code = failure.get("Error", {}).get("Code", "")
        if code not in NOT_FOUND["ec2"]:
            raise AwsError(f"{address} ({endpoint_id}): delete failed: {code}: "
                           f"{failure.get('Error', {}).get('Message', '')}; fix what it names, then re-run apply")
    wait_for(f"{address} ({endpoint_id}) deletion", lambda: _read.endpoint_state(ctx, endpoint_id),
             done=lambda s: s in (None, "deleted"))


def _public_interfaces(ctx: Context, vpc_id: str) -> list[str]:
    enis = ctx.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NetworkInterfaces"]
    return [f"{e['NetworkInterfaceId']} (public IP {e['Association']['PublicIp']})"
            for e in sorted(enis, key=lambda e: e["NetworkInterfaceId"]) if e.get("Association", {}).get("PublicIp")]


def detach_and_delete(ctx: Context, gateway_id: str, vpc_ids: Sequence[str], address: str) -> None:
    """Detach an internet gateway from each VPC (AWS refuses while public addresses are mapped), then delete."""
    ec2 = ctx.client("ec2")
    for vpc_id in vpc_ids:
        until_free(ctx, f"{address} ({gateway_id}) detach from {vpc_id}",
                   lambda v=vpc_id: absent_none(  # type: ignore[misc]
                       lambda: ec2.detach_internet_gateway(InternetGatewayId=gateway_id, VpcId=v), "ec2"),
                   lambda v=vpc_id: _public_interfaces(ctx, v))  # type: ignore[misc]
    until_free(ctx, f"{address} ({gateway_id})",
               lambda: absent_none(lambda: ec2.delete_internet_gateway(InternetGatewayId=gateway_id), "ec2"),
               lambda: [])


def delete_route_table(ctx: Context, table_id: str, address: str) -> None:
    """Disassociate every subnet, then delete."""
    ec2 = ctx.client("ec2")
    found = absent_none(lambda: ec2.describe_route_tables(RouteTableIds=[table_id]), "ec2")
    if found is None:
        return
    for assoc in found["RouteTables"][0].get("Associations", []):
        if not assoc.get("Main") and assoc.get("RouteTableAssociationId"):
            absent_none(lambda a=assoc: ec2.disassociate_route_table(  # type: ignore[misc]
                AssociationId=a["RouteTableAssociationId"]), "ec2")

    def blockers() -> list[str]:
        left = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"]
        return [f"association {a.get('RouteTableAssociationId')} ({a.get('SubnetId') or a.get('GatewayId')})"
                for t in left for a in t.get("Associations", [])]

    until_free(ctx, f"{address} ({table_id})",
               lambda: absent_none(lambda: ec2.delete_route_table(RouteTableId=table_id), "ec2"),
               blockers)


def delete_group(ctx: Context, group_id: str, address: str) -> None:
    """Revoke other stack groups' rules naming this one (none can be wanted), then delete when free."""
    ec2 = ctx.client("ec2")
    groups = _read.mine(ctx, ec2.describe_security_groups(Filters=_read.stack_filter(ctx))["SecurityGroups"])
    others = sorted(g["GroupId"] for g in groups if g["GroupId"] != group_id)
    if others:
        rules = _read.paginate(ctx, "describe_security_group_rules", "SecurityGroupRules",
                               Filters=[{"Name": "group-id", "Values": others}])
        for rule in rules:
            if (rule.get("ReferencedGroupInfo") or {}).get("GroupId") == group_id:
                direction = "egress" if rule.get("IsEgress") else "ingress"
                absent_none(lambda r=rule, d=direction: getattr(  # type: ignore[misc]
                    ec2, f"revoke_security_group_{d}")(GroupId=r["GroupId"], SecurityGroupRuleIds=[
                        r["SecurityGroupRuleId"]]), "ec2")
    until_free(ctx, f"{address} ({group_id})",
               lambda: absent_none(lambda: ec2.delete_security_group(GroupId=group_id), "ec2"),
               lambda: _read.network_interfaces(ctx, "group-id", group_id))
