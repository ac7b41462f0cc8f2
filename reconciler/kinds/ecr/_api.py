"""ECR reads shared by the repository and image kinds, each made once per run (`Context.memo`).

- `repositories`: every repository of the registry, one paginated DescribeRepositories;
- `repository_tags`: ListTagsForResource, per repository (ECR has no batch form);
- `tagged_images`: ListImages (tagged only) of one repository: `(digest, tag)` pairs.

Every function is a read (allowed under the read-only guard) and is complete or raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import absent_none, is_absent
from reconciler.kinds.base import Context
from reconciler.ownership import of_kind, owned_by

# A build's inputs digest is recorded as an extra tag on the image it produced:
# `reconciler-inputs-<hex>` (ECR tags allow 128 characters; this is 82).
INPUTS_TAG_PREFIX = "reconciler-inputs-"
FORCE_DELETE_TAG = "reconciler:force-delete"
REPOSITORY_KIND = "ecr.repository"  # named here too: the image kind asks whether a repository is ours


def inputs_tag(inputs: str) -> str:
    """The image tag that records `sha256:<hex>` inputs."""
    return INPUTS_TAG_PREFIX + inputs.split(":", 1)[-1]


def repositories(ctx: Context) -> dict[str, dict[str, Any]]:
    """Every repository in the account and region, by name."""

    def load() -> dict[str, dict[str, Any]]:
        paginator = ctx.client("ecr").get_paginator("describe_repositories")
        return {repo["repositoryName"]: repo for page in paginator.paginate() for repo in page["repositories"]}

    return ctx.memo("ecr.repositories", load)


def repository_uri(ctx: Context, name: str) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com/<name>`, as ECR names it (`.com.cn` in the China regions)."""
    suffix = ".cn" if ctx.region.startswith("cn-") else ""
    return f"{ctx.account}.dkr.ecr.{ctx.region}.amazonaws.com{suffix}/{name}"


def repository_tags(ctx: Context, arn: str) -> dict[str, str]:
    def load() -> dict[str, str]:
        tags = ctx.client("ecr").list_tags_for_resource(resourceArn=arn).get("tags", [])
        return {t["Key"]: t["Value"] for t in tags}

    return ctx.memo(f"ecr.tags.{arn}", load)


def repository_owned(ctx: Context, name: str) -> bool | None:
    """True/False for an existing repository (by the stack and kind tags); None when there is none."""
    repo = repositories(ctx).get(name)
    if repo is None:
        return None
    return ours(repository_tags(ctx, repo["repositoryArn"]), ctx.stack)


def ours(tags: Mapping[str, str], stack: str) -> bool:
    """A repository of this stack and of the repository kind (no kind tag: made before the tag)."""
    return owned_by(tags, stack) and of_kind(tags, REPOSITORY_KIND)


@dataclass(frozen=True)
class RepoImages:
    """The tagged images of one repository as ECR lists them.

    `by_tag` maps each tag to the digest it holds; `inputs_of` maps a digest to the
    inputs digests recorded on it (an image built from inputs that differ only in
    what the build ignores can carry several); `build_of` maps inputs to a digest.
    """

    by_tag: Mapping[str, str] = field(default_factory=dict)
    inputs_of: Mapping[str, frozenset[str]] = field(default_factory=dict)
    build_of: Mapping[str, str] = field(default_factory=dict)


def parse_images(pairs: list[tuple[str, str]]) -> RepoImages:
    """Pure: `(digest, tag)` pairs -> RepoImages."""
    by_tag: dict[str, str] = {}
    inputs_of: dict[str, set[str]] = {}
    build_of: dict[str, str] = {}
    for digest, tag in sorted(pairs):
        if tag.startswith(INPUTS_TAG_PREFIX):
            inputs = "sha256:" + tag[len(INPUTS_TAG_PREFIX):]
            inputs_of.setdefault(digest, set()).add(inputs)
            build_of[inputs] = digest
        else:
            by_tag[tag] = digest
    return RepoImages(by_tag, {d: frozenset(i) for d, i in inputs_of.items()}, build_of)


def tagged_images(ctx: Context, name: str) -> RepoImages | None:
    """The repository's tagged images; None when the repository does not exist."""

    def load() -> RepoImages | None:
        paginator = ctx.client("ecr").get_paginator("list_images")
        pairs: list[tuple[str, str]] = []
        try:
            for page in paginator.paginate(repositoryName=name, filter={"tagStatus": "TAGGED"}):
                pairs.extend((i["imageDigest"], i["imageTag"]) for i in page["imageIds"] if i.get("imageTag"))
        except ClientError as exc:
            if is_absent(exc, "ecr"):
                return None
            raise
        return parse_images(pairs)

    return ctx.memo(f"ecr.images.{name}", load)


def holds_images(ctx: Context, name: str) -> bool:
    """Whether the repository holds any image, tagged or not (one page of one item)."""
    page = absent_none(lambda: ctx.client("ecr").list_images(repositoryName=name, maxResults=1), "ecr")
    return bool(page and page.get("imageIds"))
