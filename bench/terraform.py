"""The Terraform configuration (`main.tf.json`) equivalent to a manifest's desired resources.

Used by `make bench COMPARE=terraform`: both tools build the same account on the same moto
server behind the same latency proxy. Each `DesiredResource` kind maps to the AWS provider's
resources (TRANSLATION says which, and where the mapping is not 1:1); the configuration carries
the same names, CIDRs, tags and settings, so that after each tool's apply the account holds the
same things. Invariants: `configuration` is pure (no I/O, no AWS call); every reference between
resources is a Terraform reference (so Terraform orders its graph itself, as apply does ours);
a kind without a translation raises `Untranslated`, never passes silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.canonical import parse_rule_key
from reconciler.manifest.model import DesiredResource

# the kind -> what it becomes in Terraform, for the summary (only the bench's kinds are translated)
TRANSLATION: Mapping[str, str] = {
    "iam.group": "aws_iam_group + one aws_iam_group_policy per inline policy (not 1:1)",
    "iam.user": "aws_iam_user + aws_iam_user_group_membership (not 1:1: membership is a resource)",
    "iam.access_key": "aws_iam_access_key + its store: aws_ssm_parameter (SecureString), or "
                      "aws_secretsmanager_secret + aws_secretsmanager_secret_version (not 1:1; "
                      "rotation after 90 days has no Terraform equivalent)",
    "ecr.repository": "aws_ecr_repository + aws_ecr_lifecycle_policy (not 1:1)",
    "ec2.vpc": "aws_vpc",
    "ec2.subnet": "aws_subnet",
    "ec2.internet_gateway": "aws_internet_gateway",
    "ec2.elastic_ip": "aws_eip",
    "ec2.nat_gateway": "aws_nat_gateway",
    "ec2.route_table": "aws_route_table (routes inline) + one aws_route_table_association per subnet (not 1:1)",
    "ec2.vpc_endpoint": "aws_vpc_endpoint",
    "ec2.security_group": "aws_security_group (rules inline)",
}
# the services the generated configuration calls: every one is pointed at the proxy
SERVICES = ("ec2", "ecr", "iam", "secretsmanager", "ssm", "sts", "resourcegroupstaggingapi")


class Untranslated(Exception):
    """A desired resource of a kind this module has no Terraform translation for."""


def tf_name(address: str) -> str:
    """A Terraform resource name for an address (letters, digits, `_` and `-`; never starts with a digit)."""
    return "r_" + re.sub(r"[^A-Za-z0-9_-]", "_", address)


def provider(endpoint: str, region: str) -> dict[str, Any]:
    """The AWS provider pointed at `endpoint` for every service, with fake keys and no account lookups."""
    return {"aws": {
        "region": region, "access_key": "testing", "secret_key": "testing",
        "skip_credentials_validation": True, "skip_requesting_account_id": True,
        "skip_metadata_api_check": True, "skip_region_validation": True, "s3_use_path_style": True,
        "endpoints": [{service: endpoint for service in SERVICES}],
    }}


def configuration(desired: Sequence[DesiredResource], endpoint: str, region: str) -> dict[str, Any]:
    """The whole `main.tf.json`: the provider and one or more resources per desired resource."""
    resources: dict[str, dict[str, Any]] = {}
    by_address = {r.address: r for r in desired}

    def add(rtype: str, name: str, body: dict[str, Any]) -> None:
        resources.setdefault(rtype, {})[name] = body

    def ref(address: str, rtype: str, attr: str = "id") -> str:
        return f"${{{rtype}.{tf_name(address)}.{attr}}}"

    groups = {r.spec["name"]: r.address for r in desired if r.kind == "iam.group"}
    users = {r.spec["name"]: r.address for r in desired if r.kind == "iam.user"}
    for r in desired:
        spec, name = r.spec, tf_name(r.address)
        tags = dict(spec.get("tags") or {})
        if r.kind == "iam.group":
            add("aws_iam_group", name, {"name": spec["name"], "path": spec["path"]})
            for policy, document in sorted(spec["inline_policies"].items()):
                add("aws_iam_group_policy", f"{name}_{policy}", {
                    "name": policy, "group": ref(r.address, "aws_iam_group", "name"),
                    "policy": _json(document)})
        elif r.kind == "iam.user":
            add("aws_iam_user", name, {"name": spec["name"], "path": spec["path"], "tags": tags})
            if spec["groups"]:
                add("aws_iam_user_group_membership", name, {
                    "user": ref(r.address, "aws_iam_user", "name"),
                    "groups": [ref(groups[g], "aws_iam_group", "name") for g in spec["groups"]]})
        elif r.kind == "iam.access_key":
            user = ref(users[spec["user"]], "aws_iam_user", "name")
            for n in range(int(spec["count"])):
                key = f"{name}_{n}"
                add("aws_iam_access_key", key, {"user": user})
                value = (f'${{jsonencode({{AccessKeyId = aws_iam_access_key.{key}.id, '
                         f'SecretAccessKey = aws_iam_access_key.{key}.secret}})}}')
                store = dict(spec["store"])
                if "ssm" in store:
                    add("aws_ssm_parameter", key, {"name": store["ssm"], "type": "SecureString", "value": value,
                                                   "tags": tags})
                else:
                    add("aws_secretsmanager_secret", key, {"name": store["secretsmanager"],
                                                           "recovery_window_in_days": 0, "tags": tags})
                    add("aws_secretsmanager_secret_version", key, {
                        "secret_id": f"${{aws_secretsmanager_secret.{key}.id}}", "secret_string": value})
        elif r.kind == "ecr.repository":
            add("aws_ecr_repository", name, {
                "name": spec["name"], "image_tag_mutability": str(spec["tag_mutability"]).upper(),
                "force_delete": bool(spec["force_delete"]),
                "image_scanning_configuration": [{"scan_on_push": bool(spec["scan_on_push"])}],
                "encryption_configuration": [{"encryption_type": spec["encryption"]["type"]}], "tags": tags})
            if spec.get("lifecycle_rules"):
                add("aws_ecr_lifecycle_policy", name, {
                    "repository": ref(r.address, "aws_ecr_repository", "name"),
                    "policy": _json({"rules": spec["lifecycle_rules"]})})
        elif r.kind == "ec2.vpc":
            add("aws_vpc", name, {"cidr_block": spec["cidr"], "enable_dns_support": spec["dns"]["support"],
                                  "enable_dns_hostnames": spec["dns"]["hostnames"], "tags": tags})
        elif r.kind == "ec2.subnet":
            body = {"vpc_id": ref(spec["vpc"], "aws_vpc"), "cidr_block": spec["cidr"],
                    "availability_zone": spec["az"], "tags": tags}
            if "map_public_ip" in spec:
                body["map_public_ip_on_launch"] = bool(spec["map_public_ip"])
            add("aws_subnet", name, body)
        elif r.kind == "ec2.internet_gateway":
            add("aws_internet_gateway", name, {"vpc_id": ref(spec["vpc"], "aws_vpc"), "tags": tags})
        elif r.kind == "ec2.elastic_ip":
            # no network_border_group: moto does not return it, so the provider would replace the EIP on every
            # plan; it is the region itself here, which AWS defaults to
            add("aws_eip", name, {"domain": "vpc",
                                  "tags": tags, "depends_on": _depends(r, by_address)})
        elif r.kind == "ec2.nat_gateway":
            add("aws_nat_gateway", name, {
                "allocation_id": ref(spec["eip"], "aws_eip"), "subnet_id": ref(spec["subnet"], "aws_subnet"),
                "tags": tags, "depends_on": _depends(r, by_address, ("ec2.internet_gateway",))})
        elif r.kind == "ec2.route_table":
            add("aws_route_table", name, {"vpc_id": ref(spec["vpc"], "aws_vpc"), "tags": tags,
                                          "route": [_route(cidr, target, by_address)
                                                    for cidr, target in sorted(spec["routes"].items())]})
            for subnet in sorted(spec["subnets"]):
                add("aws_route_table_association", f"{name}__{tf_name(subnet)}", {
                    "route_table_id": ref(r.address, "aws_route_table"), "subnet_id": ref(subnet, "aws_subnet")})
        elif r.kind == "ec2.vpc_endpoint":
            add("aws_vpc_endpoint", name, {
                "vpc_id": ref(spec["vpc"], "aws_vpc"), "service_name": spec["service"],
                "vpc_endpoint_type": spec["type"], "tags": tags,
                "route_table_ids": [ref(t, "aws_route_table") for t in spec.get("route_tables", [])]})
        elif r.kind == "ec2.security_group":
            add("aws_security_group", name, {
                "name": spec["group_name"], "description": spec["description"],
                "vpc_id": ref(spec["vpc"], "aws_vpc"), "tags": tags,
                "ingress": [_sg_rule(k, v) for k, v in sorted(spec["ingress"].items())],
                "egress": [_sg_rule(k, v) for k, v in sorted(spec["egress"].items())]})
        else:
            raise Untranslated(f"{r.address}: kind {r.kind} has no Terraform translation in bench/terraform.py")
    return {"terraform": {"required_providers": {"aws": {"source": "hashicorp/aws"}}},
            "provider": provider(endpoint, region), "resource": resources}


_TYPES = {"ec2.vpc": "aws_vpc", "ec2.subnet": "aws_subnet", "ec2.internet_gateway": "aws_internet_gateway",
          "ec2.elastic_ip": "aws_eip", "ec2.nat_gateway": "aws_nat_gateway"}


def _depends(r: DesiredResource, by_address: Mapping[str, DesiredResource],
             kinds: tuple[str, ...] = ("ec2.internet_gateway",)) -> list[str]:
    """Terraform `depends_on` for the ordering our graph has but no reference carries (an EIP, a NAT after
    the IGW, as AWS requires)."""
    return [f"{_TYPES[by_address[d].kind]}.{tf_name(d)}" for d in r.depends_on
            if d in by_address and by_address[d].kind in kinds]


def _route(cidr: str, target: str, by_address: Mapping[str, DesiredResource]) -> dict[str, Any]:
    """One inline route; in JSON every attribute of a block-as-attribute must be written."""
    route: dict[str, Any] = {field: None for field in (
        "ipv6_cidr_block", "destination_prefix_list_id", "carrier_gateway_id", "core_network_arn",
        "egress_only_gateway_id", "gateway_id", "local_gateway_id", "nat_gateway_id", "network_interface_id",
        "transit_gateway_id", "vpc_endpoint_id", "vpc_peering_connection_id")}
    route["cidr_block"] = cidr
    kind = by_address[target].kind
    if kind == "ec2.internet_gateway":
        route["gateway_id"] = f"${{aws_internet_gateway.{tf_name(target)}.id}}"
    elif kind == "ec2.nat_gateway":
        route["nat_gateway_id"] = f"${{aws_nat_gateway.{tf_name(target)}.id}}"
    else:
        raise Untranslated(f"a route to {target} ({kind}) has no Terraform translation in bench/terraform.py")
    return route


def _sg_rule(key: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """One inline security-group rule from its canonical key (`tcp 8080 from 10.0.0.0/16`, `all to 0.0.0.0/0`)."""
    protocol, low, high, peer = parse_rule_key(key)
    if "/" not in peer or ":" in peer:
        raise Untranslated(f"rule {key!r}: only IPv4 CIDR peers are translated in bench/terraform.py")
    return {"protocol": "-1" if protocol == "all" else protocol, "from_port": 0 if low is None else low,
            "to_port": 0 if high is None else high, "cidr_blocks": [peer],
            "description": value.get("description") or "", "ipv6_cidr_blocks": [], "prefix_list_ids": [],
            "security_groups": [], "self": False}


def _json(document: Any) -> str:
    """A policy document as JSON text (the provider compares policies semantically)."""
    return json.dumps(document, sort_keys=True)
