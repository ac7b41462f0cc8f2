"""The `images` section: container images built from a context and pushed as repository tags.

Address: `image.REPOSITORY:TAG` (ecr.image), one per tag. Expansion reads the
build inputs (files only, no build) to digest them; the checks keep every file a
build would read inside the manifest's tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path as FsPath
from typing import Any

from reconciler.errors import ManifestError, Problem
from reconciler.manifest.image_inputs import DockerignoreError, dockerignore_patterns, inputs_digest
from reconciler.manifest.loader import Path, Source
from reconciler.manifest.model import DesiredResource, Manifest
from reconciler.manifest.paths import PathRefused, describe_root, refuse_non_regular, resolve_inside, tree_root
from reconciler.manifest.section import Section
from reconciler.manifest.suggest import Suggest

# Tags that exist to be moved to the newest build; an immutable repository refuses them.
MOVING_TAGS = frozenset({"latest", "stable", "main", "master", "edge", "nightly", "dev", "prod", "current"})


def expand(manifest: Manifest) -> list[DesiredResource]:
    """One resource per repository tag; `inputs` is the digest of the build inputs (files read, no build).

    `context` stays as written, relative to the manifest's directory (`Context.base_dir`).

    `immutable` is the repository's desired tag mutability: it decides whether a tag
    holding another build is a `push` (mutable) or a `conflict` (immutable).
    """
    repos = {r["name"]: r for r in manifest.data.get("ecr", {}).get("repositories", [])}
    out: list[DesiredResource] = []
    for index, image in enumerate(manifest.data.get("images", [])):
        repo = image["repository"]
        # as written (relative to the manifest), so a plan file made in one checkout applies in another
        context = image["context"]
        dockerfile = image.get("dockerfile", "Dockerfile")
        build_args = dict(sorted(image.get("build_args", {}).items()))
        target = image.get("target")
        platform = image.get("platform", "linux/amd64")
        try:
            inputs = inputs_digest((manifest.base_dir / context).resolve(), dockerfile, build_args, target, platform)
        except OSError as exc:
            raise ManifestError([manifest.source.problem(
                ("images", index, "context"), f"cannot read the build context: {exc.strerror or type(exc).__name__}",
                "the context and its Dockerfile must be readable")]) from None
        except ValueError as exc:  # PathRefused, DockerignoreError: their messages never quote a file
            raise ManifestError([manifest.source.problem(
                ("images", index, "context"), f"build context {context!r}: {exc}",
                "the context, its Dockerfile and .dockerignore must be regular files inside the tree")]) from None
        immutable = repos.get(repo, {}).get("tag_mutability", "immutable") == "immutable"
        for tag in image["tags"]:
            out.append(DesiredResource(f"image.{repo}:{tag}", "ecr.image", {
                "repository": repo,
                "tag": tag,
                "context": context,
                "dockerfile": dockerfile,
                "build_args": build_args,
                "target": target,
                "platform": platform,
                "immutable": immutable,
                "inputs": inputs,
            }, depends_on=(f"ecr.repository.{repo}",)))
    return out


def checks(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    """Known repositories, one image per tag, no moving tag on an immutable repository, readable contexts."""
    by_name = {r["name"]: r for r in data.get("ecr", {}).get("repositories", [])}
    seen_tags: dict[tuple[str, str], Path] = {}
    root = tree_root(base)
    suggest_repo = Suggest(by_name)
    for ii, image in enumerate(data.get("images", [])):
        repo_name = image["repository"]
        if repo_name not in by_name:
            close = suggest_repo(repo_name)
            hint = f"did you mean {close[0]!r}?" if close else "declare it under ecr.repositories"
            yield source.problem(("images", ii, "repository"), f"unknown repository {repo_name!r}", hint)
            continue
        immutable = by_name[repo_name].get("tag_mutability", "immutable") == "immutable"
        for ti, tag in enumerate(image["tags"]):
            where: Path = ("images", ii, "tags", ti)
            if (repo_name, tag) in seen_tags:
                yield source.problem(where, f"tag {tag!r} of {repo_name} is built by two images",
                                     "each repository tag comes from one image")
            seen_tags[(repo_name, tag)] = where
            if immutable and tag in MOVING_TAGS:
                yield source.problem(where, f"tag {tag!r} must move with each build, but {repo_name} is immutable",
                                     "use a version tag such as 1.4.2, or set tag_mutability: mutable")
        yield from _image_paths(image, ii, source, base, root)


def _image_paths(image: dict[str, Any], ii: int, source: Source, base: FsPath, root: FsPath) -> Iterator[Problem]:
    """The context is a directory inside the tree; the Dockerfile and `.dockerignore` are regular files inside it.

    A Dockerfile outside its context would be read by the Docker SDK and sent to the
    daemon, whose error messages quote it: so it must lie inside the context, symlinks
    resolved, exactly like the files the build sends.
    """
    written = image["context"]
    dockerfile = image.get("dockerfile", "Dockerfile")
    dockerfile_at: Path = ("images", ii, "dockerfile" if "dockerfile" in image else "context")
    try:
        context = resolve_inside(root, base.resolve(), written, "build context", describe_root(root, base))
    except PathRefused as exc:
        yield source.problem(("images", ii, "context"), exc.message, exc.hint)
        return
    if not context.is_dir():
        yield source.problem(("images", ii, "context"), f"build context {written!r} is not a directory",
                             "the path is relative to the manifest file")
        return
    try:
        file = resolve_inside(context, context, dockerfile, "Dockerfile", f"its build context {written!r}")
    except PathRefused as exc:
        yield source.problem(dockerfile_at, exc.message, exc.hint)
        return
    if not file.exists():
        yield source.problem(dockerfile_at, f"no {dockerfile} in {written}",
                             "set `dockerfile:` to the file's path inside the context")
    else:
        try:
            refuse_non_regular(file, dockerfile, "Dockerfile")
        except PathRefused as exc:
            yield source.problem(dockerfile_at, exc.message, exc.hint)
        except OSError as exc:
            yield source.problem(dockerfile_at, f"cannot read Dockerfile {dockerfile!r}: {exc.strerror}",
                                 "the Dockerfile must be readable")
    problem = dockerignore_problem(context)
    if problem is not None:
        yield source.problem(("images", ii, "context"), f"{written}/.dockerignore {problem}",
                             "make .dockerignore a UTF-8 text file inside the context (or remove it)")


def dockerignore_problem(context: FsPath) -> str | None:
    """What is wrong with the context's `.dockerignore` (the Docker SDK reads it too), or None."""
    try:
        dockerignore_patterns(context)
    except DockerignoreError as exc:
        return str(exc)
    return None


SECTION = Section(
    key="images",
    kinds=("ecr.image",),
    expand=expand,
    checks=checks,
    needs=("ecr",),  # an image names its repository, and its mutability decides the moving-tag check
)
