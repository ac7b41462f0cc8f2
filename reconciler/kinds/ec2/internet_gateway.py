"""Internet gateways and their attachment (the spec's `vpc`).

Teardown is detach then delete. AWS refuses the detach while the VPC still maps
public addresses (NAT gateways, instances with Elastic IPs): the live gateway is
a dependency of those, so the engine deletes them first, and `until_free`
retries whatever is left (someone else's instance) up to the deadline.

Adoption identity (`_read.adoptable`): the one gateway attached to the adopted VPC.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.aws import absent_none
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.ec2 import _ops
from reconciler.kinds.ec2._read import address_of, find_owned, live_items, ownership, ref, tags_of, vpc_cidr
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import protected
from reconciler.plan.model import Change, LiveResource


def _attached(gateway: dict[str, object]) -> list[str]:
    attachments = gateway.get("Attachments") or []
    assert isinstance(attachments, list)
    return [a["VpcId"] for a in attachments if a.get("State") in ("available", "attached", "attaching")]


class InternetGateway(Kind):
    name = "ec2.internet_gateway"
    replace_on = frozenset({"vpc", "vpc_cidr"})

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        found: dict[str, LiveResource] = {}
        for gateway in live_items(ctx, "internet_gateways"):
            address = address_of(gateway, gateway["InternetGatewayId"])
            tags = tags_of(gateway)
            vpcs = _attached(gateway)
            vpc = ref(ctx, vpcs[0]) if len(vpcs) == 1 else sorted(str(ref(ctx, v)) for v in vpcs) or None
            found[address] = LiveResource(address, self.name, gateway["InternetGatewayId"], {
                "vpc": vpc,
                "vpc_cidr": vpc_cidr(ctx, vpcs[0]) if vpcs else None,
                "tags": tags,
            }, protect=protected(tags), **ownership(ctx, gateway), private={"attached_vpc_ids": vpcs},
                depends_on=tuple(sorted(str(ref(ctx, v)) for v in vpcs)),
                outputs={"id": gateway["InternetGatewayId"],
                         "arn": ctx.arn("ec2", f"internet-gateway/{gateway['InternetGatewayId']}")})
        return ReadResult(found)

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        ec2 = ctx.client("ec2")
        existing = find_owned(ctx, "internet_gateways", change.address)
        if existing:
            gateway_id = str(existing[0]["InternetGatewayId"])
            self._attach(ctx, gateway_id, ctx.resolve(spec["vpc"]), _attached(existing[0]))
            _ops.converge_tags(ctx, gateway_id, spec["tags"], tags_of(existing[0]))
            return gateway_id
        gateway_id = str(ec2.create_internet_gateway(
            TagSpecifications=_ops.tag_specs("internet-gateway", spec["tags"]))["InternetGateway"]["InternetGatewayId"])
        self._attach(ctx, gateway_id, ctx.resolve(spec["vpc"]), [])
        return gateway_id

    def _attach(self, ctx: Context, gateway_id: str, vpc_id: str, attached: Sequence[str]) -> None:
        ec2 = ctx.client("ec2")
        for other in attached:
            if other != vpc_id:
                absent_none(lambda o=other: ec2.detach_internet_gateway(  # type: ignore[misc]
                    InternetGatewayId=gateway_id, VpcId=o), "ec2")
        if vpc_id not in attached:
            absent_none(lambda: ec2.attach_internet_gateway(InternetGatewayId=gateway_id, VpcId=vpc_id),
                              "Resource.AlreadyAssociated")

    def update(self, ctx: Context, change: Change) -> None:
        self._attach(ctx, change.have.id, ctx.resolve(change.want.spec["vpc"]),
                     change.have.private.get("attached_vpc_ids", []))
        _ops.converge_tags(ctx, change.have.id, change.want.spec["tags"], change.have.attrs.get("tags", {}))

    def delete(self, ctx: Context, change: Change) -> None:
        _ops.detach_and_delete(ctx, change.have.id, change.have.private.get("attached_vpc_ids", []), change.address)


KIND = InternetGateway()
