"""Error text never carries an AWS response body or a request value (reconciler/error_text.py).

Plain data through botocore's own parsers and validators (no client, no network): the
exceptions here are the ones botocore raises for a garbled answer or a bad parameter.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import botocore.parsers
import botocore.session
import botocore.validate
import pytest

from reconciler.engine.unparseable import refuse_unreadable
from reconciler.error_text import MAX_MESSAGE, describe_error
from reconciler.errors import DockerError, UnreadableResponseError
from reconciler.secret import Secret

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
CREATE_ACCESS_KEY = (
    '<CreateAccessKeyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><CreateAccessKeyResult>'
    "<AccessKey><UserName>ci-bot</UserName><AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
    f"<SecretAccessKey>{SECRET}</SecretAccessKey><CreateDate>2026-01-01T00:00:00Z</CreateDate></AccessKey>"
    "</CreateAccessKeyResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata>"
    "</CreateAccessKeyResponse>").encode()


def model(service: str, operation: str) -> Any:
    return botocore.session.get_session().get_service_model(service).operation_model(operation)


def response(body: bytes, status: int = 200) -> dict[str, Any]:
    return {"status_code": status, "headers": {}, "body": body}


def garbled(body: bytes) -> bytes:
    at = body.rfind(b"<")
    return body[:at] + b"\x00" + body[at:]


def test_a_garbled_answer_parsed_by_botocore_is_described_without_its_body() -> None:
    parser = botocore.parsers.create_parser("query")
    with pytest.raises(botocore.parsers.ResponseParserError) as caught:
        parser.parse(response(garbled(CREATE_ACCESS_KEY)), model("iam", "CreateAccessKey").output_shape)
    assert SECRET in str(caught.value)  # what botocore would have printed
    text = describe_error(caught.value)
    assert SECRET not in text and "AccessKey" not in text
    assert text.startswith("ResponseParserError: AWS's answer could not be parsed; it is not shown")


def test_a_parameter_error_names_the_parameter_never_its_value() -> None:
    shape = model("secretsmanager", "PutSecretValue").input_shape
    report = botocore.validate.ParamValidator().validate({"SecretId": "x", "SecretString": [SECRET]}, shape)
    exc = botocore.exceptions.ParamValidationError(report=report.generate_report())
    assert SECRET in str(exc)  # what botocore would have printed
    text = describe_error(exc)
    assert SECRET not in text
    assert "SecretString" in text and "not shown" in text


def test_a_client_error_is_its_code_and_message_on_one_line_with_known_secrets_masked() -> None:
    Secret(SECRET)
    error = botocore.exceptions.ClientError(
        {"Error": {"Code": "ValidationException", "Message": f"Value '{SECRET}'\nat 'secretString' is bad"},
         "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutSecretValue")
    assert describe_error(error) == "ValidationException: Value '(sensitive)' at 'secretString' is bad"
    long = botocore.exceptions.ClientError({"Error": {"Code": "X", "Message": "y" * 5000}}, "Op")
    assert len(describe_error(long)) == MAX_MESSAGE
    assert describe_error(botocore.exceptions.ClientError({}, "Op")) == "UnknownError"


def test_botocore_errors_show_their_text_only_when_it_is_known_to_be_safe() -> None:
    safe = botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    assert describe_error(safe) == 'EndpointConnectionError: Could not connect to the endpoint URL: "http://127.0.0.1:1"'
    other = botocore.exceptions.ChecksumError(checksum_type="crc32", expected_checksum=SECRET, actual_checksum="b")
    assert describe_error(other) == "ChecksumError (details not shown: they may hold request or response data)"


def test_our_own_errors_are_shown_as_written_but_masked() -> None:
    Secret(SECRET)
    assert describe_error(DockerError(f"push failed:\n  token {SECRET}")) == "push failed:\n  token (sensitive)"


# -- the before-parse hook -------------------------------------------------------

def test_an_unparseable_success_raises_without_its_body() -> None:
    with pytest.raises(UnreadableResponseError) as caught:
        refuse_unreadable(model("iam", "CreateAccessKey"), response(garbled(CREATE_ACCESS_KEY)))
    assert SECRET not in str(caught.value)
    assert str(caught.value).startswith("iam:CreateAccessKey: AWS's answer (HTTP 200) could not be parsed")
    # JSON: botocore would read it as an empty success (a listing of nothing)
    body = b'{"SecretList": [{"Name": "x", "SecretString": "' + SECRET.encode() + b'"}]\x00}'
    with pytest.raises(UnreadableResponseError) as caught:
        refuse_unreadable(model("secretsmanager", "ListSecrets"), response(body))
    assert SECRET not in str(caught.value)
    with pytest.raises(UnreadableResponseError):
        refuse_unreadable(model("ssm", "DescribeParameters"), response(b'{"Parameters": [\xff]}'))  # not UTF-8


@pytest.mark.parametrize(("service", "operation", "protocol"), [
    ("ssm", "GetParameter", "json"), ("iam", "GetUser", "query"), ("ec2", "DescribeVpcs", "ec2")])
def test_an_unparseable_error_is_replaced_by_one_that_says_so(service: str, operation: str, protocol: str) -> None:
    answer = response(b"<html>" + SECRET.encode() + b"</oops", status=503)
    refuse_unreadable(model(service, operation), answer)
    parsed = botocore.parsers.create_parser(protocol).parse(answer, model(service, operation).output_shape)
    assert parsed["Error"]["Code"] == "UnparseableErrorResponse"
    assert parsed["Error"]["Message"] == "AWS answered HTTP 503 with a body that could not be parsed"
    assert SECRET.encode() not in answer["body"]


def test_well_formed_and_empty_answers_are_left_alone() -> None:
    for operation, body in ((model("iam", "CreateAccessKey"), CREATE_ACCESS_KEY),
                            (model("ssm", "GetParameter"), b'{"Parameter": {"Name": "x"}}'),
                            (model("ssm", "DeleteParameter"), b""),
                            (model("lambda", "Invoke"), b"a raw payload, not JSON")):
        answer = response(body)
        refuse_unreadable(operation, answer)
        assert answer["body"] == body
