"""Names checked against AWS's own data: regions (botocore's endpoint data), VPC endpoint
services (a list shipped in `reconciler/data/`), and ARN partitions that match the region.

Why here and not in the schema: the region list comes with botocore and grows with it,
and a "did you mean" needs the list at hand; the schema only says what a name looks like.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from difflib import get_close_matches
from importlib import resources
from pathlib import Path as FsPath
from typing import Any

from reconciler.errors import Problem
from reconciler.manifest.loader import Source
from reconciler.manifest.suggest import Suggest

_ARN_PARTITION = re.compile(r"^arn:(aws[a-z-]*):")
# an IAM role ARN, as the schema's `assume_role.role_arn` pattern and `--assume-role` accept it
ROLE_ARN = re.compile(r"^arn:(?P<partition>aws(-[a-z]+)*):iam::(?P<account>[0-9]{12}):"
                      r"role/(?P<rest>([\x21-\x7e]+/)?[A-Za-z0-9+=,.@_-]{1,64})$")


@functools.cache
def region_partitions() -> dict[str, str]:
    """Every region botocore knows, mapped to its partition (`aws`, `aws-cn`, `aws-us-gov`, ...).

    From botocore's `partitions.json`, the data its endpoint rules resolve regions with: 7 KB, where the
    older `endpoints.json` (1.2 MB, a tenth of a second to parse) lists no region that it lacks; it also
    lists regions `endpoints.json` does not (me-west-1, sa-west-1 in botocore 1.44). Entries that do
    not match their partition's own `regionRegex` (`aws-global` and its like) are endpoint aliases,
    not regions, and are left out. A private partition in `~/.aws/models/endpoints.json` is not read.
    """
    import botocore.loaders

    data = botocore.loaders.Loader().load_data("partitions")
    return {region: partition["id"] for partition in data["partitions"] for region in partition["regions"]
            if re.fullmatch(partition["regionRegex"], region)}


@functools.cache
def endpoint_services() -> frozenset[str]:
    """The VPC endpoint service short names shipped with the tool (`com.amazonaws.<region>.<name>`)."""
    text = resources.files("reconciler").joinpath("data/endpoint_services.json").read_text(encoding="utf-8")
    return frozenset(json.loads(text)["services"])


def region_problems(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    """A region botocore does not know, with the closest one it does."""
    region = data.get("region")
    partitions = region_partitions()
    if isinstance(region, str) and region not in partitions:
        close = get_close_matches(region, sorted(partitions), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else "use a region name such as us-east-1"
        yield source.problem(("region",), f"{region} is not an AWS region this version knows", hint)


def endpoint_service_problems(data: dict[str, Any], source: Source, base: FsPath,
                              pol: dict[str, Any]) -> Iterator[Problem]:
    """Endpoint `service:` names that are not VPC endpoint services, with the closest one that is."""
    known = endpoint_services()
    suggest = Suggest(known)
    for vi, vpc in enumerate(data.get("network", {}).get("vpcs", [])):
        for ei, endpoint in enumerate(vpc.get("endpoints", [])):
            service = endpoint.get("service")
            if isinstance(service, str) and service not in known:
                close = suggest(service)
                hint = f"did you mean {close[0]!r}?" if close else "see `aws ec2 describe-vpc-endpoint-services`"
                yield source.problem(("network", "vpcs", vi, "endpoints", ei, "service"),
                                     f"{service} is not a VPC endpoint service", hint)


def partition_problems(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    """Managed policy ARNs of another partition than the region's (`arn:aws:` in cn-north-1)."""
    region = data.get("region")
    partition = region_partitions().get(region) if isinstance(region, str) else None
    if partition is None:
        return  # an unknown region is reported once, by region_problems
    iam = data.get("iam", {})
    for kind in ("users", "groups"):
        for index, item in enumerate(iam.get(kind, [])):
            for pi, arn in enumerate(item.get("managed_policies", [])):
                found = _ARN_PARTITION.match(arn) if isinstance(arn, str) else None
                if found and found.group(1) != partition:
                    fixed = f"arn:{partition}:" + arn[found.end():]
                    yield source.problem(("iam", kind, index, "managed_policies", pi),
                                         f"{arn} is in partition {found.group(1)}, but {region} is in {partition}",
                                         f"use {fixed}")
