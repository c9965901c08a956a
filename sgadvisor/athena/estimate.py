"""How many bytes the edge query will scan, known before it runs (``--max-bytes``).

Athena bills the bytes it reads from S3: for gzip text the whole compressed file, for Parquet the column
chunks the query needs (at most the file). The query reads the partitions its predicates keep
(partitions.py), so the estimate is the size of the objects under those partitions' locations:

* partition projection: the partitions projection yields for the window (enum keys: every value),
  located by ``storage.location.template`` (else the Hive ``key=value`` layout), listed with
  ListObjectsV2 (s3:ListBucket);
* partitions in the Glue catalog (Hive-compatible prefixes after MSCK REPAIR TABLE, or ALTER TABLE ADD
  PARTITION): glue:GetPartitions, kept as the predicates keep them, each location listed;
* no partitions: everything under the table's location.

The figure is exact for text and an upper bound for Parquet; listing costs S3 LIST requests, not scans.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sgadvisor.athena.ddl import TableScheme
from sgadvisor.athena.partitions import (
    DEFAULT_SLACK,
    Slack,
    partition_in_window,
    partition_location,
    projected_partitions,
)
from sgadvisor.athena.runner import split_s3_uri
from sgadvisor.errors import AwsError
from sgadvisor.flowlogs.edges import Window


@dataclass(frozen=True)
class ScanEstimate:
    bytes: int
    objects: int
    partitions: int


def estimate_scan(
    scheme: TableScheme,
    window: Window,
    *,
    s3: Any,
    glue: Any | None = None,
    slack: Slack = DEFAULT_SLACK,
    progress: Callable[[str], None] = lambda message: None,
) -> ScanEstimate:
    """The bytes under the partitions the query will read (see the module docstring)."""
    from sgadvisor.aws.clients import aws_errors

    if not scheme.partition_keys:
        locations = [scheme.location or ""]
    elif scheme.projection_enabled:
        locations = [
            partition_location(scheme, values) for values in projected_partitions(scheme, window, slack)
        ]
    else:
        if glue is None or scheme.database is None:
            raise AwsError(
                f"{scheme.qualified_name} keeps its partitions in the Glue catalog: estimating the scan "
                "needs glue:GetPartitions",
                hint="drop --max-bytes, or use a table with partition projection (sgadvisor athena-ddl)",
            )
        with aws_errors(f"GetPartitions {scheme.database}.{scheme.name}"):
            locations = _glue_locations(glue, scheme, window, slack)
    total = objects = 0
    for location in locations:
        if not location.startswith("s3://"):
            raise AwsError(f"{scheme.qualified_name}: location {location!r} is not in S3")
        bucket, prefix = split_s3_uri(location)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        with aws_errors(f"ListObjectsV2 s3://{bucket}/{prefix}"):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    total += int(item.get("Size", 0))
                    objects += 1
    progress(f"estimated Athena scan of {scheme.qualified_name}: {total:,} bytes in {objects} objects")
    return ScanEstimate(total, objects, len(locations))


def _glue_locations(glue: Any, scheme: TableScheme, window: Window, slack: Slack) -> list[str]:
    names = [k.name for k in scheme.partition_keys]
    locations = []
    paginator = glue.get_paginator("get_partitions")
    for page in paginator.paginate(DatabaseName=scheme.database, TableName=scheme.name):
        for partition in page.get("Partitions", []):
            values = dict(zip(names, partition.get("Values", []), strict=False))
            if partition_in_window(scheme, values, window, slack):
                location = partition.get("StorageDescriptor", {}).get("Location")
                if location:
                    locations.append(str(location))
    return sorted(set(locations))
