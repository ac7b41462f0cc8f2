"""`reconcile credentials` without AWS: the config file it writes, and the document it makes from a store."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from reconciler.engine.credentials import document, write_profile
from reconciler.errors import AwsError, UsageError
from reconciler.secret import Secret, redact

LINE = "/venv/bin/reconcile credentials /m/app.yaml --user ci"


def test_a_new_file_gets_only_the_section_and_is_private(tmp_path: Path) -> None:
    config = tmp_path / "sub" / "config"
    assert write_profile(config, "ci", LINE) is True
    assert config.read_text() == f"[profile ci]\ncredential_process = {LINE}\n"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


def test_an_existing_file_is_appended_to_and_kept(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("# mine\n[default]\nregion = eu-west-1")  # no final newline
    assert write_profile(config, "ci", LINE) is True
    assert config.read_text() == f"# mine\n[default]\nregion = eu-west-1\n\n[profile ci]\ncredential_process = {LINE}\n"
    assert write_profile(config, "ci", LINE) is False  # idempotent
    assert config.read_text().count("[profile ci]") == 1


def test_a_profile_with_other_settings_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("[profile ci]\nregion = eu-west-1\n")
    with pytest.raises(UsageError, match="exists already"):
        write_profile(config, "ci", LINE)
    with pytest.raises(UsageError, match="exists already"):
        write_profile(config, "ci", LINE + " --region us-east-1")
    assert config.read_text() == "[profile ci]\nregion = eu-west-1\n"
    config.write_text("[default]\naws_access_key_id = x\n")
    with pytest.raises(UsageError, match=r"\[default\] exists"):
        write_profile(config, "default", LINE)


@pytest.mark.parametrize("name", ["", "a]b", "x\ny", " ci"])
def test_unusable_profile_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match="not a usable profile name"):
        write_profile(tmp_path / "config", name, LINE)
    assert not (tmp_path / "config").exists()


def test_the_document_is_the_credential_process_protocol_and_stays_a_secret() -> None:
    stored = Secret(json.dumps({"AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "s3cr3t-value-xyz",
                                "UserName": "ci", "CreateDate": "2030-01-01T00:00:00+00:00"}))
    made = document(stored, "SSM parameter /k")
    assert str(made) == "(sensitive)" and "s3cr3t-value-xyz" not in f"{made} {made!r}"
    assert json.loads(made.reveal()) == {"Version": 1, "AccessKeyId": "AKIAEXAMPLE",
                                         "SecretAccessKey": "s3cr3t-value-xyz"}
    assert redact("leaked s3cr3t-value-xyz") == "leaked (sensitive)"  # registered on its own too


@pytest.mark.parametrize("raw", ["not json, has-the-secret-in-it", "[]", '{"AccessKeyId": "A"}',
                                 '{"AccessKeyId": "A", "SecretAccessKey": ""}'])
def test_a_store_without_a_key_is_one_line_that_quotes_nothing(raw: str) -> None:
    with pytest.raises(AwsError) as caught:
        document(Secret(raw), "SSM parameter /k")
    assert "does not hold an access key" in str(caught.value)
    assert "has-the-secret" not in str(caught.value)


def test_an_endpoint_url_with_credentials_is_never_written(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.engine.credentials import process_command
    from reconciler.engine.run import Options

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(UsageError, match="holds credentials"):
        process_command("m.yaml", "ci", Options(endpoint_url="http://user:pa55word@127.0.0.1:5000"))
    line = process_command("m.yaml", "ci", Options(endpoint_url="http://127.0.0.1:5000", region="us-east-1"))
    assert line.endswith(" credentials " + str(Path("m.yaml").resolve()) +
                         " --user ci --endpoint-url http://127.0.0.1:5000 --region us-east-1")
