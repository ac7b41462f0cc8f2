"""`assume_role:` and `--assume-role`: the model, the role each stack assumes, and the ARN it is built into.

No AWS call here: the integration tests (tests/integration/test_assume_role.py) assume roles in moto.
The bad-input cases are in the corpus (tests/unit/bad/sem-role-*.yaml).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.engine.clients import RoleToAssume, role_arn_for
from reconciler.engine.credentials import process_command
from reconciler.engine.run import Options, flag_role, stack_role
from reconciler.errors import UsageError
from reconciler.manifest.model import AssumeRole, default_session_name
from reconciler.manifest.validate import load_manifest
from reconciler.secret import MASK, Secret

BAD = Path(__file__).resolve().parent / "bad"


def manifest(tmp_path: Path, role: str, *, region: str = "eu-west-1", account: str | None = "111111111111",
             stack: str = "fleet-dev") -> Path:
    text = f"version: 1\nstack: {stack}\nregion: {region}\n"
    if account:
        text += f'account: "{account}"\n'
    path = tmp_path / "m.yaml"
    path.write_text(text + f"assume_role: {role}\n")
    return path



def test_the_manifest_model_reads_every_field_and_masks_the_external_id(tmp_path: Path) -> None:
    path = manifest(tmp_path, '{role_name: reconciler, external_id: "ext-1234-abcd", session_name: dev-run, '
                              "duration: 7200}")
    loaded, _ = load_manifest(path)
    role = loaded.assume_role
    assert role == AssumeRole(role_name="reconciler", external_id=Secret("ext-1234-abcd"), session_name="dev-run",
                              duration=7200)
    assert role is not None and role.external_id is not None and role.external_id.reveal() == "ext-1234-abcd"
    assert "ext-1234-abcd" not in repr(role) and MASK in repr(role)


def test_without_assume_role_there_is_no_role(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("version: 1\nstack: plain\nregion: eu-west-1\n")
    loaded, _ = load_manifest(path)
    assert loaded.assume_role is None
    assert stack_role(loaded, Options()) is None


@pytest.mark.parametrize(("region", "partition"), [("eu-west-1", "aws"), ("cn-north-1", "aws-cn"),
                                                   ("cn-northwest-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")])
def test_a_role_name_becomes_an_arn_in_the_regions_partition(tmp_path: Path, region: str, partition: str) -> None:
    assert role_arn_for("reconciler", "111111111111", region) == f"arn:{partition}:iam::111111111111:role/reconciler"
    loaded, _ = load_manifest(manifest(tmp_path, "{role_name: reconciler}", region=region))
    role = stack_role(loaded, Options())
    assert role == RoleToAssume(f"arn:{partition}:iam::111111111111:role/reconciler",
                                session_name="reconciler-fleet-dev", duration=3600)


def test_the_default_session_name_is_cut_to_64_characters(tmp_path: Path) -> None:
    stack = "s" + "x" * 62
    assert default_session_name(stack) == ("reconciler-" + stack)[:64] and len(default_session_name(stack)) == 64
    loaded, _ = load_manifest(manifest(tmp_path, "{role_name: reconciler}", stack=stack))
    role = stack_role(loaded, Options())
    assert role is not None and role.session_name == default_session_name(stack)


def test_a_role_arn_is_used_as_written(tmp_path: Path) -> None:
    loaded, _ = load_manifest(manifest(tmp_path, "{role_arn: 'arn:aws:iam::111111111111:role/ops/reconciler'}"))
    role = stack_role(loaded, Options())
    assert role is not None and role.arn == "arn:aws:iam::111111111111:role/ops/reconciler"
    assert role.account == "111111111111"


def test_the_flag_replaces_the_arn_and_keeps_the_rest(tmp_path: Path) -> None:
    path = manifest(tmp_path, '{role_name: reconciler, external_id: "ext-5678-efgh", session_name: dev-run, '
                              "duration: 1800}")
    loaded, _ = load_manifest(path)
    role = stack_role(loaded, Options(assume_role="arn:aws:iam::111111111111:role/break-glass"))
    assert role == RoleToAssume("arn:aws:iam::111111111111:role/break-glass", session_name="dev-run", duration=1800,
                                external_id=Secret("ext-5678-efgh"))
    assert role.assume_role_args() == {"RoleSessionName": "dev-run", "DurationSeconds": 1800,
                                       "ExternalId": "ext-5678-efgh"}
    assert "ext-5678-efgh" not in repr(role)


def test_the_flag_alone_assumes_a_role_for_a_manifest_without_one(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("version: 1\nstack: plain\nregion: eu-west-1\n")
    loaded, _ = load_manifest(path)
    role = stack_role(loaded, Options(assume_role="arn:aws:iam::222222222222:role/reconciler"))
    assert role == RoleToAssume("arn:aws:iam::222222222222:role/reconciler", session_name="reconciler-plain")
    assert "ExternalId" not in role.assume_role_args()


@pytest.mark.parametrize(("arn", "words"), [
    ("arn:aws:iam::222222222222:role/reconciler", "is a role of account 222222222222, but the manifest says "
                                                   "account: '111111111111'"),
    ("arn:aws-cn:iam::111111111111:role/reconciler", "is in partition aws-cn, but eu-west-1 is in aws; use "
                                                      "arn:aws:iam::111111111111:role/reconciler"),
    ("arn:aws:iam::111111111111:user/reconciler", "is not an IAM role ARN"),
])
def test_a_flag_for_another_account_or_partition_is_refused_before_any_call(tmp_path: Path, arn: str,
                                                                             words: str) -> None:
    loaded, _ = load_manifest(manifest(tmp_path, "{role_name: reconciler}"))
    with pytest.raises(UsageError, match="--assume-role") as caught:
        stack_role(loaded, Options(assume_role=arn))
    assert words in str(caught.value)


def test_export_takes_the_flag_without_a_manifest() -> None:
    assert flag_role("arn:aws-us-gov:iam::111111111111:role/r", "us-gov-west-1").arn.startswith("arn:aws-us-gov:")
    with pytest.raises(UsageError, match="partition aws, but us-gov-west-1 is in aws-us-gov"):
        flag_role("arn:aws:iam::111111111111:role/r", "us-gov-west-1")


@pytest.mark.parametrize("value", ["reconciler", "arn:aws:iam::111111111111:user/bob", "arn:aws:sts::1:role/x",
                                   "arn:aws:iam::111111111111:role/" + "x" * 65, ""])
@pytest.mark.parametrize("command", ["plan", "apply", "drift", "destroy", "output", "unlock"])
def test_the_flag_must_be_a_role_arn(value: str, command: str, capsys: pytest.CaptureFixture[str],
                                     keep_logging: None) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, str(BAD / "sem-role-both.yaml"), "--assume-role", value])
    err = capsys.readouterr().err
    assert exit_info.value.code == 3, err
    assert "--assume-role" in err and "not an IAM role ARN" in err, err


@pytest.mark.parametrize("command", [["credentials", "m.yaml", "--user", "u"], ["export", "--stack", "s"]])
def test_every_aws_command_has_the_flag(command: list[str], capsys: pytest.CaptureFixture[str],
                                        keep_logging: None) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--assume-role", "not-an-arn"])
    assert exit_info.value.code == 3
    assert "not an IAM role ARN" in capsys.readouterr().err


def test_validate_never_shows_the_external_id(capsys: pytest.CaptureFixture[str], keep_logging: None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BAD)
    for case in ("sem-role-external-id.yaml", "sem-role-external-id-number.yaml"):
        with pytest.raises(SystemExit) as exit_info:
            main(["validate", case])
        err = capsys.readouterr().err
        assert exit_info.value.code == 3 and "$.assume_role.external_id" in err, err
        assert "s3cr3t" not in err and "8675309" not in err, err


def test_a_random_40_character_external_id_is_not_taken_for_a_secret_key(tmp_path: Path) -> None:
    external = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12"
    loaded, _ = load_manifest(manifest(tmp_path, f'{{role_name: reconciler, external_id: "{external}"}}'))
    assert loaded.assume_role is not None
    # anywhere else, the same text is refused as a credential
    other = tmp_path / "o.yaml"
    other.write_text(f'version: 1\nstack: s\nregion: eu-west-1\ntags: {{note: "{external}"}}\n')
    with pytest.raises(Exception, match="looks like an AWS secret access key"):
        load_manifest(other)


def test_the_credential_process_line_keeps_the_flag(tmp_path: Path) -> None:
    line = process_command(tmp_path / "m.yaml", "u", Options(assume_role="arn:aws:iam::111111111111:role/r"))
    assert line.endswith("--assume-role arn:aws:iam::111111111111:role/r")
    assert "--assume-role" not in process_command(tmp_path / "m.yaml", "u", Options())


@pytest.mark.parametrize(("code", "kind"), [("AccessDenied", "TerminalAwsError"), ("Throttling", "RetryableAwsError")])
def test_a_role_that_cannot_be_assumed_is_named_with_the_code_and_what_to_do(code: str, kind: str) -> None:
    import botocore.exceptions

    from reconciler.engine.clients import assume_role_error

    role = RoleToAssume("arn:aws:iam::111111111111:role/r", external_id=Secret("ext-9999-zzzz"))
    failed = botocore.exceptions.ClientError({"Error": {"Code": code, "Message": "no"}}, "AssumeRole")
    error = assume_role_error(role, failed)
    assert type(error).__name__ == kind and error.exit_code == 1
    text = str(error)
    assert text.startswith(f"cannot assume the role arn:aws:iam::111111111111:role/r: sts:AssumeRole failed: {code}")
    assert "trust policy" in text and "names this external id" in text and text.endswith("then re-run")
    assert "ext-9999-zzzz" not in text
    unreachable = assume_role_error(role, botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"))
    assert str(unreachable).startswith("cannot reach AWS STS to assume the role arn:aws:iam::111111111111:role/r")


def test_regions_map_to_their_partitions_from_botocores_partition_data() -> None:
    from reconciler.engine.clients import partition_of
    from reconciler.manifest.aws_names import region_partitions

    regions = region_partitions()
    assert {regions["us-east-1"], regions["cn-north-1"], regions["us-gov-west-1"]} == {"aws", "aws-cn", "aws-us-gov"}
    assert not [name for name in regions if name.endswith("-global")]  # endpoint aliases, not regions
    assert regions["me-west-1"] == "aws"  # a region botocore's partitions.json has and endpoints.json lacks
    assert partition_of("cn-northwest-1") == "aws-cn"
    with pytest.raises(UsageError, match="not a region botocore knows"):
        partition_of("us-east-9")
