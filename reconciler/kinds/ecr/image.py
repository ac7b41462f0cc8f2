"""Container images: one address per repository tag, `image.<repository>:<tag>`.

Desired state is the digest of the build inputs (`spec["inputs"]`, computed at
expansion from the files, without building). Each build pushed by this tool is also
tagged `reconciler-inputs-<hex>` in its repository, so a later run reads back, from
one ListImages per repository and without building or any registry credential,
which inputs every image was built from. Per tag the plan says:

- `push`     the tag is missing, or holds an image not built from these inputs
             (mutable repository). Apply retags an existing build of these inputs
             when the repository has one (no build), else builds once per inputs
             digest and pushes;
- `no-op`    the tag holds a build of exactly these inputs;
- `conflict` the repository is immutable and the tag holds another image: the change
             is blocked, so apply refuses before building or pushing anything.

Drift: a tag holding an image that carries no inputs tag was pushed outside the
tool (`unmanaged`); the diff shows the digest the tag should point back to.

Invariants: images are never deleted by this kind (tags dropped from the manifest
stay until the repository's lifecycle policy expires them, or the repository is
deleted); read never touches Docker; a push records the inputs tag first and the
manifest's tag second, so a crash in between is healed by a retag on the next run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reconciler.errors import DockerError
from reconciler.kinds.base import Context, Kind, Phase, ProgressEvent, ReadResult
from reconciler.kinds.ecr._api import inputs_tag, repository_owned, repository_uri, tagged_images
from reconciler.manifest.model import DesiredResource
from reconciler.pacing import fan_out
from reconciler.plan.model import Action, AttrChange, Change, LiveResource, Note, Origin, info


def short(digest: str | None) -> str:
    """`sha256:0123456789ab` for humans; the full value is in the diff and the plan file."""
    return digest[:19] if digest else "(none)"


class Image(Kind):
    name = "ecr.image"
    delete_frees = False  # identified by its name, which is its address: a deletion frees nothing

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        by_repo: dict[str, list[DesiredResource]] = defaultdict(list)
        for item in desired:
            by_repo[item.spec["repository"]].append(item)
        names = sorted(by_repo)
        owned = dict(zip(names, fan_out(lambda n: repository_owned(ctx, n), names, name="image-read"), strict=True))
        listed = dict(zip(names, fan_out(lambda n: tagged_images(ctx, n) if owned[n] is not None else None, names,
                                         name="image-read"), strict=True))
        found: dict[str, LiveResource] = {}
        for repo in names:
            images = listed[repo]
            if images is None:
                continue  # no repository yet: every tag is a push
            for item in by_repo[repo]:
                tag, want = item.spec["tag"], item.spec["inputs"]
                digest = images.by_tag.get(tag)
                if digest is None:
                    continue
                recorded = sorted(images.inputs_of.get(digest, ()))
                attrs = {
                    "repository": repo,
                    "tag": tag,
                    "digest": digest,
                    "inputs": want if want in recorded else (recorded[0] if recorded else None),
                    "built_digest": images.build_of.get(want),
                }
                unmanaged = () if recorded else (
                    f"tag {tag} points at {short(digest)}, an image not pushed by reconciler",)
                found[item.address] = LiveResource(item.address, self.name, f"{repo}:{tag}", attrs,
                                                   owned=bool(owned[repo]), depends_on=item.depends_on,
                                                   unmanaged=unmanaged,
                                                   outputs={"id": f"{repo}:{tag}", "digest": digest,
                                                            "uri": f"{repository_uri(ctx, repo)}:{tag}",
                                                            "uri_digest": f"{repository_uri(ctx, repo)}@{digest}"})
        return ReadResult(found)

    def diff(self, desired: DesiredResource, live: LiveResource) -> list[AttrChange]:
        want, attrs = desired.spec["inputs"], live.attrs
        if attrs.get("inputs") == want:
            return []
        changes = [AttrChange("inputs", attrs.get("inputs"), want)]
        built = attrs.get("built_digest")
        if built and built != attrs.get("digest"):
            changes.append(AttrChange("digest", attrs.get("digest"), built))
        return changes

    def _conflict(self, desired: DesiredResource, live: LiveResource | None) -> bool:
        return live is not None and bool(desired.spec.get("immutable")) and live.attrs.get("inputs") != \
            desired.spec["inputs"]

    def classify(self, change: Change, attr: AttrChange) -> Origin:
        # the whole diff follows from what read reports in `unmanaged` (a tag pushed outside the tool:
        # digest and inputs differ because of it)
        return Origin.ADDED if change.have.unmanaged else Origin.MODIFIED

    def describe_added(self, change: Change, attr: AttrChange) -> list[str]:
        return []  # `unmanaged` already names the tag pushed by hand

    def blocked(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> str | None:
        if desired is None or not self._conflict(desired, live):
            return None
        assert live is not None
        spec = desired.spec
        held = live.attrs.get("inputs")
        origin = f"built from inputs {short(held)}" if held else "not pushed by reconciler"
        return (f"conflict: {spec['repository']}:{spec['tag']} is immutable and already holds "
                f"{short(live.attrs.get('digest'))} ({origin}), not a build of inputs {short(spec['inputs'])}; "
                "push a new tag (change `tags:` of this image in the manifest) or set `tag_mutability: mutable` "
                "on the repository")

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> list[Note]:
        if desired is None:
            return []
        spec = desired.spec
        where = f"{spec['repository']}:{spec['tag']}"
        if live is None:
            return [info(f"push: {where} is missing; inputs {short(spec['inputs'])} (built unless the "
                         "repository already holds a build of them)")]
        if self._conflict(desired, live):
            return [info(f"conflict: {where} holds {short(live.attrs.get('digest'))}")]
        if action is Action.NOOP:
            return [info(f"no-op: {where} holds {short(live.attrs.get('digest'))}, built from inputs "
                         f"{short(spec['inputs'])}")]
        held = live.attrs.get("inputs")
        origin = f"built from inputs {short(held)}" if held else "not pushed by reconciler"
        built = live.attrs.get("built_digest")
        how = f"retag {short(built)}, already built from them" if built else "build and push"
        return [info(f"push: {where} holds {short(live.attrs.get('digest'))} ({origin}); inputs are now "
                     f"{short(spec['inputs'])}: {how}")]

    def create(self, ctx: Context, change: Change) -> str:
        return self._push(ctx, change)

    def update(self, ctx: Context, change: Change) -> None:
        if change.action is Action.ADOPT and not change.diff:
            # an image has no tags of its own (its repository's carry the stack): adopting one that already
            # holds a build of its inputs writes nothing (a follow-up UPDATE with no diff still re-points)
            return
        self._push(ctx, change)

    def delete(self, ctx: Context, change: Change) -> None:
        raise DockerError(f"{change.address}: images are never deleted by reconciler; the repository's lifecycle "
                          "policy expires them (add one to the repository, or delete the image by hand)")

    def _push(self, ctx: Context, change: Change) -> str:
        """Point the tag at a build of the inputs: retag an existing build, or build once and push."""
        from reconciler.kinds.ecr._registry import registry
        spec = change.want.spec
        repo, tag = spec["repository"], spec["tag"]
        reg = registry(ctx)

        def report(event: ProgressEvent) -> None:
            ctx.progress(change.address, event)

        manifest = ctx.memo(f"image.in-repo.{repo}.{spec['inputs']}", lambda: _build_in_repo(ctx, spec, report))
        report(Phase(f"tagging {tag} -> {manifest.digest}"))
        reg.put_manifest(ctx, repo, tag, manifest)
        return f"{repo}:{tag}"


def _build_in_repo(ctx: Context, spec: Mapping[str, Any], report: Callable[[ProgressEvent], None]) -> Any:
    """The manifest of a build of `spec`'s inputs in its repository, tagged with the inputs tag.

    Looks first (at apply time) for a build the repository already holds; builds at
    most once per inputs digest and run, whatever the number of tags and repositories.
    """
    from reconciler.kinds.ecr import _docker
    from reconciler.kinds.ecr._registry import registry

    reg = registry(ctx)
    repo, inputs = spec["repository"], spec["inputs"]
    recorded = inputs_tag(inputs)
    manifest = reg.get_manifest(ctx, repo, recorded)
    if manifest is not None:
        report(Phase(f"the repository already holds a build of inputs {short(inputs)}: {short(manifest.digest)} "
                     "(no build)"))
        reg.mirror(ctx, repo, recorded, manifest)
        return manifest
    client = ctx.memo("docker.client", _docker.client)

    def build() -> str:
        report(Phase(f"building inputs {short(inputs)}"))
        return _docker.build(client, context=str((ctx.base_dir / spec["context"]).resolve()),
                             dockerfile=spec["dockerfile"], build_args=spec["build_args"], target=spec.get("target"),
                             platform=spec.get("platform"), inputs=inputs, report=report)

    image_id = ctx.memo(f"docker.build.{inputs}", build)
    report(Phase(f"pushing to {repo}"))
    digest = _docker.push(client, image_id=image_id, reference=reg.reference(repo), tag=recorded,
                          auth_config=reg.auth_config(), report=report)
    report(Phase(f"pushed {short(digest)}"))
    manifest = reg.get_manifest(ctx, repo, digest) if reg.local else reg.get_manifest(ctx, repo, recorded)
    if manifest is None or manifest.digest != digest:
        raise DockerError(f"{repo}: the registry does not serve the pushed image {digest}; check the registry, then "
                          "re-run apply")
    reg.mirror(ctx, repo, recorded, manifest)
    return manifest


KIND = Image()


def may_build(change: Change) -> bool:
    """True when applying `change` may build and push an image (so needs Docker and a reachable registry).

    False for an image whose repository already holds a build of its inputs (a retag through the ECR
    API only) and for an adoption that writes nothing. A missing tag may still turn out, at apply
    time, to be a retag: this errs on the side of checking.
    """
    if change.kind != KIND.name or change.action not in (Action.CREATE, Action.UPDATE, Action.REPLACE,
                                                         Action.ADOPT):
        return False
    if change.action is Action.ADOPT and not change.diff:
        return False
    return change.live is None or not change.live.attrs.get("built_digest")
