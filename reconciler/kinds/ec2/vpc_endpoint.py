"""VPC endpoints: gateway (S3, DynamoDB: on route tables) and interface (ENIs in subnets, private DNS,
security groups); policies compare by meaning. Interface endpoints show their monthly cost per AZ.

Every create, modify and delete first takes a token of that action's documented
EC2 bucket (`_pacing.pace`: CreateVpcEndpoint and DeleteVpcEndpoints have AWS's
smallest, 4 tokens refilled at 0.3 a second). Creation and deletion wait until the endpoint is
`available` / gone. An interface endpoint is replaced when a subnet it sits in is
replaced (the subnet's `{az, cidr}` changed under the same address); adding or
removing a subnet is an in-place update.

Adoption identity (`_read.adoptable`): (VPC, service name, type).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.canonical import canonical_policy
from reconciler.errors import AwsError
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.ec2 import _ops
from reconciler.kinds.ec2._pacing import pace
from reconciler.kinds.ec2._prices import cost_note
from reconciler.kinds.ec2._read import (
    ENDPOINT_GHOSTS,
    address_of,
    describe_endpoint,
    endpoint_state,
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
from reconciler.plan.model import Action, AttrChange, Change, LiveResource, Note


def _policy(text: Any) -> Any:
    """An endpoint's policy as data; a text that is not JSON is a failed read, never a diff."""
    if isinstance(text, str) and text:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise AwsError("a VPC endpoint's PolicyDocument is not JSON; cannot compare it with the manifest, "
                           "nothing was planned; fix the policy in AWS (or delete it), then re-run") from None
    return text or None


def wait_available(ctx: Context, endpoint_id: str, address: str) -> None:
    _ops.wait_for(f"{address} ({endpoint_id})", lambda: endpoint_state(ctx, endpoint_id),
                  done=lambda s: s == "available", failed=lambda s: s in ENDPOINT_GHOSTS or s is None)


def _region(spec: Mapping[str, Any]) -> str:
    parts = str(spec.get("service", "")).split(".")
    if len(parts) > 3 and parts[0] == "com":
        return parts[2]
    azs = [p.get("az", "") for p in spec.get("subnets", {}).values()]
    return str(azs[0])[:-1] if azs else ""


def _outputs(ctx: Context, endpoint: Mapping[str, Any]) -> dict[str, str]:
    """What `reconcile output` shows: the ids, and an interface endpoint's first DNS name (the one to configure)."""
    out = {"id": endpoint["VpcEndpointId"], "arn": ctx.arn("ec2", f"vpc-endpoint/{endpoint['VpcEndpointId']}"),
           "service": endpoint.get("ServiceName", "")}
    dns = [entry.get("DnsName") for entry in endpoint.get("DnsEntries", []) if entry.get("DnsName")]
    if dns:
        out["dns_name"] = str(dns[0])
    return out


class VpcEndpoint(Kind):
    name = "ec2.vpc_endpoint"
    replace_on = frozenset({"vpc", "vpc_cidr", "service", "type"})

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        found: dict[str, LiveResource] = {}
        for endpoint in live_items(ctx, "vpc_endpoints"):
            address = address_of(endpoint, endpoint["VpcEndpointId"])
            tags = tags_of(endpoint)
            kind = endpoint.get("VpcEndpointType") or ("Interface" if endpoint.get("SubnetIds") else "Gateway")
            vpc = ref(ctx, endpoint["VpcId"])
            attrs: dict[str, Any] = {
                "vpc": vpc,
                "vpc_cidr": vpc_cidr(ctx, endpoint["VpcId"]),
                "service": endpoint["ServiceName"],
                "type": kind,
                "policy": _policy(endpoint.get("PolicyDocument")),
                "tags": tags,
            }
            if kind == "Gateway":
                attrs["route_tables"] = sorted(str(ref(ctx, r)) for r in endpoint.get("RouteTableIds", []))
            else:
                attrs["subnets"] = dict(sorted(placements(ctx, endpoint.get("SubnetIds", [])).items()))
                attrs["security_groups"] = sorted(str(ref(ctx, g["GroupId"])) for g in endpoint.get("Groups", []))
                attrs["private_dns"] = bool(endpoint.get("PrivateDnsEnabled", False))
            deps = {str(vpc), *attrs.get("route_tables", []), *attrs.get("subnets", {}),
                    *attrs.get("security_groups", [])}
            found[address] = LiveResource(address, self.name, endpoint["VpcEndpointId"], attrs, protect=protected(tags),
                                          **ownership(ctx, endpoint),
                                          depends_on=tuple(sorted(d for d in deps if d.startswith("vpc."))),
                                          outputs=_outputs(ctx, endpoint))
        return ReadResult(found)

    def diff(self, desired: DesiredResource, live: LiveResource) -> list[AttrChange]:
        # a subnet replaced under the same address: the endpoint's interface there must go with it
        out = []
        have = live.attrs.get("subnets") or {}
        for change in super().diff(desired, live):
            subnet = change.path[len("subnets."):].rsplit(".", 1)[0] if change.path.startswith("subnets.") else ""
            if subnet in have and subnet in desired.spec.get("subnets", {}):
                change = AttrChange(change.path, change.before, change.after, forces_replacement=True)
            out.append(change)
        return out

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> list[Note]:
        source = desired.spec if desired is not None else live.attrs if live is not None else {}
        if action not in (Action.CREATE, Action.DELETE) or source.get("type") != "Interface":
            return []
        azs = len(source.get("subnets", {})) or 1
        return [cost_note(_region(source), "interface_endpoint_az",
                               f"interface endpoint in {azs} AZ{'s' if azs > 1 else ''}; data processing extra",
                               units=azs, action=action.value)]

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        existing = find_owned(ctx, "vpc_endpoints", change.address)
        if existing:
            endpoint_id = str(existing[0]["VpcEndpointId"])
            wait_available(ctx, endpoint_id, change.address)
            self._converge(ctx, endpoint_id, spec, change.address)
            return endpoint_id
        vpc_id = ctx.resolve(spec["vpc"])
        request: dict[str, Any] = {
            "VpcEndpointType": spec["type"], "VpcId": vpc_id, "ServiceName": spec["service"],
            "ClientToken": _ops.client_token(ctx, change.address, vpc_id),
            "TagSpecifications": _ops.tag_specs("vpc-endpoint", spec["tags"]),
        }
        if spec["type"] == "Gateway":
            request["RouteTableIds"] = sorted(ctx.resolve(r) for r in spec["route_tables"])
        else:
            request["SubnetIds"] = sorted(ctx.resolve(s) for s in spec["subnets"])
            request["SecurityGroupIds"] = sorted(ctx.resolve(g) for g in spec["security_groups"])
            request["PrivateDnsEnabled"] = bool(spec["private_dns"])
        if "policy" in spec:
            request["PolicyDocument"] = json.dumps(spec["policy"])
        pace(ctx, "CreateVpcEndpoint")
        endpoint_id = str(ctx.client("ec2").create_vpc_endpoint(**request)["VpcEndpoint"]["VpcEndpointId"])
        wait_available(ctx, endpoint_id, change.address)
        return endpoint_id

    def _converge(self, ctx: Context, endpoint_id: str, spec: Mapping[str, Any], address: str) -> None:
        """One (paced) modify with everything that differs, computed on AWS ids from a fresh read."""
        current = describe_endpoint(ctx, endpoint_id)
        if current is None:
            raise AwsError(f"{address} ({endpoint_id}) disappeared; re-run apply to re-create it")
        request: dict[str, Any] = {}
        pairs = [("route_tables", "RouteTableIds", [r for r in current.get("RouteTableIds", [])]),
                 ("subnets", "SubnetIds", list(current.get("SubnetIds", []))),
                 ("security_groups", "SecurityGroupIds", [g["GroupId"] for g in current.get("Groups", [])])]
        for key, param, have_list in pairs:
            if key not in spec:
                continue
            want, have = {ctx.resolve(a) for a in spec[key]}, set(have_list)
            if want - have:
                request[f"Add{param}"] = sorted(want - have)
            if have - want:
                request[f"Remove{param}"] = sorted(have - want)
        if "private_dns" in spec and bool(current.get("PrivateDnsEnabled")) != spec["private_dns"]:
            request["PrivateDnsEnabled"] = bool(spec["private_dns"])
        if "policy" in spec:
            have_policy = _policy(current.get("PolicyDocument"))
            if not isinstance(have_policy, dict) or canonical_policy(have_policy) != canonical_policy(spec["policy"]):
                request["PolicyDocument"] = json.dumps(spec["policy"])
        if request:
            pace(ctx, "ModifyVpcEndpoint")
            ctx.client("ec2").modify_vpc_endpoint(VpcEndpointId=endpoint_id, **request)
        _ops.converge_tags(ctx, endpoint_id, spec["tags"], tags_of(current))

    def update(self, ctx: Context, change: Change) -> None:
        self._converge(ctx, change.have.id, change.want.spec, change.address)

    def delete(self, ctx: Context, change: Change) -> None:
        _ops.delete_endpoint(ctx, change.have.id, change.address)


KIND = VpcEndpoint()
