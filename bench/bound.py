"""The least AWS calls a no-op plan (and a drift check) of a manifest can make.

From issue 14: one paginated read per resource type, plus per-resource reads only
where AWS has no batch form:
- per IAM user: `ListAccessKeys` and `GetLoginProfile` (GetAccountAuthorizationDetails
  returns neither keys nor the console password);
- per ECR repository: `ListTagsForResource`, `GetLifecyclePolicy`, `GetRepositoryPolicy`
  (DescribeRepositories returns none of them);
- per VPC: `DescribeVpcAttribute` twice (enableDnsSupport, enableDnsHostnames: one
  attribute per call).
A key store type (SSM parameters, Secrets Manager secrets) in use is one more
resource type: its tags come from a batch API (ListSecrets, the Resource Groups
Tagging API), never one call per parameter. Drift also reads each access key's last
use (`GetAccessKeyLastUsed`, no batch form): one more call per key.

Pages are not counted: one "paginated read" is one call at these sizes for every API
here but the largest listings (the bench's largest manifest stays under every page
limit that matters but DescribeSubnets' and DescribeRouteTables', whose pages of 1,000
it does not reach). Invariant: the bound depends only on the counts given, never on AWS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

PER_RESOURCE_READS: Mapping[str, int] = {
    "iam.user": 2,  # ListAccessKeys, GetLoginProfile
    "ecr.repository": 3,  # ListTagsForResource, GetLifecyclePolicy, GetRepositoryPolicy
    "ec2.vpc": 2,  # DescribeVpcAttribute x2
}
DRIFT_PER_RESOURCE_READS: Mapping[str, int] = {"iam.access_key": 1}  # GetAccessKeyLastUsed


def plan_bound(counts: Mapping[str, int], key_stores: Iterable[str] = ()) -> int:
    """Least calls of a no-op plan: `counts` is resources per kind in the manifest, `key_stores`
    the store types its access keys use (e.g. "ssm", "secretsmanager")."""
    types = sum(1 for n in counts.values() if n > 0) + len(set(key_stores))
    return types + sum(PER_RESOURCE_READS.get(kind, 0) * n for kind, n in counts.items())


def drift_bound(counts: Mapping[str, int], key_stores: Iterable[str] = ()) -> int:
    """Least calls of a drift check: the plan's, plus one per access key (its last use)."""
    return plan_bound(counts, key_stores) + sum(DRIFT_PER_RESOURCE_READS.get(kind, 0) * n
                                                for kind, n in counts.items())
