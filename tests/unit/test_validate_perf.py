"""Validation stays fast on big manifests and refuses alias bombs at once, in bounded memory.

The bounds here are generous so CI is never flaky; the figures measured on a
developer machine are printed (`pytest -s`) and quoted in the issue notes.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.errors import ManifestError
from reconciler.manifest.loader import MAX_BYTES, MAX_PROBLEMS
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


def _fill(head: str, line: Callable[[int], str], target: int = TARGET) -> str:
    out, size, i = [head], len(head), 0
    while size < target:
        out.append(line(i))
        size += len(out[-1])
        i += 1
    return "".join(out)


HOSTILE = {
    # every subnet overlaps every other: a check over pairs makes n^2 problems (the old one ran out of memory)
    "overlapping subnets": lambda: _fill(
        "version: 1\nstack: big\nregion: eu-west-1\nnetwork:\n  vpcs:\n    - name: v\n      cidr: 10.0.0.0/16\n"
        "      subnets:\n", lambda i: f"        - {{name: s{i}, cidr: 10.0.{i % 2}.0/24, az: eu-west-1a}}\n"),
    # thousands of unknown names among thousands of choices: a "did you mean" each is quadratic
    "unknown groups among many": lambda: _fill(
        "version: 1\nstack: big\nregion: eu-west-1\niam:\n  groups:\n"
        + "".join(f"    - {{name: group-{g}}}\n" for g in range(6000)) + "  users:\n",
        lambda i: f"    - {{name: u{i}, groups: [grp-{i}]}}\n"),
    # a chain of security groups written in reverse: a cycle search per edge over the whole graph is quadratic
    "security group chain": lambda: _fill(
        "version: 1\nstack: big\nregion: eu-west-1\nnetwork:\n  vpcs:\n    - name: v\n      cidr: 10.0.0.0/16\n"
        "      security_groups:\n        - {name: g00000}\n",
        lambda i: f"        - {{name: g{i + 1:05d}, ingress: [{{protocol: tcp, ports: \"1\", from: g{i:05d}}}]}}\n"),
}


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_hostile_1_mib_manifests_validate_in_bounded_memory(shape: str, tmp_path: Path) -> None:
    """Work is linear in the input: a quadratic check shows as memory (problems) or as minutes, far past these bounds.

    Speed targets are measured by `make bench`; the time bound here only catches a return of the quadratic.
    """
    from reconciler.manifest.expand import expand

    path = tmp_path / "hostile.yaml"
    path.write_text(HOSTILE[shape](), encoding="utf-8")
    assert 0.95 * MAX_BYTES < path.stat().st_size <= MAX_BYTES
    tracemalloc.start()
    started = time.perf_counter()
    try:
        try:
            manifest, _ = load_manifest(path)
            expand(manifest)
        except ManifestError as error:
            assert len(error.problems) <= MAX_PROBLEMS + 1
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\n{shape}: {path.stat().st_size} bytes in {elapsed:.2f} s (traced), peak {peak / 1e6:.0f} MB")
    assert peak < 200_000_000
    assert elapsed < 60.0


def test_overlap_sweep_reports_each_overlapping_subnet_once() -> None:
    import ipaddress

    from reconciler.manifest.sections.network import overlapping

    nets = [ipaddress.ip_network(c) for c in ("10.0.0.0/24", "10.0.1.0/24", "10.0.0.128/25", "10.0.0.0/16",
                                              "10.0.2.0/28", "10.1.0.0/24", "10.0.0.0/24")]
    pairs = overlapping([(net, i) for i, net in enumerate(nets)])
    # each pair is (later, earlier); every network that overlaps another is in a pair, the disjoint one is not
    assert {i for pair in pairs for i in pair} == {0, 1, 2, 3, 4, 6}
    assert all(later > earlier and nets[later].overlaps(nets[earlier]) for later, earlier in pairs)
    assert len(pairs) <= len(nets)
