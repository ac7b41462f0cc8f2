"""Command-line checks of the fleet that need no AWS: exit 3 before any call (no endpoint is configured)."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_cli_inputs import assert_one_line_exit_3, reconcile


def _manifest(stack: str, account: str) -> str:
    return (f"version: 1\nstack: {stack}\nregion: eu-west-1\naccount: \"{account}\"\n"
            "assume_role: {role_name: reconciler}\niam:\n  users:\n    - name: app\n")


def test_validate_expands_a_quoted_glob_and_refuses_a_stack_named_twice(tmp_path: Path) -> None:
    (tmp_path / "fleet").mkdir()
    (tmp_path / "fleet" / "a.yaml").write_text(_manifest("dev", "111111111111"))
    (tmp_path / "fleet" / "b.yaml").write_text(_manifest("prod", "222222222222"))
    result = reconcile(["validate", "fleet/*.yaml"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "fleet/a.yaml: valid" in result.stderr and "fleet/b.yaml: valid" in result.stderr, result.stderr
    (tmp_path / "fleet" / "c.yaml").write_text(_manifest("dev", "111111111111"))
    doubled = reconcile(["validate", "fleet/*.yaml"], tmp_path)
    assert doubled.returncode == 3 and "Traceback" not in doubled.stderr, doubled.stderr
    assert "two manifests name the same stack: 111111111111/eu-west-1/dev in fleet/a.yaml, fleet/c.yaml" \
        in doubled.stderr.splitlines()[-1], doubled.stderr


def test_assume_role_with_several_manifests_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_manifest("dev", "111111111111"))
    (tmp_path / "b.yaml").write_text(_manifest("prod", "222222222222"))
    for command in (["drift"], ["plan"], ["apply", "--auto-approve"]):
        result = reconcile([*command, "a.yaml", "b.yaml", "--assume-role", "arn:aws:iam::111111111111:role/x"],
                           tmp_path)
        assert_one_line_exit_3(result, "--assume-role names one account's role, so it takes one manifest")
