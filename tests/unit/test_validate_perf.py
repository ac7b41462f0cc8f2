"""Validation stays fast on big manifests and refuses alias bombs at once, in bounded memory.

The bounds here are generous so CI is never flaky; the figures measured on a
developer machine are printed (`pytest -s`) and quoted in the issue notes.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from reconciler.errors import ManifestError
from reconciler.manifest.loader import MAX_BYTES
from reconciler.manifest.validate import load_manifest

TARGET = MAX_BYTES - 16 * 1024  # just under the 1 MiB limit


def big_manifest(target: int = TARGET) -> str:
    """A valid manifest of about `target` bytes touching every section: users, repositories, VPCs."""
    head = ["version: 1", "stack: big", "region: eu-west-1", "tags: {project: big, env: test}", "iam:", "  groups:"]
    head += [f"    - {{name: group-{g}, managed_policies: [arn:aws:iam::aws:policy/ReadOnlyAccess]}}"
             for g in range(50)]
    users, repos, vpcs = ["  users:"], ["ecr:", "  repositories:"], ["network:", "  vpcs:"]
    size = sum(len(line) + 1 for line in head) + 64
    i = 0
    while size < target:
        block_u = [f"    - name: user-{i}", "      path: /apps/", f"      groups: [group-{i % 50}]",
                   f"      tags: {{team: team-{i % 7}, owner: someone-{i}}}",
                   f"      access_keys: {{count: 1, store: {{secretsmanager: big/user-{i}/access-key}}}}"]
        block_r = [f"    - name: service-{i}", "      lifecycle: {keep_last: 30, untagged_expire_days: 7}"]
        block_v: list[str] = []
        if i % 20 == 0 and i // 20 < 200:
            v = i // 20
            block_v = [f"    - name: vpc-{v}", f"      cidr: 10.{v % 250}.0.0/16", "      subnets:",
                       f"        - {{name: public-a, cidr: 10.{v % 250}.0.0/24, az: eu-west-1a, public: true}}",
                       f"        - {{name: private-a, cidr: 10.{v % 250}.10.0/24, az: eu-west-1a}}",
                       "      nat: {mode: gateway}", "      endpoints: [{service: s3}, {service: ecr.api}]",
                       "      security_groups:",
                       "        - name: app",
                       f"          ingress: [{{protocol: tcp, ports: \"8080\", from: 10.{v % 250}.0.0/16}}]"]
        for block, into in ((block_u, users), (block_r, repos), (block_v, vpcs)):
            into.extend(block)
            size += sum(len(line) + 1 for line in block)
        i += 1
    return "\n".join(head + users + repos + vpcs) + "\n"


def test_a_1_mib_manifest_validates_quickly(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(big_manifest(), encoding="utf-8")
    size = path.stat().st_size
    assert 0.95 * MAX_BYTES < size <= MAX_BYTES
    load_manifest(path)  # warm: compiles the schema once per process, as a real run does
    started = time.perf_counter()
    manifest, _ = load_manifest(path)
    elapsed = time.perf_counter() - started
    print(f"\nvalidated {size} bytes ({len(manifest.data['iam']['users'])} users) in {elapsed:.3f} s")
    assert elapsed < 5.0


def billion_laughs(levels: int = 10) -> str:
    lines = ["version: 1", "stack: bomb", "region: eu-west-1", "tags:",
             '  a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"  a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("shape", ["deep", "wide"])
def test_an_alias_bomb_is_refused_at_once_in_bounded_memory(shape: str, tmp_path: Path) -> None:
    # deep: 10^10 "lol"s if expanded; wide: as many aliases as fit in 1 MiB
    text = billion_laughs() if shape == "deep" else (
        "version: 1\nstack: bomb\nregion: eu-west-1\nx: &x [1]\ny: [" + "*x, " * ((MAX_BYTES - 100) // 4) + "*x]\n")
    path = tmp_path / "bomb.yaml"
    path.write_text(text, encoding="utf-8")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ManifestError) as error:
            load_manifest(path)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\n{shape} alias bomb ({path.stat().st_size} bytes) refused in {elapsed:.3f} s, peak {peak / 1e6:.1f} MB")
    messages = [p.message for p in error.value.problems]
    assert any(m.startswith("alias *") for m in messages)
    assert len(messages) <= 30  # reported, not listed one by one
    assert peak < 50_000_000
    assert elapsed < 5.0
