"""Pure tests: the build-inputs digest, lifecycle canonicalisation, and the image/repository planning rules."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from reconciler.canonical import canonical_lifecycle_rules
from reconciler.errors import DockerError
from reconciler.kinds.base import Step, Transfer
from reconciler.kinds.ecr import _docker
from reconciler.kinds.ecr._api import inputs_tag, parse_images
from reconciler.kinds.ecr.image import KIND as IMAGE
from reconciler.kinds.ecr.repository import KIND as REPOSITORY
from reconciler.manifest.image_inputs import context_files, inputs_digest
from reconciler.manifest.model import DesiredResource
from reconciler.manifest.sections.ecr import lifecycle_rules
from reconciler.plan.model import Action, LiveResource


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY src /src\n")
    (root / "src" / "app.txt").write_text("hello\n")
    (root / "notes.md").write_text("not part of the image\n")
    (root / "keep.md").write_text("kept by an exception\n")
    (root / ".dockerignore").write_text("# docs\n*.md\n!keep.md\nDockerfile\n")
    return root


def digest(root: Path, **kw: Any) -> str:
    return inputs_digest(root, kw.pop("dockerfile", "Dockerfile"), kw.pop("build_args", {}), kw.pop("target", None),
                         kw.pop("platform", "linux/amd64"))


def test_digest_is_stable_and_independent_of_where_the_context_lives(context: Path, tmp_path: Path) -> None:
    first = digest(context)
    assert first == digest(context) and first.startswith("sha256:") and len(first) == 71
    copy = tmp_path / "elsewhere" / "ctx"
    shutil.copytree(context, copy)
    os.utime(copy / "src" / "app.txt", (1, 1))  # mtimes do not count
    assert digest(copy) == first


def test_files_are_those_the_sdk_sends(context: Path) -> None:
    from docker.utils.build import tar

    patterns = ["*.md", "!keep.md", "Dockerfile"]
    with tarfile.open(fileobj=tar(str(context), exclude=patterns, dockerfile=("Dockerfile", None))) as sent:
        names = sorted(member.name for member in sent.getmembers())
    assert context_files(context) == names
    assert "notes.md" not in names and "keep.md" in names and "Dockerfile" in names  # the Dockerfile always goes


@pytest.mark.parametrize("change", ["content", "new_file", "mode", "dockerfile", "dockerignore_unignores"])
def test_any_change_a_build_could_see_changes_the_digest(context: Path, change: str) -> None:
    before = digest(context)
    if change == "content":
        (context / "src" / "app.txt").write_text("hello again\n")
    elif change == "new_file":
        (context / "src" / "more.txt").write_text("x")
    elif change == "mode":
        (context / "src" / "app.txt").chmod(0o755)
    elif change == "dockerfile":
        (context / "Dockerfile").write_text("FROM scratch\nCOPY src /srv\n")
    elif change == "dockerignore_unignores":
        (context / ".dockerignore").write_text("*.md\n")
    assert digest(context) != before


def test_ignored_files_do_not_change_the_digest(context: Path) -> None:
    before = digest(context)
    (context / "notes.md").write_text("edited\n")
    (context / "other.md").write_text("new\n")
    assert digest(context) == before


def test_build_args_target_platform_and_dockerfile_name_count(context: Path) -> None:
    base = digest(context)
    assert digest(context, build_args={"A": "1"}) != base
    assert digest(context, build_args={"A": "1"}) != digest(context, build_args={"A": "2"})
    assert digest(context, target="runtime") != base
    assert digest(context, platform="linux/arm64") != base
    (context / "Dockerfile.prod").write_text((context / "Dockerfile").read_text())
    assert digest(context, dockerfile="Dockerfile.prod") != base


def test_lifecycle_rules_canonical_by_priority_and_secure_default() -> None:
    rules = [{"rulePriority": 9, "action": {"type": "expire"}}, {"rulePriority": 2, "action": {"type": "expire"}}]
    assert [r["rulePriority"] for r in canonical_lifecycle_rules(rules)] == [2, 9]
    assert canonical_lifecycle_rules(None) == []
    assert lifecycle_rules({"rules": rules}) == canonical_lifecycle_rules(list(reversed(rules)))
    default = lifecycle_rules(None)
    assert len(default) == 1 and default[0]["selection"]["tagStatus"] == "untagged"
    both = lifecycle_rules({"keep_last": 5, "untagged_expire_days": 3})
    assert [r["rulePriority"] for r in both] == [1, 2]


X = "sha256:" + "1" * 64
Y = "sha256:" + "2" * 64
D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


def test_parse_images_reads_the_inputs_tags() -> None:
    images = parse_images([(D1, "1.0"), (D1, inputs_tag(X)), (D2, "latest"), (D1, inputs_tag(Y))])
    assert images.by_tag == {"1.0": D1, "latest": D2}
    assert images.inputs_of == {D1: frozenset({X, Y})}
    assert images.build_of == {X: D1, Y: D1}


def image(immutable: bool, inputs: str = X) -> DesiredResource:
    return DesiredResource("image.app:1.0", "ecr.image", {"repository": "app", "tag": "1.0", "inputs": inputs,
                                                      "immutable": immutable}, ("ecr.repository.app",))


def live_image(held: str | None, digest: str = D2, built: str | None = None) -> LiveResource:
    return LiveResource("image.app:1.0", "ecr.image", "app:1.0",
                        {"repository": "app", "tag": "1.0", "digest": digest, "inputs": held, "built_digest": built})


def test_image_tag_holding_a_build_of_the_inputs_is_a_noop() -> None:
    assert IMAGE.diff(image(True), live_image(X, D1, D1)) == []
    assert IMAGE.blocked(image(True), live_image(X, D1, D1), Action.NOOP) is None
    assert IMAGE.notes(image(True), live_image(X, D1, D1), Action.NOOP)[0].text.startswith("no-op: ")


def test_mutable_tag_with_other_inputs_is_a_push_immutable_is_a_conflict() -> None:
    live = live_image(Y)
    changes = IMAGE.diff(image(False), live)
    assert [(c.path, c.before, c.after) for c in changes] == [("inputs", Y, X)]
    assert IMAGE.blocked(image(False), live, Action.UPDATE) is None
    assert IMAGE.notes(image(False), live, Action.UPDATE)[0].text.startswith("push: ")
    reason = IMAGE.blocked(image(True), live, Action.UPDATE)
    assert reason is not None and reason.startswith("conflict: ") and "new tag" in reason and "mutable" in reason
    assert IMAGE.blocked(image(True), None, Action.CREATE) is None  # a missing tag is always a push


def test_a_tag_moved_by_hand_points_back_at_the_build_of_the_inputs() -> None:
    live = live_image(None, D2, built=D1)
    changes = {c.path: (c.before, c.after) for c in IMAGE.diff(image(False), live)}
    assert changes == {"inputs": (None, X), "digest": (D2, D1)}
    assert "retag" in IMAGE.notes(image(False), live, Action.UPDATE)[0].text


def repository(holds: bool, force_tag: bool) -> LiveResource:
    return LiveResource("ecr.repository.app", "ecr.repository", "app",
                        {"holds_images": holds, "force_delete": force_tag})


def test_non_empty_repository_is_blocked_without_force_delete() -> None:
    desired = DesiredResource("ecr.repository.app", "ecr.repository", {"force_delete": False})
    forced = DesiredResource("ecr.repository.app", "ecr.repository", {"force_delete": True})
    assert REPOSITORY.blocked(None, repository(True, False), Action.DELETE) is not None
    assert REPOSITORY.blocked(None, repository(True, True), Action.DELETE) is None
    assert REPOSITORY.blocked(None, repository(False, False), Action.DELETE) is None
    assert REPOSITORY.blocked(desired, repository(True, True), Action.REPLACE) is not None  # the manifest decides
    assert REPOSITORY.blocked(forced, repository(True, False), Action.REPLACE) is None
    assert REPOSITORY.blocked(desired, repository(True, False), Action.UPDATE) is None


def test_build_and_push_errors_arrive_as_events_and_fail() -> None:
    events: list[Any] = []
    with pytest.raises(DockerError, match="COPY failed"):
        _docker._follow_build([{"stream": "Step 1/2 : FROM scratch\n"}, {"error": "COPY failed: no such file"}],
                              events.append)
    assert events == [Step(1, 2, "FROM scratch")]
    assert _docker._follow_build([{"stream": "Step 1/1 : FROM scratch\n"}, {"aux": {"ID": "sha256:abc"}}],
                                 events.append) == "sha256:abc"


class FakeApi:
    """Stands in for the SDK's low-level client: replays a push event stream."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.tagged: list[tuple[str, str, str]] = []

    def tag(self, image: str, repository: str, tag: str) -> bool:
        self.tagged.append((image, repository, tag))
        return True

    def push(self, repository: str, **kw: Any) -> Any:
        assert kw["auth_config"] == {"username": "AWS", "password": "pw-123456"} and kw["stream"] and kw["decode"]
        return iter(self.events)


class FakeClient:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.api = FakeApi(events)


def test_push_returns_the_digest_and_fails_on_an_error_event() -> None:
    ok = FakeClient([{"status": "Preparing", "id": "l1", "progressDetail": {}},
                     {"status": "Pushed", "id": "l1", "progressDetail": {}},
                     {"aux": {"Tag": "t", "Digest": D1, "Size": 5}}])
    events: list[Any] = []
    auth = {"username": "AWS", "password": "pw-123456"}
    assert _docker.push(ok, image_id="sha256:i", reference="h/r", tag="t", auth_config=auth,
                        report=events.append) == D1
    assert ok.api.tagged == [("sha256:i", "h/r", "t")] and events[-1] == Transfer("l1", 0, 0, done=True)
    failed = FakeClient([{"status": "Preparing", "id": "l1", "progressDetail": {}},
                         {"errorDetail": {"message": "denied: no basic auth credentials"},
                          "error": "denied: no basic auth credentials"}])
    with pytest.raises(DockerError, match="no basic auth credentials"):
        _docker.push(failed, image_id="sha256:i", reference="h/r", tag="t", auth_config=auth, report=events.append)
    silent = FakeClient([{"status": "Pushed", "id": "l1", "progressDetail": {}}])
    with pytest.raises(DockerError, match="without a digest"):
        _docker.push(silent, image_id="sha256:i", reference="h/r", tag="t", auth_config=auth, report=events.append)
