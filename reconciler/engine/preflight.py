"""Checks apply makes after planning and before it asks or changes anything.

Each one stops a run that would otherwise fail half-way (after building, after the first
changes) for a reason known up front:
- `registry`: an image build against a non-AWS endpoint (an emulator) without `--registry`:
  the ECR registry host `<account>.dkr.ecr.<region>.amazonaws.com` cannot be reached through an
  emulator, so the push would fail after the build (exit 3: the command line lacks a flag);
- `docker`: an image build with no Docker Engine answering: said once, however many images
  (exit 1), instead of once per image after the other changes were made;
- `pacing`: a `RECONCILER_EC2_PACING` that cannot be read (exit 3), before the first write.

None makes a write; `docker` pings the engine only when an image may be built.
"""

from __future__ import annotations

from urllib.parse import urlparse

from reconciler.errors import UsageError
from reconciler.kinds.base import Context
from reconciler.plan.model import Plan

# DNS suffixes of AWS's own endpoints in every partition (botocore's partitions: aws, aws-cn,
# aws-us-gov, aws-iso*, and the dual-stack api.aws); an endpoint under none of them is an emulator
# or a proxy, whose ECR API has no registry beside it
AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".c2s.ic.gov", ".sc2s.sgov.gov",
                ".cloud.adc-e.uk", ".csp.hci.ic.gov", ".api.amazonwebservices.com.cn")


def is_aws_endpoint(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower().rstrip(".")
    return any(host.endswith(suffix) for suffix in AWS_SUFFIXES)


def builds(plan: Plan) -> list[str]:
    """The addresses whose apply may build and push an image."""
    from reconciler.kinds.ecr.image import may_build

    return [c.address for c in plan.pending if not c.blocked and may_build(c)]


def registry(plan: Plan, ctx: Context) -> None:
    """UsageError when images would be built and pushed to an ECR registry host an emulator cannot serve."""
    images = builds(plan)
    if not images or ctx.registry:
        return
    endpoint = str(ctx.client("ecr").meta.endpoint_url or "")  # no call: the client's resolved endpoint
    if not endpoint or is_aws_endpoint(endpoint):
        return
    host = f"{ctx.account}.dkr.ecr.{ctx.region}.amazonaws.com"
    raise UsageError(f"the registry host is not mapped: {len(images)} image(s) would be built ({images[0]}"
                     f"{', ...' if len(images) > 1 else ''}) and pushed to {host}, which cannot be reached "
                     f"through the endpoint {endpoint}; pass --registry HOST:PORT (a registry standing in for "
                     "it); nothing was built or changed")


def docker(plan: Plan, ctx: Context) -> None:
    """DockerError (one line) when images would be built and no Docker Engine answers; the client is kept."""
    if not builds(plan):
        return
    from reconciler.kinds.ecr import _docker

    ctx.memo("docker.client", _docker.client)  # the image kind's own memo: its builds reuse this client


def pacing(ctx: Context) -> None:
    """UsageError now, not at the first paced write, when RECONCILER_EC2_PACING cannot be read."""
    from reconciler.kinds.ec2._pacing import pacer

    pacer(ctx.account, ctx.region)


def before_apply(plan: Plan, ctx: Context) -> None:
    """Every check, cheapest and most certain first."""
    pacing(ctx)
    registry(plan, ctx)
    docker(plan, ctx)
