"""The Athena table's scheme and the edge query's text: the AWS-documented CREATE TABLE statements are
read right (columns, partition keys, projection, storage), the query prunes partitions for both
documented layouts, uses the optional columns only when the table has them, and is deterministic."""

from __future__ import annotations

import pytest
import sqlglot

from sgadvisor.athena.ddl import parse_ddl, render_ddl
from sgadvisor.athena.partitions import (
    Slack,
    java_to_strftime,
    partition_in_window,
    projected_partitions,
    time_keys,
)
from sgadvisor.athena.sql import RESULT_COLUMNS, edges_sql
from sgadvisor.errors import InputError, UsageError
from sgadvisor.flowlogs.edges import PortRange, Window
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT

V5_COLUMNS = """
  version int, account_id string, interface_id string, srcaddr string, dstaddr string, srcport int,
  dstport int, protocol bigint, packets bigint, bytes bigint, start bigint, `end` bigint, action string,
  log_status string, vpc_id string, subnet_id string, instance_id string, tcp_flags int, type string,
  pkt_srcaddr string, pkt_dstaddr string, az_id string, sublocation_type string, sublocation_id string,
  pkt_src_aws_service string, pkt_dst_aws_service string, flow_direction string, traffic_path int
"""
# The documented layouts (Athena user guide, "Querying Amazon VPC flow logs"), with placeholders filled.
DATE_PARTITIONED = f"""
CREATE EXTERNAL TABLE IF NOT EXISTS `vpc_flow_logs` ({V5_COLUMNS})
PARTITIONED BY (`date` date)
ROW FORMAT DELIMITED
FIELDS TERMINATED BY ' '
LOCATION 's3://amzn-s3-demo-bucket/prefix/AWSLogs/123456789012/vpcflowlogs/eu-west-1/'
TBLPROPERTIES ("skip.header.line.count"="1");
"""
PROJECTED = f"""
CREATE EXTERNAL TABLE IF NOT EXISTS test_table_vpclogs ({V5_COLUMNS})
PARTITIONED BY (region string, day string)
ROW FORMAT DELIMITED
FIELDS TERMINATED BY ' '
LOCATION 's3://amzn-s3-demo-bucket/prefix/AWSLogs/123456789012/vpcflowlogs/'
TBLPROPERTIES
(
"skip.header.line.count"="1",
"projection.enabled" = "true",
"projection.region.type" = "enum",
"projection.region.values" = "us-east-1,eu-west-1",
"projection.day.type" = "date",
"projection.day.range" = "2021/01/01,NOW",
"projection.day.format" = "yyyy/MM/dd",
"storage.location.template" = "s3://amzn-s3-demo-bucket/prefix/AWSLogs/123456789012/vpcflowlogs/${{region}}/${{day}}"
)
"""
PARQUET_HIVE = f"""
CREATE EXTERNAL TABLE IF NOT EXISTS vpc_flow_logs_parquet ({V5_COLUMNS})
PARTITIONED BY (
  `aws-account-id` string,
  `aws-service` string,
  `aws-region` string,
  `year` string,
  `month` string,
  `day` string,
  `hour` string
)
ROW FORMAT SERDE
  'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS INPUTFORMAT
  'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat'
OUTPUTFORMAT
  'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat'
LOCATION
  's3://amzn-s3-demo-bucket/prefix/AWSLogs/'
TBLPROPERTIES (
  'EXTERNAL'='true',
  'skip.header.line.count'='1'
  )
"""
PARQUET_PROJECTED = f"""
CREATE EXTERNAL TABLE IF NOT EXISTS test_table_vpclogs_parquet ({V5_COLUMNS})
PARTITIONED BY (region string, date string, hour string)
ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat'
LOCATION 's3://amzn-s3-demo-bucket/prefix/AWSLogs/123456789012/vpcflowlogs/'
TBLPROPERTIES (
"EXTERNAL"="true",
"skip.header.line.count" = "1",
"projection.enabled" = "true",
"projection.region.type" = "enum",
"projection.region.values" = "us-east-1,eu-west-1",
"projection.date.type" = "date",
"projection.date.range" = "2021/01/01,NOW",
"projection.date.format" = "yyyy/MM/dd",
"projection.hour.type" = "integer",
"projection.hour.range" = "0,23",
"projection.hour.digits" = "2",
"storage.location.template" = "s3://amzn-s3-demo-bucket/prefix/AWSLogs/123456789012/vpcflowlogs/${{region}}/${{date}}/${{hour}}"
)
"""
# The first table AWS documented: its own column names, a dt partition added by ALTER TABLE.
LEGACY = """
CREATE EXTERNAL TABLE IF NOT EXISTS vpc_flow_logs (
  version int, account string, interfaceid string, sourceaddress string, destinationaddress string,
  sourceport int, destinationport int, protocol int, numpackets int, numbytes bigint, starttime int,
  endtime int, action string, logstatus string
)
PARTITIONED BY (dt string)
ROW FORMAT DELIMITED
FIELDS TERMINATED BY ' '
LOCATION 's3://your_log_bucket/prefix/AWSLogs/123456789012/vpcflowlogs/us-east-1'
TBLPROPERTIES ("skip.header.line.count"="1");
"""

# 2026-11-01T06:00:00Z to 2026-11-03T00:00:00Z
WINDOW = Window(1_793_512_800, 1_793_664_000)


def test_documented_statements_are_read() -> None:
    dated = parse_ddl(DATE_PARTITIONED)
    assert dated.name == "vpc_flow_logs" and dated.database is None
    assert len(dated.columns) == 28 and dated.column_for("end") is not None
    assert [(k.name, k.type) for k in dated.partition_keys] == [("date", "date")]
    assert dated.storage == "text" and dated.field_delimiter == " " and dated.skip_header_lines == 1
    projected = parse_ddl(PROJECTED)
    assert projected.projection_enabled and projected.projection("day") is not None
    day = projected.projection("day")
    assert day is not None and (day.type, day.format) == ("date", "yyyy/MM/dd")
    region = projected.projection("region")
    assert region is not None and region.values == ("us-east-1", "eu-west-1")
    assert projected.location_template is not None and projected.location_template.endswith(
        "${region}/${day}"
    )
    hive = parse_ddl(PARQUET_HIVE)
    assert hive.storage == "parquet" and not hive.projection_enabled
    assert [k.name for k in hive.partition_keys][3:] == ["year", "month", "day", "hour"]
    parquet = parse_ddl(PARQUET_PROJECTED)
    hour = parquet.projection("hour")
    assert parquet.storage == "parquet" and hour is not None and hour.digits == 2
    legacy = parse_ddl(LEGACY)
    assert legacy.column_for("interface-id") is not None and legacy.column_for("start") is not None
    assert legacy.fields[:5] == ("version", "account-id", "interface-id", "srcaddr", "dstaddr")


def test_odd_but_valid_statements() -> None:
    text = """-- the flows
    CREATE EXTERNAL TABLE flowlogs.`my flows` ( /* ids */ interface_id STRING COMMENT 'eni',
      srcaddr string, dstaddr string, protocol bigint, action string, start bigint, tags map<string,array<string>>)
    STORED AS PARQUET LOCATION 's3://b/p/'"""
    scheme = parse_ddl(text)
    assert (scheme.database, scheme.name, scheme.storage) == ("flowlogs", "my flows", "parquet")
    assert scheme.columns[-1].type == "map<string,array<string>>"
    assert scheme.qualified_name == '"flowlogs"."my flows"'
    with pytest.raises(InputError, match="JsonSerDe"):
        parse_ddl("CREATE TABLE t (a string) ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'")
    with pytest.raises(InputError, match="expected CREATE"):
        parse_ddl("SELECT 1")


def test_the_layouts_time_keys() -> None:
    assert time_keys(parse_ddl(DATE_PARTITIONED)).kind == "single"
    projected = time_keys(parse_ddl(PROJECTED))
    assert (projected.kind, projected.granularity, projected.sortable) == ("single", "day", True)
    hive = time_keys(parse_ddl(PARQUET_HIVE))
    assert (hive.kind, hive.granularity, hive.names) == (
        "components",
        "hour",
        ("year", "month", "day", "hour"),
    )
    legacy = time_keys(parse_ddl(LEGACY))
    assert legacy.kind == "single" and legacy.note is not None and "yyyy-MM-dd" in legacy.note
    unknown = parse_ddl(
        "CREATE TABLE t (interface_id string) PARTITIONED BY (acct string) LOCATION 's3://b/'"
    )
    assert time_keys(unknown).kind == "none"


def test_partition_predicates_of_each_layout() -> None:
    slack = Slack(before=300, after=3600)
    dated = edges_sql(parse_ddl(DATE_PARTITIONED), WINDOW)
    assert "\"date\" BETWEEN DATE '2026-11-01' AND DATE '2026-11-03'" in dated
    projected = edges_sql(parse_ddl(PROJECTED), WINDOW, slack=slack)
    assert "WHERE \"day\" BETWEEN '2026/11/01' AND '2026/11/03'" in projected
    hive = edges_sql(parse_ddl(PARQUET_HIVE), WINDOW, slack=slack)
    assert "\"year\" IN ('2026')" in hive and "\"month\" IN ('11')" in hive
    assert "\"day\" IN ('01', '02', '03')" in hive
    assert (
        'CAST("year" AS bigint) * 1000000 + CAST("month" AS bigint) * 10000 + CAST("day" AS bigint) * 100 + '
        'CAST("hour" AS bigint) BETWEEN 2026110105 AND 2026110300'
    ) in hive
    legacy = edges_sql(parse_ddl(LEGACY), WINDOW)
    assert "\"dt\" BETWEEN '2026-11-01' AND '2026-11-03'" in legacy
    # An integer-typed Hive key is compared as a number, a non-sortable date format by its values.
    ints = parse_ddl(PARQUET_HIVE.replace("`month` string", "`month` int"))
    assert '"month" IN (11)' in edges_sql(ints, WINDOW)
    odd = parse_ddl(PROJECTED.replace("yyyy/MM/dd", "dd-MM-yyyy"))
    assert "\"day\" IN ('01-11-2026', '02-11-2026', '03-11-2026')" in edges_sql(odd, WINDOW, slack=slack)


def test_partition_values_agree_with_the_predicates() -> None:
    scheme = parse_ddl(PARQUET_HIVE)
    keep = {"aws-account-id": "1", "aws-service": "vpcflowlogs", "aws-region": "eu-west-1"}
    assert partition_in_window(
        scheme, {**keep, "year": "2026", "month": "11", "day": "01", "hour": "05"}, WINDOW
    )
    assert not partition_in_window(
        scheme, {**keep, "year": "2026", "month": "11", "day": "01", "hour": "04"}, WINDOW
    )
    assert not partition_in_window(
        scheme, {**keep, "year": "2026", "month": "11", "day": "03", "hour": "01"}, WINDOW
    )
    projected = list(projected_partitions(parse_ddl(PROJECTED), WINDOW))
    assert len(projected) == 2 * 3 and {"region": "eu-west-1", "day": "2026/11/02"} in projected
    hourly = list(projected_partitions(parse_ddl(PARQUET_PROJECTED), WINDOW))
    assert len(hourly) == 2 * 3 * 24  # the date key prunes days; every hour of them is read


def test_optional_columns_are_used_only_when_present() -> None:
    full = edges_sql(parse_ddl(PROJECTED), WINDOW)
    for column in (
        "tcp_flags",
        "pkt_srcaddr",
        "pkt_dstaddr",
        "flow_direction",
        "pkt_dst_aws_service",
        "subnet_id",
    ):
        assert f'"{column}"' in full
    default = render_ddl("s3://b/AWSLogs/1/vpcflowlogs/eu-west-1/", DEFAULT_FORMAT)
    plain = edges_sql(parse_ddl(default), WINDOW)
    assert "CAST(NULL AS bigint) AS flags" in plain and "CAST(NULL AS varchar) AS fdir" in plain
    assert "CAST(NULL AS varchar) AS psrc" in plain and '"tcp_flags"' not in plain
    # A numeric field declared as text is converted, "-" and garbage becoming NULL as the SerDe does.
    text_ports = parse_ddl(PROJECTED.replace("srcport int", "srcport string"))
    assert "coalesce(try_cast(nullif(\"srcport\", '-') AS bigint), 0) AS sport_raw" in edges_sql(
        text_ports, WINDOW
    )


def test_the_query_is_deterministic_valid_trino_and_names_its_flow_logs() -> None:
    scheme = parse_ddl(PROJECTED).model_copy(update={"database": "flowlogs"})
    first = edges_sql(
        scheme, WINDOW, PortRange(1024, 65535), flow_logs=["fl-0123456789abcdef0", "fl-89abcdef"]
    )
    assert first == edges_sql(
        scheme, WINDOW, PortRange(1024, 65535), flow_logs=["fl-89abcdef", "fl-0123456789abcdef0"]
    )
    assert 'FROM "flowlogs"."test_table_vpclogs"' in first
    assert "flow_log IN ('fl-0123456789abcdef0', 'fl-89abcdef')" in first
    assert "BETWEEN 1024 AND 65535" in first
    assert f"t_start >= {WINDOW.start} AND t_start < {WINDOW.end}" in first
    tree = sqlglot.parse_one(first, read="trino")
    branches = 1
    while isinstance(tree, sqlglot.exp.Union):  # left-deep: ((edge, coverage), filtered), span
        tree, branches = tree.this, branches + 1
    assert branches == 4 and isinstance(tree, sqlglot.exp.Select)
    assert [s.alias_or_name for s in tree.selects] == list(RESULT_COLUMNS)
    with pytest.raises(InputError, match="not a flow log id"):
        edges_sql(scheme, WINDOW, flow_logs=["fl-x'; DROP"])
    missing = parse_ddl("CREATE TABLE t (interface_id string, srcaddr string) LOCATION 's3://b/'")
    with pytest.raises(InputError, match="no column for dstaddr, protocol, action, start"):
        edges_sql(missing, WINDOW)


def test_render_ddl_reads_back() -> None:
    ddl = render_ddl(
        "s3://b/AWSLogs/123456789012/vpcflowlogs/", DEFAULT_FORMAT, regions=["eu-west-1", "us-east-1"]
    )
    scheme = parse_ddl(ddl)
    assert scheme.fields == DEFAULT_FORMAT and scheme.storage == "text" and scheme.skip_header_lines == 1
    assert [k.name for k in scheme.partition_keys] == ["region", "day"]
    assert scheme.location_template == "s3://b/AWSLogs/123456789012/vpcflowlogs/${region}/${day}"
    region = scheme.projection("region")
    assert region is not None and region.values == ("eu-west-1", "us-east-1")
    with_region = parse_ddl(
        render_ddl("s3://b/AWSLogs/1/vpcflowlogs/", ("interface-id", "region"), regions=["x-y-1"])
    )
    assert [k.name for k in with_region.partition_keys] == ["delivery_region", "day"]
    parquet = parse_ddl(render_ddl("s3://b/AWSLogs/1/vpcflowlogs/eu-west-1", DEFAULT_FORMAT, parquet=True))
    assert parquet.storage == "parquet" and [k.name for k in parquet.partition_keys] == ["day"]
    assert parquet.skip_header_lines == 0
    with pytest.raises(InputError, match="region"):
        render_ddl("s3://b/AWSLogs/1/vpcflowlogs/", DEFAULT_FORMAT)
    with pytest.raises(InputError, match="not an s3"):
        render_ddl("/local/path", DEFAULT_FORMAT)


def test_render_ddl_per_hour_projects_and_prunes_hours() -> None:
    """A flow log delivered with PerHourPartition (…/yyyy/MM/dd/HH/): the day key is projected by the
    hour, and the query and the estimate name only the hours of the window (and its slack)."""
    from sgadvisor.athena.partitions import partition_location, projected_partitions, prune_predicates

    scheme = parse_ddl(render_ddl("s3://b/AWSLogs/1/vpcflowlogs/eu-west-1/", DEFAULT_FORMAT, per_hour=True))
    day = scheme.projection("day")
    assert day is not None and day.format == "yyyy/MM/dd/HH" and day.unit == "HOURS"
    start = 1_793_491_200 + 5 * 3600  # 2026-11-01 05:00
    window = Window(start, start + 2 * 3600)
    assert prune_predicates(scheme, window) == ["\"day\" BETWEEN '2026/11/01/04' AND '2026/11/01/07'"]
    hours = [p["day"] for p in projected_partitions(scheme, window)]
    assert hours == ["2026/11/01/04", "2026/11/01/05", "2026/11/01/06", "2026/11/01/07"]
    assert (
        partition_location(scheme, {"day": hours[1]})
        == "s3://b/AWSLogs/1/vpcflowlogs/eu-west-1/2026/11/01/05"
    )


def test_java_date_formats() -> None:
    assert java_to_strftime("yyyy/MM/dd") == ("%Y/%m/%d", ("year", "month", "day"))
    assert java_to_strftime("yyyyMMddHH") == ("%Y%m%d%H", ("year", "month", "day", "hour"))
    assert java_to_strftime("'dt='yyyy-MM-dd") == ("dt=%Y-%m-%d", ("year", "month", "day"))
    assert java_to_strftime("yyyy/M/d") is None  # not fixed width
    assert java_to_strftime("EEE") is None


def test_table_names() -> None:
    from sgadvisor.athena.flows import parse_table_name, table_scheme

    assert parse_table_name("flowlogs.vpc_flow_logs") == ("flowlogs", "vpc_flow_logs")
    with pytest.raises(UsageError):
        parse_table_name("vpc_flow_logs")
    scheme = table_scheme("flowlogs.test_table_vpclogs", ddl=PROJECTED)
    assert scheme.database == "flowlogs"
    with pytest.raises(UsageError, match="creates test_table_vpclogs"):
        table_scheme("flowlogs.other", ddl=PROJECTED)


def test_a_text_table_is_restricted_to_the_flow_logs_of_its_format() -> None:
    """The sample's S3 bucket receives two formats: each table reads only its format's flow logs, told
    apart by DescribeFlowLogs' LogFormat; a bucket of one format needs no restriction."""
    from pathlib import Path

    from sgadvisor.athena.flows import flow_logs_of_format
    from sgadvisor.inventory.snapshot import load_snapshot

    inventory = load_snapshot([Path(__file__).parent.parent / "sample_data" / "inventory"])
    location = "s3://acme-vpc-flow-logs-123456789012/AWSLogs/123456789012/vpcflowlogs/eu-west-1/"
    default = parse_ddl(render_ddl(location, DEFAULT_FORMAT))
    assert flow_logs_of_format(default, inventory.flow_logs) == ("fl-0e1e8d8998cbb7057",)
    custom_fields = inventory.flow_logs[0].log_format or ""
    from sgadvisor.flowlogs.fields import parse_log_format

    custom = parse_ddl(render_ddl(location, parse_log_format(custom_fields)))
    assert flow_logs_of_format(custom, inventory.flow_logs) == (
        "fl-04438f5558814655b", "fl-09d3750b9ddf0d131", "fl-0e28ec3cc4b1f9a67",
    )  # fmt: skip
    elsewhere = parse_ddl(render_ddl("s3://other/AWSLogs/1/vpcflowlogs/eu-west-1/", DEFAULT_FORMAT))
    assert flow_logs_of_format(elsewhere, inventory.flow_logs) == ()
    with pytest.raises(InputError, match="writes the columns"):
        flow_logs_of_format(parse_ddl(render_ddl(location, ("version", "interface-id"))), inventory.flow_logs)
