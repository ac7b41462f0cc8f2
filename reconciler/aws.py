"""The one idiom for AWS error codes (ground floor).

Every "that is already gone" and "that does not exist" is said here once per API
family, so a kind says *what* it tolerates (`absent_ok("ec2")`) rather than listing
codes by hand. Only `botocore.exceptions.ClientError` carries a code; anything else
(a connection error, a bug) always propagates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from botocore.exceptions import ClientError

T = TypeVar("T")

# What each API family answers for a resource that does not exist (or no longer does).
NOT_FOUND: dict[str, frozenset[str]] = {
    "ec2": frozenset({
        "InvalidVpcID.NotFound", "InvalidSubnetID.NotFound", "InvalidInternetGatewayID.NotFound",
        "InvalidAllocationID.NotFound", "InvalidAssociationID.NotFound", "NatGatewayNotFound",
        "InvalidNatGatewayID.NotFound", "InvalidInstanceID.NotFound", "InvalidRouteTableID.NotFound",
        "InvalidRoute.NotFound", "InvalidVpcEndpointId.NotFound", "InvalidVpcEndpoint.NotFound",
        "InvalidGroup.NotFound", "InvalidGroupId.NotFound", "InvalidPermission.NotFound",
        "InvalidNetworkAclID.NotFound", "InvalidNetworkAclEntry.NotFound", "InvalidNetworkInterfaceID.NotFound",
        "Gateway.NotAttached", "InvalidAddress.NotFound",
    }),
    "iam": frozenset({"NoSuchEntity"}),
    "ecr": frozenset({"RepositoryNotFoundException", "ImageNotFoundException", "LifecyclePolicyNotFoundException",
                      "RepositoryPolicyNotFoundException"}),
    "ssm": frozenset({"ParameterNotFound"}),
    "secretsmanager": frozenset({"ResourceNotFoundException"}),
    "kms": frozenset({"NotFoundException"}),
    "sts": frozenset(),
}


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or '' for anything else."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _codes(family_or_codes: tuple[str, ...]) -> frozenset[str]:
    """`("ec2",)` means that family's NotFound codes; any other entry is a code itself."""
    out: set[str] = set()
    for item in family_or_codes:
        out |= NOT_FOUND.get(item, frozenset({item}))
    return frozenset(out)


def is_absent(exc: BaseException, *family_or_codes: str) -> bool:
    """Whether `exc` is an AWS "not found" of the given families (or one of the given codes)."""
    return error_code(exc) in _codes(family_or_codes)


@contextmanager
def absent_ok(*family_or_codes: str) -> Iterator[None]:
    """Absent is fine: swallow a ClientError whose code is one of these; re-raise anything else.

    Deletes and detaches use it so that a re-run after a crash, or a resource removed by hand
    meanwhile, is not a failure.
    """
    try:
        yield
    except ClientError as exc:
        if error_code(exc) not in _codes(family_or_codes):
            raise


def absent_none(call: Callable[[], T], *family_or_codes: str) -> T | None:
    """Absent is None: `call()`, or None when AWS answers with one of these codes."""
    with absent_ok(*family_or_codes):
        return call()
    return None
