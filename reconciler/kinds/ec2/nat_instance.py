"""NAT instances (`nat.mode: instance`): a small EC2 instance that masquerades the VPC's traffic.

What makes an instance a NAT: source/destination check off, IP forwarding and
masquerading (user data), its own security group allowing the VPC CIDR, an
Elastic IP, and the private route tables pointing at its network interface.

The AMI may be an id or `ssm:/parameter/name` (an AWS public parameter). An SSM
AMI is resolved when the instance is created and never forces a replacement when
AWS publishes a newer image (that would cut egress on a routine apply); the plan
notes the newer image instead. An AMI id written in the manifest does force it.
A replacement is terminate-then-run (the new instance needs the Elastic IP); the
route tables that route to it are planned as updates that follow the replacement
and point their routes at the new instance's interface.

Adoption: not matched. A hand-made instance carries no identity a NAT reliably has (its subnet
holds other instances, its role is not tagged), so adopting a network with one plans it as a create.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import is_absent
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.ec2 import _ops
from reconciler.kinds.ec2._prices import cost_note
from reconciler.kinds.ec2._read import (
    address_of,
    describe,
    find_owned,
    first_interface,
    igw_of,
    ref,
    subnet_placement,
    tags_of,
    vpc_cidr,
)
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import protected
from reconciler.plan.model import Action, Change, LiveResource, Note, info

USER_DATA = """#!/bin/bash
# reconciler NAT instance: forward and masquerade everything from the VPC
set -euo pipefail
echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-reconciler-nat.conf
sysctl -p /etc/sysctl.d/90-reconciler-nat.conf
dnf install -y iptables-services || yum install -y iptables-services
iface=$(ip route show default | awk '{print $5; exit}')
iptables -t nat -A POSTROUTING -o "$iface" -j MASQUERADE
iptables -F FORWARD
service iptables save
systemctl enable --now iptables
"""


def resolve_ami(ctx: Context, ami: str) -> str:
    """An AMI id as written, or the current value of the SSM parameter it names (one read per run)."""
    if not ami.startswith("ssm:"):
        return ami
    name = ami[len("ssm:"):]
    return ctx.memo(f"ssm:{name}", lambda: str(
        ctx.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]))


def _latest(ctx: Context, ami: str) -> str | None:
    """The image an SSM AMI names today, for a note only: a missing parameter must not fail the read."""
    try:
        return resolve_ami(ctx, ami)
    except ClientError as exc:
        if is_absent(exc, "ssm", "AccessDeniedException"):
            return None
        raise


class NatInstance(Kind):
    name = "ec2.nat_instance"
    replace_on = frozenset({"vpc", "vpc_cidr", "subnet", "subnet_cidr", "az", "instance_type", "ami"})

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        wanted_ami = {d.address: str(d.spec["ami"]) for d in desired}
        eip_of = {a["InstanceId"]: a["AllocationId"] for a in describe(ctx, "addresses") if a.get("InstanceId")}
        found: dict[str, LiveResource] = {}
        for instance in describe(ctx, "instances"):
            address = address_of(instance, instance["InstanceId"])
            if ".nat_instance." not in address:
                continue
            tags = tags_of(instance)
            placement = subnet_placement(ctx, instance["SubnetId"])
            image = instance["ImageId"]
            written = wanted_ami.get(address, image)
            latest = _latest(ctx, written) if written.startswith("ssm:") else image
            subnet, vpc = ref(ctx, instance["SubnetId"]), ref(ctx, instance["VpcId"])
            eip = ref(ctx, eip_of.get(instance["InstanceId"]))
            groups = sorted(str(ref(ctx, g["GroupId"])) for g in instance.get("SecurityGroups", []))
            found[address] = LiveResource(address, self.name, instance["InstanceId"], {
                "vpc": vpc,
                "vpc_cidr": vpc_cidr(ctx, instance["VpcId"]),
                "subnet": subnet,
                "subnet_cidr": placement.get("cidr"),
                "az": placement.get("az"),
                "instance_type": instance["InstanceType"],
                # an SSM-named AMI is in sync with whatever image it resolved to at creation
                "ami": written if written.startswith("ssm:") else image,
                "image_id": image,
                "ami_latest": latest,
                "eip": eip,
                "security_groups": groups,
                "source_dest_check": bool(instance.get("SourceDestCheck", True)),
                "tags": tags,
            }, protect=protected(tags), private={"eni": first_interface(instance)},
                depends_on=tuple(sorted({str(x) for x in (subnet, eip, vpc, igw_of(address), *groups) if x})),
                outputs={"id": instance["InstanceId"], "arn": ctx.arn("ec2", f"instance/{instance['InstanceId']}"),
                         **({"public_ip": instance["PublicIpAddress"]} if instance.get("PublicIpAddress") else {}),
                         **({"private_ip": instance["PrivateIpAddress"]} if instance.get("PrivateIpAddress") else {})})
        return ReadResult(found)

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> list[Note]:
        notes: list[Note] = []
        if action in (Action.CREATE, Action.DELETE):
            source = desired.spec if desired is not None else live.attrs if live is not None else {}
            region = str(source.get("az") or "")[:-1]
            kind = str(source.get("instance_type"))
            notes.append(cost_note(region, f"instance:{kind}", f"NAT instance {kind}", action=action.value))
        if live is not None and live.attrs.get("ami_latest") not in (None, live.attrs.get("image_id")):
            notes.append(info(f"a newer AMI {live.attrs['ami_latest']} is published for {live.attrs.get('ami')}; "
                              f"this instance runs {live.attrs.get('image_id')} (replace it by hand to upgrade)"))
        return notes

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        ec2 = ctx.client("ec2")
        existing = find_owned(ctx, "instances", change.address)
        if existing:
            instance_id = str(existing[0]["InstanceId"])
        else:
            subnet_id = ctx.resolve(spec["subnet"])
            groups = [ctx.resolve(g) for g in spec["security_groups"]]
            tags = spec["tags"]
            made = ec2.run_instances(
                ImageId=resolve_ami(ctx, spec["ami"]), InstanceType=spec["instance_type"], MinCount=1, MaxCount=1,
                SubnetId=subnet_id, SecurityGroupIds=groups, UserData=USER_DATA,
                MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
                ClientToken=_ops.client_token(ctx, change.address, subnet_id),
                TagSpecifications=[*_ops.tag_specs("instance", tags), *_ops.tag_specs("volume", tags),
                                   *_ops.tag_specs("network-interface", tags)])
            instance_id = str(made["Instances"][0]["InstanceId"])
        ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=_ops.INSTANCE_WAIT)
        current = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        self._converge(ctx, instance_id, spec, {
            "source_dest_check": current.get("SourceDestCheck", True),
            "security_groups": [g["GroupId"] for g in current.get("SecurityGroups", [])],
            "eip": None, "tags": tags_of(current)}, ids=True)
        return instance_id

    def _converge(self, ctx: Context, instance_id: str, spec: Mapping[str, Any], live: Mapping[str, Any],
                  ids: bool = False) -> None:
        """Bring source/dest check, groups, Elastic IP and tags in line. `ids`: live groups are ids, not addresses."""
        ec2 = ctx.client("ec2")
        if live.get("source_dest_check") is not False:
            ec2.modify_instance_attribute(InstanceId=instance_id, SourceDestCheck={"Value": False})
        want_groups = sorted(ctx.resolve(g) for g in spec["security_groups"])
        have_groups = sorted(live.get("security_groups", []) if ids
                             else (ctx.resolve(g) if g.startswith("vpc.") else g for g in live["security_groups"]))
        if want_groups != have_groups:
            ec2.modify_instance_attribute(InstanceId=instance_id, Groups=want_groups)
        if live.get("eip") != spec["eip"]:
            allocation = ctx.resolve(spec["eip"])
            held = ec2.describe_addresses(AllocationIds=[allocation]).get("Addresses", [])
            if not held or held[0].get("InstanceId") != instance_id:

                def attempt() -> Any:
                    now = ec2.describe_addresses(AllocationIds=[allocation]).get("Addresses", [])
                    if now and now[0].get("InstanceId") == instance_id:
                        return None  # a retried associate after a lost response already did it
                    _ops.free_stale_association(ctx, allocation)
                    return ec2.associate_address(AllocationId=allocation, InstanceId=instance_id,
                                                 AllowReassociation=False)

                # the Elastic IP may still be held by a NAT gateway being deleted (a mode switch): wait for it
                _ops.until_free(ctx, f"associate {spec['eip']} with {instance_id}", attempt,
                                lambda: [f"{a.get('PublicIp')} held by {a.get('NetworkInterfaceId')}" for a in held])
        _ops.converge_tags(ctx, instance_id, spec["tags"], live.get("tags", {}))

    def update(self, ctx: Context, change: Change) -> None:
        self._converge(ctx, change.have.id, change.want.spec, change.have.attrs)

    def delete(self, ctx: Context, change: Change) -> None:
        _ops.terminate(ctx, change.have.id)


KIND = NatInstance()
