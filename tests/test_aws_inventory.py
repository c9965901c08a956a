"""EC2 inventory paging and flow-log discovery: what moto cannot show (it never paginates) is shown with
botocore's Stubber, as DESIGN §8 suggests; discovery is pure over DescribeFlowLogs records."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from sgadvisor.aws.discovery import discover_formats, select_flow_logs
from sgadvisor.aws.edges_query import edge_query
from sgadvisor.errors import UsageError
from sgadvisor.flowlogs.edges import DEFAULT_BUCKET
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT
from sgadvisor.inventory.ec2 import collect_inventory


def _ec2() -> Any:
    return boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")


def _group(group_id: str) -> dict[str, Any]:
    return {"GroupId": group_id, "GroupName": group_id, "VpcId": "vpc-1", "OwnerId": "1", "Description": "d"}


def test_every_page_is_read() -> None:
    ec2 = _ec2()
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_security_groups", {"SecurityGroups": [_group("sg-1")], "NextToken": "t1"}, {}
        )
        stub.add_response(
            "describe_security_groups", {"SecurityGroups": [_group("sg-2")]}, {"NextToken": "t1"}
        )
        stub.add_response("describe_security_group_rules", {"SecurityGroupRules": [], "NextToken": "r"}, {})
        stub.add_response("describe_security_group_rules", {"SecurityGroupRules": []}, {"NextToken": "r"})
        stub.add_response(
            "describe_network_interfaces", {"NetworkInterfaces": []}, {"IncludeManagedResources": True}
        )
        stub.add_response(
            "describe_managed_prefix_lists",
            {"PrefixLists": [{"PrefixListId": "pl-1", "PrefixListName": "corp", "AddressFamily": "IPv4"}]},
            {},
        )
        stub.add_response("describe_flow_logs", {"FlowLogs": []}, {})
        stub.add_response("describe_vpcs", {"Vpcs": []}, {})
        stub.add_response(
            "get_managed_prefix_list_entries", {"Entries": [{"Cidr": "10.0.0.0/8"}], "NextToken": "e"},
            {"PrefixListId": "pl-1"},
        )  # fmt: skip
        stub.add_response(
            "get_managed_prefix_list_entries", {"Entries": [{"Cidr": "192.0.2.0/24"}]},
            {"PrefixListId": "pl-1", "NextToken": "e"},
        )  # fmt: skip
        documents = collect_inventory(ec2)
        stub.assert_no_pending_responses()
    assert [g["GroupId"] for g in documents["describe-security-groups.json"]["SecurityGroups"]] == [
        "sg-1",
        "sg-2",
    ]
    (prefix_list,) = documents["describe-managed-prefix-lists.json"]["PrefixLists"]
    assert [e["Cidr"] for e in prefix_list["Entries"]] == ["10.0.0.0/8", "192.0.2.0/24"]


def test_a_vpc_scope_filters_server_side() -> None:
    ec2 = _ec2()
    vpc_filter = [{"Name": "vpc-id", "Values": ["vpc-1"]}]
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_security_groups", {"SecurityGroups": [_group("sg-1")]}, {"Filters": vpc_filter}
        )
        stub.add_response(
            "describe_security_group_rules", {"SecurityGroupRules": []},
            {"Filters": [{"Name": "group-id", "Values": ["sg-1"]}]},
        )  # fmt: skip
        stub.add_response(
            "describe_network_interfaces", {"NetworkInterfaces": []},
            {"Filters": vpc_filter, "IncludeManagedResources": True},
        )  # fmt: skip
        stub.add_response("describe_managed_prefix_lists", {"PrefixLists": []}, {})
        stub.add_response("describe_flow_logs", {"FlowLogs": []}, {})
        stub.add_response("describe_vpcs", {"Vpcs": []}, {"Filters": vpc_filter})
        collect_inventory(ec2, ["vpc-1"])
        stub.assert_no_pending_responses()


CUSTOM = "${version} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} " \
    "${bytes} ${start} ${end} ${action} ${log-status} ${tcp-flags} ${flow-direction}"  # fmt: skip


def _flow_log(
    fl_id: str, group: str, fmt: str | None, resource: str = "vpc-1", **extra: str
) -> dict[str, str]:
    record = {"FlowLogId": fl_id, "LogGroupName": group, "ResourceId": resource, "TrafficType": "ALL",
              "LogDestinationType": "cloud-watch-logs", **extra}  # fmt: skip
    if fmt is not None:
        record["LogFormat"] = fmt
    return record


def test_default_and_custom_groups() -> None:
    found = discover_formats([_flow_log("fl-1", "a", None), _flow_log("fl-2", "b", CUSTOM)])
    by_group = {f.log_group: f for f in found.formats}
    assert by_group["a"].default_format and by_group["a"].fields == DEFAULT_FORMAT
    assert not by_group["b"].default_format and "tcp-flags" in by_group["b"].fields
    assert not found.warnings
    assert "parse @message" not in edge_query(by_group["a"], DEFAULT_BUCKET)
    text = edge_query(by_group["b"], DEFAULT_BUCKET)
    assert text.startswith('parse @message "' + " ".join(["*"] * 15) + '" as version, interfaceId, srcAddr')
    assert "sum(fSyn * (1 - fAck)) as syn" in text and "flowDirection" in text


def test_mixed_formats_in_one_group_are_told_apart_by_field_count() -> None:
    found = discover_formats([_flow_log("fl-1", "a", None), _flow_log("fl-2", "a", CUSTOM, "eni-1")])
    assert len(found.formats) == 2 and all(f.mixed for f in found.formats)
    assert any("2 flow-log formats" in w for w in found.warnings)
    for fmt in found.formats:
        assert f"filter @message like /^\\S+( \\S+){{{len(fmt.fields) - 1}}}$/" in edge_query(
            fmt, DEFAULT_BUCKET
        )


def test_mixed_formats_of_equal_length_are_refused() -> None:
    same_length = " ".join(f"${{{f}}}" for f in reversed(DEFAULT_FORMAT))
    with pytest.raises(UsageError, match="cannot be told apart"):
        discover_formats([_flow_log("fl-1", "a", None), _flow_log("fl-2", "a", same_length)])


def test_only_cloudwatch_flow_logs_of_the_scope_are_chosen() -> None:
    logs = [
        _flow_log("fl-1", "a", None, "vpc-1"),
        _flow_log("fl-2", "b", None, "vpc-2"),
        {**_flow_log("fl-3", "", None, "vpc-1"), "LogDestinationType": "s3"},
    ]
    assert [fl["FlowLogId"] for fl in select_flow_logs(logs, {"vpc-1"})] == ["fl-1"]
    assert [fl["FlowLogId"] for fl in select_flow_logs(logs, None)] == ["fl-1", "fl-2"]


def test_a_named_group_without_a_flow_log_is_assumed_default_with_a_warning() -> None:
    found = discover_formats([], ["mine"])
    assert found.formats[0].default_format and "default format assumed" in found.warnings[0]
