"""The one place that builds boto3 sessions and clients.

Retries are explicit (``standard`` mode and a fixed number of attempts) because the legacy mode that
older botocore defaults to does not retry ``LimitExceededException`` (DESIGN §7), and timeouts are explicit
so a stalled endpoint fails instead of hanging. boto3 itself honours ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>`` (botocore ≥ 1.31), which is how tests reach moto and the local CloudWatch
Logs endpoint, exactly as a user would reach a VPC endpoint.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sgadvisor import __version__
from sgadvisor.aws.control import Deadline
from sgadvisor.errors import AwsError


@dataclass(frozen=True)
class AwsSettings:
    """How to reach AWS: from --profile/--region and the standard AWS_* variables."""

    profile: str | None = None
    region: str | None = None
    retry_mode: str = "standard"
    max_attempts: int = 8
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    # --timeout: bounds every call and botocore's retries of it (control.py); no limit by default.
    deadline: Deadline = field(default_factory=Deadline, compare=False)


def make_session(settings: AwsSettings) -> Any:
    """A boto3 Session; a missing profile or region is a clear error, not a traceback."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        # AWS_REGION is what the SDKs and the AWS CLI v2 read; boto3 reads only AWS_DEFAULT_REGION.
        region = settings.region or os.environ.get("AWS_REGION") or None
        session = boto3.Session(profile_name=settings.profile, region_name=region)
    except ProfileNotFound as exc:
        raise AwsError(str(exc), hint="check --profile / AWS_PROFILE and ~/.aws/config") from None
    if not session.region_name:
        raise AwsError(
            "no AWS region: pass --region or set AWS_REGION",
            hint="offline, use --flows and --inventory instead (e.g. the bundled sample_data/)",
        )
    return session


def make_client(session: Any, service: str, settings: AwsSettings) -> Any:
    """A client with explicit retries and timeouts, identifying sgadvisor in the user agent; its requests
    and retries end with the run's deadline, and no single attempt waits longer than the deadline."""
    from botocore.config import Config

    config = Config(
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        connect_timeout=settings.deadline.cap(settings.connect_timeout),
        read_timeout=settings.deadline.cap(settings.read_timeout),
        user_agent_extra=f"sgadvisor/{__version__}",
    )
    client = session.client(service, config=config)
    settings.deadline.watch(client, settings.max_attempts)
    return client


@contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """Turn botocore's exceptions into one AwsError line naming what was being done; never a traceback,
    never credentials (only the error code and the service's own message are shown)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Error"), error.get("Message", "")
        hint = _HINTS.get(code, "see the AWS error code in the CloudWatch Logs / EC2 API reference")
        raise AwsError(f"{doing}: {code}: {message}".rstrip(": "), hint=hint) from None
    except NoCredentialsError:
        raise AwsError(
            f"{doing}: no AWS credentials found",
            hint="configure credentials (AWS_PROFILE, aws sso login, an instance role), or run offline with "
            "--flows and --inventory (e.g. sample_data/)",
        ) from None
    except NoRegionError:
        raise AwsError(f"{doing}: no AWS region", hint="pass --region or set AWS_REGION") from None
    except EndpointConnectionError as exc:
        raise AwsError(f"{doing}: cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}") from None
    except BotoCoreError as exc:
        raise AwsError(f"{doing}: {exc}") from None


_HINTS = {
    "AccessDenied": "the role needs the read-only permissions in examples/iam-policy.json",
    "AccessDeniedException": "the role needs the read-only permissions in examples/iam-policy.json",
    "UnauthorizedOperation": "the role needs the read-only permissions in examples/iam-policy.json",
    "ResourceNotFoundException": "check the log group name and the region",
    "ExpiredToken": "refresh the credentials (e.g. aws sso login)",
    "ExpiredTokenException": "refresh the credentials (e.g. aws sso login)",
    "InvalidClientTokenId": "the access key is not valid in this partition/region",
}
