"""Files a manifest names: never outside its tree, never a pipe or a device, never quoted back.

Each case runs `reconcile validate` as a separate process with a timeout, so a
read that blocks (a FIFO with no writer, `/dev/stdin` on an idle pipe) fails the
test instead of hanging it. The secret-looking canary written into files outside
the tree, or into a broken policy, must appear in no output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.manifest.paths import PathRefused, read_regular, resolve_inside, tree_root
from tests.conftest import ROOT

CANARY = "root:$6$CANARY-shadow-hash-do-not-print$"
HEAD = "version: 1\nstack: demo\nregion: eu-west-1\n"
TIMEOUT = 30


def validate(*args: str, cwd: Path, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    """`reconcile validate ARGS` in a process of its own; a hang fails the test after TIMEOUT seconds."""
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "reconciler.cli", "validate", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT, stdin=stdin)


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 3, out
    assert "Traceback" not in out
    assert CANARY not in out and "CANARY" not in out
    for word in words:
        assert word in result.stderr, result.stderr


def images_manifest(context: str, dockerfile: str | None = None) -> str:
    extra = f"    dockerfile: {json.dumps(dockerfile)}\n" if dockerfile else ""
    return (HEAD + "ecr:\n  repositories: [{name: app}]\nimages:\n  - repository: app\n"
            f"    context: {json.dumps(context)}\n{extra}    tags: [\"1.0.0\"]\n")


def policy_manifest(file: str) -> str:
    return (HEAD + "iam:\n  groups:\n    - name: readers\n"
            f"      inline_policies: {{read: {{file: {json.dumps(file)}}}}}\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A manifest directory (not in any repository) with a secret file just outside it."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "shadow").write_text(CANARY + "\n", encoding="utf-8")
    (tmp_path / "outside" / "policy.json").write_text(json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": CANARY, "Resource": "*"}]}))
    repo = tmp_path / "repo"
    (repo / "ctx").mkdir(parents=True)
    (repo / "ctx" / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /\n", encoding="utf-8")
    (repo / "ctx" / "app.txt").write_text("hello\n", encoding="utf-8")
    return repo


# --- paths outside the tree -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("dockerfile", "words"), [
    ("../../outside/shadow", ["$.images[0].dockerfile", "leads outside its build context 'ctx'"]),
    ("../Dockerfile.outside-ctx", ["$.images[0].dockerfile", "leads outside its build context 'ctx'"]),
    ("/etc/shadow", ["$.images[0].dockerfile", "is an absolute path"]),
])
def test_a_dockerfile_outside_its_context_is_refused_without_reading_it(
        tree: Path, dockerfile: str, words: list[str]) -> None:
    (tree / "Dockerfile.outside-ctx").write_text(CANARY, encoding="utf-8")  # inside the tree, outside the context
    (tree / "m.yaml").write_text(images_manifest("ctx", dockerfile), encoding="utf-8")
    assert_refused(validate("m.yaml", cwd=tree), "m.yaml:", *words)


def test_a_dockerfile_symlinked_out_of_its_context_is_refused(tree: Path) -> None:
    (tree / "ctx" / "Dockerfile").unlink()
    (tree / "ctx" / "Dockerfile").symlink_to(tree.parent / "outside" / "shadow")
    (tree / "m.yaml").write_text(images_manifest("ctx"), encoding="utf-8")
    assert_refused(validate("m.yaml", cwd=tree), "m.yaml:8:14: $.images[0].context: Dockerfile 'Dockerfile' leads "
                                                 "outside its build context 'ctx'")


@pytest.mark.parametrize(("context", "words"), [
    ("../outside", ["m.yaml:8:14: $.images[0].context: build context '../outside' leads outside the manifest's "
                    "directory"]),
    ("/", ["build context '/' is an absolute path"]),
    ("link", ["build context 'link' leads outside the manifest's directory"]),
])
def test_a_build_context_outside_the_tree_is_refused(tree: Path, context: str, words: list[str]) -> None:
    (tree / "link").symlink_to(tree.parent / "outside")
    (tree / "m.yaml").write_text(images_manifest(context), encoding="utf-8")
    assert_refused(validate("m.yaml", cwd=tree), *words)


@pytest.mark.parametrize(("file", "words"), [
    ("../outside/policy.json", ["m.yaml:7:38: $.iam.groups[0].inline_policies.read.file: policy file "
                                "'../outside/policy.json' leads outside the manifest's directory"]),
    ("link.json", ["policy file 'link.json' leads outside the manifest's directory"]),
    ("/etc/passwd", ["policy file '/etc/passwd' is an absolute path"]),
])
def test_a_policy_file_outside_the_tree_is_refused_and_never_lands_in_a_plan(
        tree: Path, file: str, words: list[str]) -> None:
    (tree / "link.json").symlink_to(tree.parent / "outside" / "policy.json")
    (tree / "m.yaml").write_text(policy_manifest(file), encoding="utf-8")
    assert_refused(validate("m.yaml", cwd=tree), *words)


def test_a_path_inside_the_repository_but_beside_the_manifest_is_allowed(tmp_path: Path) -> None:
    # the common layout: infra/stack.yaml next to services/app/; the repository is the tree
    (tmp_path / ".git").mkdir()
    (tmp_path / "services" / "app").mkdir(parents=True)
    (tmp_path / "services" / "app" / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.json").write_text(json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "m.yaml").write_text(
        images_manifest("../services/app") + "iam:\n  groups:\n    - name: readers\n"
        "      inline_policies: {read: {file: ../policies/p.json}}\n", encoding="utf-8")
    result = validate("infra/m.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert tree_root(tmp_path / "infra") == tmp_path.resolve()


# --- policy content is never quoted -----------------------------------------------------------------------------

@pytest.mark.parametrize("document", [
    {"Version": CANARY, "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]},
    {"Version": "2012-10-17", "Statement": [{"Effect": CANARY, "Action": "s3:*", "Resource": "*"}]},
    {"Version": "2012-10-17", "Statement": [{CANARY: "x", "Effect": "Allow", "Action": "s3:*"}]},
    {"Version": "2012-10-17", "Statement": [{"Sid": CANARY, "Effect": "Allow", "Action": "s3:*"}]},
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": {CANARY: 1}}]},
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {CANARY: "x"}, "Action": "s3:*"}]},
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Condition": {CANARY: "x"}}]},
    {"Version": "2012-10-17", "Statement": CANARY},
    [CANARY],
])
def test_a_broken_policy_file_is_reported_without_its_content(tree: Path, document: object) -> None:
    (tree / "p.json").write_text(json.dumps(document), encoding="utf-8")
    (tree / "m.yaml").write_text(policy_manifest("p.json"), encoding="utf-8")
    assert_refused(validate("m.yaml", cwd=tree), "p.json: not a valid IAM policy at $")


def test_invalid_json_in_a_policy_file_is_reported_by_position_only(tree: Path) -> None:
    (tree / "p.json").write_text('{"Version": "2012-10-17",\n "Statement": ' + CANARY + "}", encoding="utf-8")
    (tree / "m.yaml").write_text(policy_manifest("p.json"), encoding="utf-8")
    assert_refused(validate("m.yaml", cwd=tree), "p.json:2:15: invalid JSON: Expecting value")


def test_a_deeply_nested_policy_file_is_a_clear_error(tree: Path) -> None:
    (tree / "p.json").write_text("[" * 60_000 + "]" * 60_000, encoding="utf-8")
    (tree / "m.yaml").write_text(policy_manifest("p.json"), encoding="utf-8")
    assert_refused(validate("m.yaml", cwd=tree), "p.json")


# --- pipes and devices are never read -----------------------------------------------------------------------------

def test_a_fifo_manifest_is_refused_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "m.yaml")  # no writer: an open() for reading would block forever
    assert_refused(validate("m.yaml", cwd=tmp_path), "m.yaml:1:1: $: the manifest 'm.yaml' is a named pipe (FIFO), "
                                                     "not a regular file")


@pytest.mark.parametrize("device", ["/dev/stdin", "/dev/zero"])
def test_stdin_and_devices_are_refused_as_manifests(tmp_path: Path, device: str) -> None:
    # stdin is a pipe that never ends: reading it would hang; /dev/zero would fill memory
    proc = subprocess.Popen(["sleep", str(TIMEOUT * 2)], stdout=subprocess.PIPE)
    try:
        result = validate(device, cwd=tmp_path, stdin=proc.stdout.fileno() if proc.stdout else None)
    finally:
        proc.kill()
        proc.wait()
    assert_refused(result, f"{device}:1:1: $: the manifest '{device}' is a", "not a regular file",
                   "pass the manifest as a regular file")


def test_a_fifo_policy_file_is_refused_at_once(tree: Path) -> None:
    os.mkfifo(tree / "p.json")
    (tree / "m.yaml").write_text(policy_manifest("p.json"), encoding="utf-8")
    assert_refused(validate("m.yaml", cwd=tree), "policy file 'p.json' is a named pipe (FIFO), not a regular file")


def test_a_fifo_dockerfile_is_refused_at_once(tree: Path) -> None:
    (tree / "ctx" / "Dockerfile").unlink()
    os.mkfifo(tree / "ctx" / "Dockerfile")
    (tree / "m.yaml").write_text(images_manifest("ctx"), encoding="utf-8")
    assert_refused(validate("m.yaml", cwd=tree), "Dockerfile 'Dockerfile' is a named pipe (FIFO)")


def test_a_fifo_in_the_build_context_is_never_read(tree: Path) -> None:
    os.mkfifo(tree / "ctx" / "pipe")  # the SDK's tar skips FIFOs too; hashing must not block on it
    (tree / "m.yaml").write_text(images_manifest("ctx"), encoding="utf-8")
    result = validate("m.yaml", cwd=tree)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("make", "words"), [
    (lambda p: os.mkfifo(p), ["ctx/.dockerignore is a named pipe (FIFO), not a regular file"]),
    (lambda p: p.write_bytes(b"# notes\n\xff\xfe secret\n"), ["ctx/.dockerignore is not UTF-8 text (line 2)"]),
    (lambda p: p.symlink_to("/dev/zero"), ["ctx/.dockerignore leads outside the build context"]),
])
def test_an_unusable_dockerignore_is_a_manifest_error(tree: Path, make: object, words: list[str]) -> None:
    assert callable(make)
    make(tree / "ctx" / ".dockerignore")
    (tree / "m.yaml").write_text(images_manifest("ctx"), encoding="utf-8")
    assert_refused(validate("m.yaml", cwd=tree), "m.yaml:8:14: $.images[0].context:", *words)


# --- the primitives, on plain data ------------------------------------------------------------------------------

def test_resolve_inside_decides_from_the_path(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "a").mkdir()
    assert resolve_inside(root, root / "a", "../b.json", "f", "the tree") == root / "b.json"
    for written in ("../../b.json", "/etc/passwd", "a/\0b"):
        with pytest.raises(PathRefused):
            resolve_inside(root, root / "a", written, "f", "the tree")
    (root / "loop").symlink_to(root / "loop")
    with pytest.raises(PathRefused):
        resolve_inside(root, root, "loop", "f", "the tree")


def test_read_regular_is_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 5000)
    data, size = read_regular(big, "big", "f", 100)
    assert len(data) == 101 and size == 5000
    with pytest.raises(PathRefused):
        read_regular(tmp_path, "dir", "f", 100)


def test_the_inputs_digest_never_reads_a_dockerfile_outside_its_context(tree: Path) -> None:
    from reconciler.manifest.image_inputs import DockerignoreError, inputs_digest

    # expansion's own guard, behind validation's: the SDK would read such a file and send it to the daemon
    for dockerfile in ("../../outside/shadow", "/etc/shadow"):
        with pytest.raises(PathRefused):
            inputs_digest(tree / "ctx", dockerfile)
    (tree / "ctx" / ".dockerignore").write_bytes(b"\xff")
    with pytest.raises(DockerignoreError):
        inputs_digest(tree / "ctx")
