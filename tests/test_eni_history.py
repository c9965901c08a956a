"""ENI history as an input (issue 17, point 1): AWS Config items and CloudTrail events in the inventory
snapshot, parsed into per-ENI histories that attribution at the time of a flow can query.

The fixtures follow real samples:
- get-resource-config-history output (``configuration`` a JSON string, epoch capture times,
  ``relationshipName``) and a ConfigHistory S3 file (``fileVersion``, ``configuration`` an object,
  relationships with ``name``): AWS Config developer guide, "Viewing Configuration Details"
  (awsdocs/aws-config-developer-guide, doc_source/view-manage-resource-console.md);
- the ENI ``configuration`` object (groups, privateIpAddresses, ipv6Addresses, interfaceType,
  requesterManaged, attachment): a recorded NAT-gateway ENI item in aws-solutions/workload-discovery-on-aws
  (source/backend/functions/api/tests/);
- lookup-events output with RunInstances/TerminateInstances in ``CloudTrailEvent`` strings
  (instancesSet.items[].networkInterfaceSet.items[] with groupSet, privateIpAddressesSet.item,
  attachment.deviceIndex): a recorded lookup-events response in a public test fixture (found by the
  code search), and CreateNetworkInterface's responseElements.networkInterface: the Amazon EFS user
  guide's CloudTrail example; ModifyNetworkInterfaceAttribute's requestParameters.groupSet.items[].groupId
  and the Assign/Unassign address sets: the EC2 API reference (assignedPrivateIpAddressesSet,
  assignedIpv6Addresses).
"""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sgadvisor.errors import InputError
from sgadvisor.inventory.history import DETACHED, EniHistories, EniHistory, EniState, owner_of_address_at
from sgadvisor.inventory.history_files import window_warnings
from sgadvisor.inventory.model import Inventory
from sgadvisor.inventory.snapshot import load_snapshot
from tests.conftest import REPO
from tests.test_cli import run

SAMPLE = REPO / "sample_data"
ENI = "eni-0e8e4bd99672b62f7"  # in the sample inventory: 10.0.2.15, sg-0ff13905d5a801b02, i-0df254a955cb03b09
INSTANCE = "i-0df254a955cb03b09"
SG_NOW, SG_OLD = "sg-0ff13905d5a801b02", "sg-0a028484a6ecc064e"
SUBNET, VPC = "subnet-0ae27fab905719089", "vpc-02f3eccc6d323ce24"
TASK = "eni-0f00000000000dead"  # a short-lived ENI, only in Config
LAUNCHED, LAUNCHED_INSTANCE = "eni-0b0000000000000a1", "i-0b00000000000000b"  # RunInstances
CREATED = "eni-0c0000000000000c1"  # CreateNetworkInterface
WINDOW = (1_793_491_200, 1_794_182_399)  # the sample's window: 2026-11-01T00:00:00Z .. 11-08T23:59:59Z


def t(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_window_constant() -> None:
    assert (t("2026-11-01T00:00:00"), t("2026-11-08T23:59:59")) == WINDOW


# ---- fixtures ----------------------------------------------------------------------------------------------


def eni_configuration(eni: str, address: str, groups: list[str], instance: str | None) -> dict[str, Any]:
    """An ENI's Config ``configuration`` as Config records it (EC2's NetworkInterface, camelCase)."""
    return {
        "association": None,
        "attachment": None if instance is None else {
            "attachTime": "2026-09-14T08:12:03.000Z", "attachmentId": f"eni-attach-{eni[4:]}",
            "deleteOnTermination": True, "deviceIndex": 0, "instanceId": instance,
            "instanceOwnerId": "123456789012", "status": "attached",
        },
        "availabilityZone": "eu-west-1b",
        "description": "",
        "groups": [{"groupName": f"name-{g}", "groupId": g} for g in groups],
        "interfaceType": "interface",
        "ipv6Addresses": [],
        "macAddress": "06:bf:09:1d:77:92",
        "networkInterfaceId": eni,
        "outpostArn": None,
        "ownerId": "123456789012",
        "privateDnsName": f"ip-{address.replace('.', '-')}.eu-west-1.compute.internal",
        "privateIpAddress": address,
        "privateIpAddresses": [{"association": None, "primary": True, "privateIpAddress": address,
                                "privateDnsName": f"ip-{address.replace('.', '-')}.eu-west-1.compute.internal"}],
        "requesterId": None,
        "requesterManaged": False,
        "sourceDestCheck": True,
        "status": "in-use",
        "subnetId": SUBNET,
        "tagSet": [],
        "vpcId": VPC,
    }  # fmt: skip


def cli_item(
    eni: str,
    state_id: str,
    captured: float,
    created: float,
    status: str,
    configuration: dict[str, Any] | None,
) -> dict[str, Any]:
    """One item of ``aws configservice get-resource-config-history`` (AWS CLI v1: epoch numbers)."""
    groups = (configuration or {}).get("groups", [])
    return {
        "version": "1.3",
        "accountId": "123456789012",
        "configurationItemCaptureTime": captured,
        "configurationItemStatus": status,
        "configurationStateId": state_id,
        "configurationItemMD5Hash": "",
        "arn": f"arn:aws:ec2:eu-west-1:123456789012:network-interface/{eni}",
        "resourceType": "AWS::EC2::NetworkInterface",
        "resourceId": eni,
        "awsRegion": "eu-west-1",
        "availabilityZone": "eu-west-1b",
        "resourceCreationTime": created,
        "tags": {},
        "relatedEvents": [],
        "relationships": [{"resourceType": "AWS::EC2::SecurityGroup", "resourceId": g["groupId"],
                           "relationshipName": "Is associated with SecurityGroup"} for g in groups],
        "configuration": json.dumps(configuration) if configuration is not None else None,
        "supplementaryConfiguration": {},
    }  # fmt: skip


def s3_item(
    eni: str, state_id: int, captured: str, created: str, status: str, configuration: dict[str, Any] | None
) -> dict[str, Any]:
    """One item of a ConfigHistory file in S3 (ISO times, ``configuration`` an object, ``name``)."""
    groups = (configuration or {}).get("groups", [])
    return {
        "relatedEvents": [],
        "relationships": [{"resourceId": g["groupId"], "resourceName": None,
                           "resourceType": "AWS::EC2::SecurityGroup",
                           "name": "Is associated with SecurityGroup"} for g in groups],
        "configuration": configuration,
        "supplementaryConfiguration": {},
        "tags": {},
        "configurationItemVersion": "1.3",
        "configurationItemCaptureTime": captured,
        "configurationStateId": state_id,
        "awsAccountId": "123456789012",
        "configurationItemStatus": status,
        "resourceType": "AWS::EC2::NetworkInterface",
        "resourceId": eni,
        "resourceName": None,
        "ARN": f"arn:aws:ec2:eu-west-1:123456789012:network-interface/{eni}",
        "awsRegion": "eu-west-1",
        "availabilityZone": "eu-west-1b",
        "configurationStateMd5Hash": "",
        "resourceCreationTime": created,
    }  # fmt: skip


def config_cli() -> dict[str, Any]:
    old = eni_configuration(ENI, "10.0.2.15", [SG_OLD], INSTANCE)
    now = eni_configuration(ENI, "10.0.2.15", [SG_NOW], INSTANCE)
    return {"configurationItems": [  # newest first, as the CLI lists them
        cli_item(ENI, "1793620800000", t("2026-11-03T12:00:00") + 0.25, t("2026-10-20T09:58:00") + 0.5, "OK", now),
        cli_item(ENI, "1792490405123", t("2026-10-20T10:00:05") + 0.123, t("2026-10-20T09:58:00") + 0.5,
                 "ResourceDiscovered", old),
    ]}  # fmt: skip


def config_s3() -> dict[str, Any]:
    now = eni_configuration(ENI, "10.0.2.15", [SG_NOW], INSTANCE)
    task = eni_configuration(TASK, "10.0.2.21", [SG_NOW], None)
    task["interfaceType"], task["requesterManaged"] = "interface", True
    task["description"] = "arn:aws:ecs:eu-west-1:123456789012:attachment/0c5d0f0e"
    return {
        "fileVersion": "1.0",
        "requestId": "asudf8ow-4e34-4f32-afeb-0ace5bf3trye",
        "configurationItems": [
            # the same item as in the CLI output: read once
            s3_item(ENI, 1793620800000, "2026-11-03T12:00:00.250Z", "2026-10-20T09:58:00.500Z", "OK", now),
            s3_item(TASK, 1793606580000, "2026-11-02T08:03:00.000Z", "2026-11-02T08:00:00.000Z",
                    "ResourceDiscovered", task),
            s3_item(TASK, 1793649600000, "2026-11-02T20:00:00.000Z", "2026-11-02T08:00:00.000Z",
                    "ResourceDeleted", None),
        ],
    }  # fmt: skip


def record(event_id: str, name: str, when: str, request: Any, response: Any, **extra: Any) -> dict[str, Any]:
    """A CloudTrail record as in the S3 log files."""
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "AssumedRole", "accountId": "123456789012"},
        "eventTime": when,
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "ecs.amazonaws.com",
        "userAgent": "ecs.amazonaws.com",
        "requestParameters": request,
        "responseElements": response,
        "requestID": f"req-{event_id}",
        "eventID": event_id,
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
        **extra,
    }


def run_instances() -> dict[str, Any]:
    eni = {
        "networkInterfaceId": LAUNCHED,
        "subnetId": SUBNET,
        "vpcId": VPC,
        "ownerId": "123456789012",
        "status": "in-use",
        "macAddress": "0a:da:a0:1e:c0:27",
        "privateIpAddress": "10.0.2.40",
        "privateDnsName": "ip-10-0-2-40.eu-west-1.compute.internal",
        "sourceDestCheck": True,
        "interfaceType": "interface",
        "groupSet": {"items": [{"groupId": SG_NOW, "groupName": "app"}]},
        "attachment": {
            "attachmentId": "eni-attach-06ef86ee51058174c",
            "deviceIndex": 0,
            "networkCardIndex": 0,
            "status": "attaching",
            "attachTime": 1793782800000,
            "deleteOnTermination": True,
        },
        "privateIpAddressesSet": {"item": [{"privateIpAddress": "10.0.2.40", "primary": True}]},
        "ipv6AddressesSet": {},
        "tagSet": {},
    }
    return record(
        "2018a64c-166e-41dd-b498-a90cb1394152", "RunInstances", "2026-11-04T09:00:00Z",
        {"instancesSet": {"items": [{"imageId": "ami-09d3b3274b6c5d4aa", "minCount": 1, "maxCount": 1}]},
         "instanceType": "t3.micro",
         "networkInterfaceSet": {"items": [{"deviceIndex": 0, "groupSet": {"items": [{"groupId": SG_NOW}]}}]}},
        {"requestId": "c6bb92b5", "reservationId": "r-061874ab9175b555d", "ownerId": "123456789012",
         "groupSet": {}, "instancesSet": {"items": [{
             "instanceId": LAUNCHED_INSTANCE, "imageId": "ami-09d3b3274b6c5d4aa",
             "instanceState": {"code": 0, "name": "pending"}, "subnetId": SUBNET, "vpcId": VPC,
             "privateIpAddress": "10.0.2.40", "groupSet": {"items": [{"groupId": SG_NOW, "groupName": "app"}]},
             "networkInterfaceSet": {"items": [eni]}}]}},
    )  # fmt: skip


def terminate(event_id: str, instance: str, when: str) -> dict[str, Any]:
    return record(
        event_id, "TerminateInstances", when,
        {"instancesSet": {"items": [{"instanceId": instance}]}},
        {"requestId": "a27ebda2", "instancesSet": {"items": [{
            "instanceId": instance, "currentState": {"code": 32, "name": "shutting-down"},
            "previousState": {"code": 16, "name": "running"}}]}},
    )  # fmt: skip


def lookup(*records: dict[str, Any]) -> dict[str, Any]:
    """``aws cloudtrail lookup-events`` output: each record as a JSON string in CloudTrailEvent."""
    return {"Events": [{
        "EventId": r["eventID"], "EventName": r["eventName"], "ReadOnly": "false",
        "AccessKeyId": "ASIAEXAMPLE", "EventTime": r["eventTime"].replace("Z", "+00:00"),
        "EventSource": "ec2.amazonaws.com", "Username": "deploy",
        "Resources": [], "CloudTrailEvent": json.dumps(r),
    } for r in records]}  # fmt: skip


def trail_records() -> dict[str, Any]:
    created = {
        "networkInterfaceId": CREATED,
        "subnetId": SUBNET,
        "vpcId": VPC,
        "availabilityZone": "eu-west-1b",
        "description": "EFS mount target for fs-1234567 (fsmt-1234567)",
        "ownerId": "123456789012",
        "requesterId": "0123456789ab",
        "requesterManaged": True,
        "status": "pending",
        "macAddress": "00:bb:ee:ff:aa:cc",
        "privateIpAddress": "10.0.2.60",
        "sourceDestCheck": True,
        "groupSet": {"items": [{"groupId": SG_NOW, "groupName": "default"}]},
        "privateIpAddressesSet": {"item": [{"privateIpAddress": "10.0.2.60", "primary": True}]},
        "tagSet": {},
    }
    return {"Records": [
        record("aaaabbbb-1111-2222-3333-444444555555", "CreateNetworkInterface", "2026-11-05T10:00:00Z",
               {"subnetId": SUBNET, "description": created["description"], "groupSet": {},
                "privateIpAddressesSet": {}},
               {"requestId": "0708e4ad", "networkInterface": created}),
        record("e1", "AssignPrivateIpAddresses", "2026-11-05T10:30:00Z",
               {"networkInterfaceId": CREATED, "privateIpAddressesSet": {}, "secondaryPrivateIpAddressCount": 1},
               {"requestId": "r", "networkInterfaceId": CREATED,
                "assignedPrivateIpAddressesSet": {"assignedPrivateIpAddressSetType": [
                    {"privateIpAddress": "10.0.2.61"}]}, "_return": True}),
        record("e2", "ModifyNetworkInterfaceAttribute", "2026-11-05T11:00:00Z",
               {"networkInterfaceId": CREATED, "groupSet": {"items": [{"groupId": SG_OLD}]}},
               {"requestId": "r", "_return": True}),
        record("e3", "ModifyNetworkInterfaceAttribute", "2026-11-05T11:30:00Z",  # failed: ignored
               {"networkInterfaceId": CREATED, "groupSet": {"items": [{"groupId": "sg-0000000000000bad"}]}},
               None, errorCode="Client.UnauthorizedOperation", errorMessage="not allowed"),
        record("e4", "AssignIpv6Addresses", "2026-11-05T12:00:00Z",
               {"networkInterfaceId": CREATED, "ipv6AddressCount": 1},
               {"requestId": "r", "networkInterfaceId": CREATED,
                "assignedIpv6Addresses": {"items": ["2A05:D018:ABCD:1202::0010"]}}),
        record("e5", "DeleteNetworkInterface", "2026-11-05T16:00:00Z", {"networkInterfaceId": CREATED},
               {"requestId": "r", "_return": True}),
        # the same RunInstances as in the lookup-events output: read once
        run_instances(),
        {**record("s3-1", "PutObject", "2026-11-05T16:00:00Z", {"bucketName": "b"}, None),
         "eventSource": "s3.amazonaws.com"},
    ]}  # fmt: skip


def write(path: Path, document: dict[str, Any], *, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2).encode()
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


def snapshot(tmp_path: Path, *extra: tuple[str, dict[str, Any], bool]) -> Path:
    """A copy of the sample inventory plus the history files (S3 ones gzipped, in the S3 key layout)."""
    directory = tmp_path / "inventory"
    shutil.copytree(SAMPLE / "inventory", directory)
    write(directory / "config-history-eni.json", config_cli())
    write(directory / "AWSLogs/123456789012/Config/eu-west-1/2026/11/3/ConfigHistory"
          / "123456789012_Config_eu-west-1_ConfigHistory_AWS::EC2::NetworkInterface_20261103T120000Z_"
            "20261103T180000Z_1.json.gz", config_s3(), gz=True)  # fmt: skip
    write(
        directory / "lookup-events.json",
        lookup(run_instances(), terminate("t-1", LAUNCHED_INSTANCE, "2026-11-06T18:00:00Z")),
    )
    write(
        directory
        / "AWSLogs/123456789012/CloudTrail/eu-west-1/2026/11/05"
        / "123456789012_CloudTrail_eu-west-1_20261105T1000Z_abc.json.gz",
        trail_records(),
        gz=True,
    )
    for name, document, gz in extra:
        write(directory / name, document, gz=gz)
    return directory


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    return load_snapshot([snapshot(tmp_path_factory.mktemp("history"))])


def histories(inventory: Inventory) -> EniHistories:
    assert isinstance(inventory.history, EniHistories)
    return inventory.history


def history_warnings(inventory: Inventory) -> list[str]:
    baseline = set(load_snapshot([SAMPLE / "inventory"]).warnings)
    return [w for w in inventory.warnings if w not in baseline]


# ---- every shape is read --------------------------------------------------------------------------------


def test_every_shape_is_read_into_histories(loaded: Inventory) -> None:
    assert isinstance(loaded.history, EniHistories)
    sample_history = set(load_snapshot([SAMPLE / "inventory"]).history)  # the sample's own churn
    assert sorted(set(loaded.history) - sample_history) == sorted([ENI, TASK, LAUNCHED, CREATED])
    assert history_warnings(loaded) == []
    # the current inventory is unchanged by history
    assert loaded.interfaces == load_snapshot([SAMPLE / "inventory"]).interfaces


def test_config_cli_and_s3_items_give_states_and_life_from_resource_creation_time(loaded: Inventory) -> None:
    history = loaded.history[ENI]
    # resourceCreationTime, not the first capture (10:00:05)
    assert history.created == t("2026-10-20T09:58:00")
    assert history.deleted is None
    assert [(s.start, s.group_ids) for s in history.states] == [
        (t("2026-10-20T09:58:00"), (SG_OLD,)),  # ResourceDiscovered: so since its creation
        (t("2026-11-03T12:00:00"), (SG_NOW,)),  # epoch 1793620800.25 (CLI) == ISO …:00.250Z (S3)
    ]
    state = history.state_at(t("2026-11-01T00:00:00"))
    assert state is not None
    assert state.addresses == ("10.0.2.15",)
    assert (state.vpc_id, state.subnet_id, state.interface_type, state.requester_managed, state.description,
            state.instance_id) == (VPC, SUBNET, "interface", False, "", INSTANCE)  # fmt: skip
    assert history.state_at(t("2026-10-20T09:57:59")) is None
    assert history.life_in(*WINDOW) == WINDOW
    assert history.groups_during(*WINDOW) == tuple(sorted((SG_OLD, SG_NOW)))
    assert history.groups_during(t("2026-11-04T00:00:00"), WINDOW[1]) == (SG_NOW,)
    assert history.unknown_groups_during(*WINDOW) == []


def test_a_task_lives_only_part_of_the_window(loaded: Inventory) -> None:
    task = loaded.history[TASK]
    life = (t("2026-11-02T08:00:00"), t("2026-11-02T20:00:00"))
    # resourceCreationTime 08:00 (first captured 08:03), and the ResourceDeleted item
    assert (task.created, task.deleted) == life
    assert task.life_in(*WINDOW) == life
    assert task.life_in(t("2026-11-03T00:00:00"), WINDOW[1]) is None
    state = task.state_at(t("2026-11-02T08:01:00"))
    assert state is not None and state.group_ids == (SG_NOW,) and state.instance_id == DETACHED
    assert state.requester_managed is True
    assert task.state_at(life[1]) is None
    assert histories(loaded).owner_of_address_at("10.0.2.21", t("2026-11-02T12:00:00")) == TASK
    assert histories(loaded).owner_of_address_at("10.0.2.21", t("2026-11-03T12:00:00")) is None
    assert owner_of_address_at(loaded.history, "10.0.2.21", t("2026-11-02T12:00:00")) == TASK
    assert [source.what for source in task.sources] == ["ResourceDiscovered", "ResourceDeleted"]


def test_run_instances_creates_and_terminate_instances_ends_the_primary_eni(loaded: Inventory) -> None:
    launched = loaded.history[LAUNCHED]
    assert (launched.created, launched.deleted) == (t("2026-11-04T09:00:00"), t("2026-11-06T18:00:00"))
    state = launched.state_at(t("2026-11-05T00:00:00"))
    assert state is not None
    assert state == EniState(
        start=t("2026-11-04T09:00:00"), group_ids=(SG_NOW,), addresses=("10.0.2.40",), vpc_id=VPC,
        subnet_id=SUBNET, interface_type="interface", instance_id=LAUNCHED_INSTANCE, source=state.source,
    )  # fmt: skip
    assert histories(loaded).owner_of_address_at("10.0.2.40", t("2026-11-06T17:59:59")) == LAUNCHED
    assert histories(loaded).owner_of_address_at("10.0.2.40", t("2026-11-06T18:00:00")) is None


def test_cloudtrail_events_change_groups_and_addresses(loaded: Inventory) -> None:
    created = loaded.history[CREATED]
    assert (created.created, created.deleted) == (t("2026-11-05T10:00:00"), t("2026-11-05T16:00:00"))
    assert [(s.start, s.group_ids, s.addresses) for s in created.states] == [
        (t("2026-11-05T10:00:00"), (SG_NOW,), ("10.0.2.60",)),
        (t("2026-11-05T10:30:00"), (SG_NOW,), ("10.0.2.60", "10.0.2.61")),
        (t("2026-11-05T11:00:00"), (SG_OLD,), ("10.0.2.60", "10.0.2.61")),  # the failed change is ignored
        (t("2026-11-05T12:00:00"), (SG_OLD,), ("10.0.2.60", "10.0.2.61", "2a05:d018:abcd:1202::10")),
    ]
    first = created.states[0]
    assert (first.requester_managed, first.description, first.instance_id) == (
        True, "EFS mount target for fs-1234567 (fsmt-1234567)", DETACHED)  # fmt: skip
    assert created.groups_during(t("2026-11-05T10:45:00"), t("2026-11-05T11:15:00")) == tuple(
        sorted((SG_NOW, SG_OLD)))  # fmt: skip
    assert (
        histories(loaded).owner_of_address_at("2A05:D018:ABCD:1202::0010", t("2026-11-05T13:00:00"))
        == CREATED
    )


# ---- de-duplication -----------------------------------------------------------------------------------


def test_the_same_record_in_two_files_is_read_once(loaded: Inventory) -> None:
    # Config: the 11-03 item is in the CLI output and the S3 file; CloudTrail: RunInstances in both.
    assert [source.what for source in loaded.history[ENI].sources] == ["OK", "ResourceDiscovered"]
    sources = loaded.history[LAUNCHED].sources
    assert [source.what for source in sources] == ["RunInstances", "TerminateInstances"]
    assert sources[0].file.endswith(".json.gz")  # files are read in path order: the first one tells


def test_identity_is_the_record_not_the_eni(tmp_path: Path) -> None:
    # Two Config items of one ENI with different state ids at the same second are two records.
    items = config_cli()
    twin = dict(items["configurationItems"][0], configurationStateId="1793620800001")
    twin["configuration"] = json.dumps(eni_configuration(ENI, "10.0.2.15", [SG_NOW, SG_OLD], INSTANCE))
    inventory = load_snapshot([snapshot(tmp_path, ("twin.json", {"configurationItems": [twin]}, False))])
    assert len(inventory.history[ENI].sources) == 3


def test_one_identity_with_different_content_is_an_error_naming_both_files(tmp_path: Path) -> None:
    changed = run_instances()
    changed["responseElements"]["instancesSet"]["items"][0]["networkInterfaceSet"]["items"][0][
        "privateIpAddress"] = "10.0.2.41"  # fmt: skip
    directory = snapshot(tmp_path, ("zz-edited.json", {"Records": [changed]}, False))
    with pytest.raises(InputError) as caught:
        load_snapshot([directory])
    assert "2018a64c-166e-41dd-b498-a90cb1394152" in caught.value.message
    assert "_CloudTrail_eu-west-1_20261105T1000Z_abc.json.gz and " in caught.value.message  # the first read
    assert caught.value.message.endswith("zz-edited.json with different content")


# ---- warnings, never crashes ----------------------------------------------------------------------------


def test_a_contradicting_source_is_a_warning_naming_the_eni(tmp_path: Path) -> None:
    # CloudTrail sets groups to SG_OLD at 11-02; Config says SG_NOW at 11-03 and nothing in between.
    modify = record(
        "m-1",
        "ModifyNetworkInterfaceAttribute",
        "2026-11-02T06:00:00Z",
        {"networkInterfaceId": ENI, "groupSet": {"items": [{"groupId": SG_OLD}]}},
        None,
    )
    earlier = dict(
        config_cli()["configurationItems"][1],
        configurationStateId="1793000000000",
        configurationItemCaptureTime=t("2026-11-01T06:00:00"),
        configurationItemStatus="OK",
    )
    earlier["configuration"] = json.dumps(eni_configuration(ENI, "10.0.2.15", [SG_NOW], INSTANCE))
    inventory = load_snapshot(
        [
            snapshot(
                tmp_path,
                ("modify.json", {"Records": [modify]}, False),
                ("earlier.json", {"configurationItems": [earlier]}, False),
            )
        ]
    )
    (warning,) = history_warnings(inventory)
    assert warning.startswith(f"{ENI}: Config OK at 2026-11-03T12:00:00Z")
    assert f"says group ids {SG_NOW}" in warning
    assert "CloudTrail ModifyNetworkInterfaceAttribute m-1 at 2026-11-02T06:00:00Z" in warning
    assert f"set {SG_OLD}" in warning
    # both are kept as the states they are: attribution sees the change CloudTrail recorded
    assert inventory.history[ENI].state_at(t("2026-11-02T07:00:00")).group_ids == (SG_OLD,)  # type: ignore[union-attr]
    assert inventory.history[ENI].state_at(t("2026-11-03T13:00:00")).group_ids == (SG_NOW,)  # type: ignore[union-attr]


def test_terminate_instances_ends_the_primary_eni_the_inventory_names_and_the_inventory_disagrees(
    tmp_path: Path,
) -> None:
    # No RunInstances for INSTANCE: its primary ENI comes from the inventory's Attachment (DeviceIndex 0).
    gone = terminate("t-2", INSTANCE, "2026-11-07T00:00:00Z")
    unknown = terminate("t-3", "i-0123456789abcdef0", "2026-11-07T00:00:00Z")
    inventory = load_snapshot([snapshot(tmp_path, ("terminate.json", lookup(gone, unknown), False))])
    assert inventory.history[ENI].deleted == t("2026-11-07T00:00:00")
    assert inventory.history[ENI].life_in(*WINDOW) == (WINDOW[0], t("2026-11-07T00:00:00"))
    assert history_warnings(inventory) == [
        "1 TerminateInstances event(s) name an instance or attachment whose ENI no RunInstances, "
        "AttachNetworkInterface, Config item or inventory attachment tells (i-0123456789abcdef0): ignored",
        f"{ENI}: the history says it was deleted at 2026-11-07T00:00:00Z, but the inventory lists it",
    ]


def test_a_last_state_that_disagrees_with_the_inventory_is_a_warning(tmp_path: Path) -> None:
    modify = record(
        "m-2",
        "ModifyNetworkInterfaceAttribute",
        "2026-11-08T06:00:00Z",
        {"networkInterfaceId": ENI, "groupSet": {"items": [{"groupId": SG_OLD}]}},
        None,
    )
    detach = record(
        "d-1",
        "DetachNetworkInterface",
        "2026-11-08T07:00:00Z",
        {"attachmentId": "eni-attach-0f81f849ec46a8589", "force": False},
        None,
    )
    inventory = load_snapshot([snapshot(tmp_path, ("late.json", {"Records": [modify, detach]}, False))])
    (warning,) = history_warnings(inventory)
    assert warning.startswith(f"{ENI}: the history's last state (CloudTrail DetachNetworkInterface d-1 at ")
    assert f"group ids {SG_OLD} vs {SG_NOW}" in warning
    assert f"instance id no instance vs {INSTANCE}" in warning


def test_a_history_that_does_not_reach_back_over_the_window_start_is_a_warning() -> None:
    late = EniHistory("eni-0late", states=(EniState(start=t("2026-11-04T00:00:00"), group_ids=("sg-1",)),))
    whole = EniHistory(
        "eni-0whole",
        created=t("2026-11-02T00:00:00"),
        states=(EniState(start=t("2026-11-02T00:00:00"), group_ids=("sg-1",)),),
    )
    histories = EniHistories({"eni-0late": late, "eni-0whole": whole})
    assert window_warnings(histories, *WINDOW) == [
        "eni-0late: its groups are unknown from 2026-11-01T00:00:00Z to 2026-11-04T00:00:00Z (the history "
        "does not reach back over the window's start)"
    ]
    assert late.periods(*WINDOW) == [(WINDOW[0], t("2026-11-04T00:00:00"), None),
                                     (t("2026-11-04T00:00:00"), WINDOW[1], late.states[0])]  # fmt: skip


# ---- bad shapes: exit 2 naming file and key ---------------------------------------------------------------


def _bad_capture_time() -> dict[str, Any]:
    items = config_cli()
    items["configurationItems"][1]["configurationItemCaptureTime"] = "last tuesday"
    return items


def _bad_group_in_configuration() -> dict[str, Any]:
    items = config_cli()
    configuration = json.loads(items["configurationItems"][0]["configuration"])
    configuration["groups"][0]["groupId"] = "web"
    items["configurationItems"][0]["configuration"] = json.dumps(configuration)
    return items


def _bad_cloudtrail_event() -> dict[str, Any]:
    events = lookup(run_instances())
    events["Events"][0]["CloudTrailEvent"] = '{"eventVersion": "1.08", "eventID": '
    return events


def _bad_group_set() -> dict[str, Any]:
    modify = record(
        "m-9",
        "ModifyNetworkInterfaceAttribute",
        "2026-11-02T06:00:00Z",
        {"networkInterfaceId": ENI, "groupSet": {"items": [{"groupId": 42}]}},
        None,
    )
    return {"Records": [modify]}


@pytest.mark.parametrize(
    ("document", "where"),
    [
        (_bad_capture_time, "configurationItems[1].configurationItemCaptureTime: expected an ISO 8601 time"),
        (_bad_group_in_configuration, "configurationItems[0].configuration.groups[0].groupId: expected an id "
                                      "starting with sg-"),
        (_bad_cloudtrail_event, "Events[0].CloudTrailEvent: expected a JSON document in a string"),
        (_bad_group_set, "Records[0].requestParameters.groupSet.items[0].groupId: expected a group id, got 42"),
        (lambda: {"configurationItems": {"resourceType": "AWS::EC2::NetworkInterface"}},
         "configurationItems: expected a list"),
    ],
)  # fmt: skip
def test_bad_shapes_exit_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: Any, where: str
) -> None:
    directory = snapshot(tmp_path, ("bad.json.gz", document(), True))
    out = tmp_path / "out"
    code = run(["recommend", "--flows", str(SAMPLE / "flows"), "--inventory", str(directory),
                "--out", str(out), "--format", "json", "-q"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert f"{directory / 'bad.json.gz'}: {where}" in err
    assert not (out / "recommendation.json").exists()


# ---- the analysis uses history for coverage only (issue 17, point 2) --------------------------------------


def test_recommend_output_changes_only_where_history_adds_former_members(tmp_path: Path) -> None:
    """The history's ENIs the inventory lacks are former members of the groups they held: the sample's
    flows have no record of them, so those groups are partial (no evidence for them) and keep every rule;
    everything else is as without history."""
    out = tmp_path / "out"
    inventory = snapshot(tmp_path)
    code = run(["recommend", "--flows", str(SAMPLE / "flows"), "--inventory", str(inventory), "--dns-logs", str(SAMPLE / "dns"),
                "--out", str(out), "--format", "json", "-q"])  # fmt: skip
    assert code == 0
    got = json.loads((out / "recommendation.json").read_text())
    expected = json.loads((SAMPLE / "expected" / "recommendation.json").read_text())
    got.pop("warnings"), expected.pop("warnings")
    got.pop("dns"), expected.pop("dns")  # the allowlist follows which groups are ok
    groups, was = got.pop("security_groups"), expected.pop("security_groups")
    assert got == expected
    loaded = load_snapshot([inventory])
    sample_history = set(load_snapshot([SAMPLE / "inventory"]).history)  # the sample's own churn
    formers = {
        eni: h.groups_during(*WINDOW)
        for eni, h in loaded.history.items()
        if eni not in loaded.interfaces and eni not in sample_history
    }
    held = {gid for gids in formers.values() for gid in gids}
    for group, before in zip(groups, was, strict=True):
        if group["group_id"] not in held:
            assert group == before
            continue
        assert group["coverage"]["status"] == "partial"
        named = {reason.split(":")[0] for reason in group["coverage"]["reasons"]}
        assert named == {eni for eni, gids in formers.items() if group["group_id"] in gids}
        assert all("no flow-log record of it" in reason for reason in group["coverage"]["reasons"])
        assert {change["action"] for change in group["changes"]} == {"keep"}
