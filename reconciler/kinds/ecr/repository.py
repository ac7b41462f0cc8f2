"""ECR repositories: tag mutability, scan on push, encryption, lifecycle and repository policies, tags.

Read: one paginated DescribeRepositories, then ListTagsForResource for every
repository (ownership is a tag, and ECR has no batch tag read), and, for the
repositories the stack owns or the manifest names, GetLifecyclePolicy and
GetRepositoryPolicy, all run concurrently (`pacing.fan_out`): a named repository's
three reads at once, an unnamed one's policies once its tags say it is ours. One page of ListImages
(does it hold images?) is read only for a repository the plan deletes or replaces
(`read_for_deletion`, called by the engine after the first plan). Nothing else.

Compared by meaning, so no plan shows a perpetual diff: lifecycle rules in
rulePriority order as JSON values (whatever the text's spacing or key order),
repository policies as sets of statements (`plan.diff`), a KMS alias equal to the
key ARN AWS reports, tag mutability in the manifest's spelling.

Safety invariants:
- encryption cannot change in place: a change replaces the repository, shown as such;
- a repository holding images is never deleted or replaced unless `force_delete: true`
  (recorded on the repository as tag `reconciler:force-delete=true`, so `destroy` and
  the deletion of a repository dropped from the manifest honour it too): the plan
  marks the change blocked and `delete` re-checks before calling AWS;
- a same-named repository without the stack tag, or tagged as another kind, is never
  touched (plan: blocked); one without a kind tag (made before it) is ours and gets it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import absent_none, absent_ok, error_code, is_absent
from reconciler.canonical import canonical_json, canonical_lifecycle_rules, canonical_policy
from reconciler.errors import AwsError
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.ecr._api import (
    FORCE_DELETE_TAG,
    REPOSITORY_KIND,
    holds_images,
    ours,
    repositories,
    repository_tags,
    repository_uri,
)
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import PROTECT_TAG, other_owner, tag_list
from reconciler.pacing import fan_out
from reconciler.plan.model import Action, Change, LiveResource, Note, info


def _mutability(value: str) -> str:
    """`IMMUTABLE` -> `immutable`; the *_WITH_EXCLUSION forms stay distinct (and so differ)."""
    return value.lower()


def _parse_json(text: str | None, what: str) -> Any:
    """A policy text ECR returned, as data; a text that is not JSON is a failed read, never a diff."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise AwsError(f"{what}: ECR returned a document that is not JSON; cannot compare it with the "
                       "manifest, nothing was planned; fix the document in ECR, then re-run") from None


class EcrRepository(Kind):
    name = REPOSITORY_KIND
    delete_frees = False  # identified by its name, which is its address: a deletion frees nothing
    replace_on = frozenset({"encryption"})

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        wanted = {d.spec["name"]: d for d in desired}
        repos = repositories(ctx)

        reads: dict[str, Callable[[str], Any]] = {
            "tags": lambda name: repository_tags(ctx, repos[name]["repositoryArn"]),
            "lifecycle": lambda name: _lifecycle(ctx, name), "policy": lambda name: _policy(ctx, name)}

        def read_all(todo: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
            return dict(zip(todo, fan_out(lambda item: reads[item[1]](item[0]), todo, name="ecr-read"), strict=True))

        names = sorted(repos)
        # a named repository's three reads go at once; any other's policies only once its tags say it is ours
        got = read_all([(name, "tags") for name in names]
                       + [(name, part) for name in names if name in wanted for part in ("lifecycle", "policy")])
        orphans = [name for name in names if name not in wanted and ours(got[(name, "tags")], ctx.stack)]
        got.update(read_all([(name, part) for name in orphans for part in ("lifecycle", "policy")]))
        tags = {name: got[(name, "tags")] for name in names}
        details = [(name, got[(name, "lifecycle")], got[(name, "policy")]) for name in names
                   if (name, "policy") in got]
        found: dict[str, LiveResource] = {}
        for name, rules, doc in details:
            repo, repo_tags = repos[name], tags[name]
            want = wanted.get(name)
            address = f"ecr.repository.{name}"
            found[address] = LiveResource(address, self.name, name, {
                "name": name,
                "tag_mutability": _mutability(repo.get("imageTagMutability", "MUTABLE")),
                "scan_on_push": bool(repo.get("imageScanningConfiguration", {}).get("scanOnPush", False)),
                "encryption": _encryption(ctx, repo, want),
                "lifecycle_rules": rules,
                "policy": doc,
                "force_delete": repo_tags.get(FORCE_DELETE_TAG) == "true",
                # None: not read; `read_for_deletion` reads it once the plan deletes or replaces this one
                "holds_images": None,
                "tags": repo_tags,
            }, protect=repo_tags.get(PROTECT_TAG) == "true", owned=ours(repo_tags, ctx.stack),
                owner=other_owner(repo_tags, ctx.stack),
                outputs={"id": name, "arn": repo["repositoryArn"],
                         "uri": repo.get("repositoryUri") or repository_uri(ctx, name)})
        return ReadResult(found)

    def read_for_deletion(self, ctx: Context, live: LiveResource) -> LiveResource:
        """Whether the repository holds images (one page of one item): only a deletion or a replacement
        needs it, to block one that would delete images (`blocked`). `kinds.base.ReadsBeforeDeleting`."""
        return dataclasses.replace(live, attrs={**live.attrs, "holds_images": holds_images(ctx, live.id)})

    @staticmethod
    def _force(desired: DesiredResource | None, live: LiveResource) -> bool:
        """Whether images may go with the repository: the manifest's flag, or the one recorded on it."""
        return bool(desired.spec.get("force_delete") if desired is not None else live.attrs.get("force_delete"))

    def blocked(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> str | None:
        if action not in (Action.DELETE, Action.REPLACE) or live is None or not live.attrs.get("holds_images"):
            return None
        if self._force(desired, live):
            return None
        verb = "replacing" if action is Action.REPLACE else "deleting"
        how = ("set `force_delete: true` on it in the manifest" if desired is not None else
               "add it back with `force_delete: true`, apply, then remove it (the flag is kept as tag "
               f"{FORCE_DELETE_TAG} on the repository)")
        return (f"repository {live.id} holds images and {verb} it would delete them; {how}, "
                "or delete the images first")

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> list[Note]:
        # a repository holding images says one thing: deleted with its images (force_delete), or
        # blocked (`blocked` above), never both
        if action is Action.REPLACE and live is not None:
            out = [info("encryption cannot change in place: the repository is deleted and created again")]
            if live.attrs.get("holds_images") and self._force(desired, live):
                out.append(info("its images are deleted with it (force_delete); the manifest's images are "
                                "pushed again by the next apply"))
            return out
        if action is Action.DELETE and live is not None and live.attrs.get("holds_images") and self._force(None, live):
            return [info("the repository holds images; they are deleted with it (force_delete)")]
        return []

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        ecr = ctx.client("ecr")
        encryption: dict[str, str] = {"encryptionType": spec["encryption"]["type"]}
        if spec["encryption"].get("kms_key"):
            encryption["kmsKey"] = spec["encryption"]["kms_key"]
        tags = dict(spec["tags"])
        if spec.get("force_delete"):
            tags[FORCE_DELETE_TAG] = "true"
        try:
            ecr.create_repository(
                repositoryName=spec["name"],
                imageTagMutability=spec["tag_mutability"].upper(),
                imageScanningConfiguration={"scanOnPush": bool(spec["scan_on_push"])},
                encryptionConfiguration=encryption,
                tags=tag_list(tags),
            )
        except ClientError as exc:
            if error_code(exc) != "RepositoryAlreadyExistsException":
                raise
            # a previous run died after creating it: converge from what is there, if it is ours
            repo = ecr.describe_repositories(repositoryNames=[spec["name"]])["repositories"][0]
            live_tags = {t["Key"]: t["Value"] for t in
                         ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", [])}
            if not ours(live_tags, ctx.stack):
                raise AwsError(f"{change.address}: repository {spec['name']} already exists without the stack "
                               "tag; rename it in the manifest, or re-run with --adopt") from None
            self._converge(ctx, spec, {
                "tag_mutability": _mutability(repo.get("imageTagMutability", "MUTABLE")),
                "scan_on_push": repo.get("imageScanningConfiguration", {}).get("scanOnPush", False),
                "lifecycle_rules": _lifecycle(ctx, spec["name"]),
                "policy": _policy(ctx, spec["name"]),
                "force_delete": live_tags.get(FORCE_DELETE_TAG) == "true",
                "tags": live_tags,
            })
            return str(spec["name"])
        self._converge(ctx, spec, {
            "tag_mutability": spec["tag_mutability"], "scan_on_push": spec["scan_on_push"],
            "lifecycle_rules": [], "policy": None, "force_delete": spec.get("force_delete", False),
            "tags": tags,
        })
        return str(spec["name"])

    def update(self, ctx: Context, change: Change) -> None:
        self._converge(ctx, change.want.spec, change.have.attrs)

    def _converge(self, ctx: Context, spec: Mapping[str, Any], live: Mapping[str, Any]) -> None:
        """Make every in-place setting match; each call only when its setting differs."""
        ecr = ctx.client("ecr")
        name = spec["name"]
        if live.get("tag_mutability") != spec["tag_mutability"]:
            ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability=spec["tag_mutability"].upper())
        if bool(live.get("scan_on_push")) != bool(spec["scan_on_push"]):
            ecr.put_image_scanning_configuration(repositoryName=name,
                                                 imageScanningConfiguration={"scanOnPush": bool(spec["scan_on_push"])})
        rules = canonical_lifecycle_rules(spec["lifecycle_rules"])
        if canonical_json(rules) != canonical_json(canonical_lifecycle_rules(live.get("lifecycle_rules"))):
            if rules:
                # indented: botocore refuses policy texts under 100 characters
                ecr.put_lifecycle_policy(repositoryName=name,
                                         lifecyclePolicyText=json.dumps({"rules": rules}, indent=2, sort_keys=True))
            else:
                with absent_ok("ecr"):
                    ecr.delete_lifecycle_policy(repositoryName=name)
        want, have = spec.get("policy"), live.get("policy")
        if _policy_key(want) != _policy_key(have):
            if want:
                ecr.set_repository_policy(repositoryName=name, policyText=json.dumps(want, indent=2))
            else:
                with absent_ok("ecr"):
                    ecr.delete_repository_policy(repositoryName=name)
        live_tags = live.get("tags", {})
        changed = {k: v for k, v in spec["tags"].items() if live_tags.get(k) != v}
        if spec.get("force_delete") and live_tags.get(FORCE_DELETE_TAG) != "true":
            changed[FORCE_DELETE_TAG] = "true"
        arn = None
        if changed:
            arn = _arn(ctx, name)
            ecr.tag_resource(resourceArn=arn, tags=tag_list(changed))
        if not spec.get("force_delete") and FORCE_DELETE_TAG in live_tags:
            ecr.untag_resource(resourceArn=arn or _arn(ctx, name), tagKeys=[FORCE_DELETE_TAG])

    def delete(self, ctx: Context, change: Change) -> None:
        name = change.have.id
        force = bool(change.want.spec.get("force_delete") if change.desired is not None
                     else change.have.attrs.get("force_delete"))
        if not force and holds_images(ctx, name):
            raise AwsError(f"{change.address}: repository {name} holds images; refusing to delete it without "
                           "force_delete: true (set it on the repository to delete them too)")
        try:
            ctx.client("ecr").delete_repository(repositoryName=name, force=force)
        except ClientError as exc:
            if is_absent(exc, "ecr"):
                return
            if error_code(exc) == "RepositoryNotEmptyException":
                raise AwsError(f"{change.address}: repository {name} received images since the plan; refusing "
                               "to delete it without force_delete: true; run plan again to review them") from None
            raise
        if ctx.registry:
            from reconciler.kinds.ecr._registry import purge_local_repository

            purge_local_repository(ctx, name)


def _policy_key(doc: Any) -> str:
    if isinstance(doc, Mapping) and "Statement" in doc:
        return canonical_json(canonical_policy(doc))
    return canonical_json(doc)


def _arn(ctx: Context, name: str) -> str:
    repo = repositories(ctx).get(name)
    if repo is not None:
        return str(repo["repositoryArn"])
    found = ctx.client("ecr").describe_repositories(repositoryNames=[name])["repositories"][0]
    return str(found["repositoryArn"])


def _lifecycle(ctx: Context, name: str) -> list[dict[str, Any]]:
    text = absent_none(lambda: ctx.client("ecr").get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"],
                       "ecr")
    if text is None:
        return []
    doc = _parse_json(text, f"lifecycle policy of repository {name}")
    return canonical_lifecycle_rules(doc.get("rules") if isinstance(doc, Mapping) else None)


def _policy(ctx: Context, name: str) -> Any:
    text = absent_none(lambda: ctx.client("ecr").get_repository_policy(repositoryName=name)["policyText"], "ecr")
    return _parse_json(text, f"repository policy of {name}")


def _encryption(ctx: Context, repo: Mapping[str, Any], desired: DesiredResource | None) -> dict[str, str]:
    """Live encryption in the manifest's shape: the key only where the manifest names one,
    and the manifest's spelling (alias or id) when it designates the same key AWS reports."""
    config = repo.get("encryptionConfiguration", {})
    out = {"type": config.get("encryptionType", "AES256")}
    key = config.get("kmsKey")
    want = desired.spec["encryption"].get("kms_key") if desired is not None else None
    if key and desired is None:
        out["kms_key"] = key
    elif key and want:
        out["kms_key"] = want if want == key or _kms_arn(ctx, want) == key else key
    return out


def _kms_arn(ctx: Context, key: str) -> str:
    """The ARN of the KMS key the manifest names (alias, id or ARN), or a failed read.

    Never a guess: a key that cannot be described (denied, or the alias does not exist) would make
    the live key look different from the manifest's, i.e. a REPLACE, which deletes the repository
    and its images. So the read fails (exit 1) and nothing is planned on top of it.
    """
    def load() -> str:
        try:
            return str(ctx.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"])
        except ClientError as exc:
            code = error_code(exc)
            if is_absent(exc, "kms"):
                why = "no such key in this account and region; fix kms_key in the manifest"
            elif code == "AccessDeniedException":
                why = "access denied; grant kms:DescribeKey on it, or name the key by its ARN in the manifest"
            else:
                why = code or type(exc).__name__
            raise AwsError(f"cannot tell whether the repositories' KMS key is {key}: kms:DescribeKey failed "
                           f"({why}); nothing was planned; check the credentials' kms:DescribeKey permission") from None

    return ctx.memo(f"kms.arn.{key}", load)


KIND = EcrRepository()
