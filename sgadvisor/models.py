"""recommendation.json: the one model every renderer reads (DESIGN §5). Field order here is file order."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sgadvisor.accounting import InputAccounting
from sgadvisor.rules import Rule

SCHEMA_VERSION = 1
CoverageStatus = Literal["ok", "partial", "none"]
ConfidenceLevel = Literal["high", "medium", "low"]
EdgeClass = Literal["initiated", "reply", "unknown"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Tool(_Model):
    name: str = "sgadvisor"
    version: str


class WindowOut(_Model):
    start: str
    end: str


class CollectionOut(_Model):
    source: Literal["files", "insights", "athena", "edges"]
    queries: int = 0
    result_rows: int = 0
    records_scanned: int = 0
    bytes_scanned: int = 0


class CoverageOut(_Model):
    status: CoverageStatus
    enis: int
    enis_with_evidence: int
    window_seconds: int
    skipdata_share: float
    reasons: list[str] = []


class EdgeOut(_Model):
    eni: str
    remote: str
    protocol: str
    port: int
    records: int
    klass: EdgeClass = Field(alias="class")
    confidence: ConfidenceLevel


class Evidence(_Model):
    records: int
    bytes: int
    first_seen: str | None = None
    last_seen: str | None = None
    enis: list[str]
    destinations: list[str]
    confidence: ConfidenceLevel
    why: list[str]
    # Internet destinations (DESIGN §6 "Internet destinations"): how the rule names them — "port" (the
    # observed protocol and ports to the internet, or to the current rule's CIDR), "pinned" (/32s of
    # today's addresses: --internet address, a stable DNS name's whole set, or a [[fixed]] table) — and
    # the DNS names that resolved to its destinations (Route 53 Resolver query logs).
    internet: Literal["port", "pinned"] | None = None
    names: list[str] | None = None


class ProposedRule(Rule):
    evidence: Evidence | None = None


class Change(_Model):
    action: Literal["keep", "remove", "narrow", "add"]
    security_group_rule_id: str | None = None
    rule: Rule
    reason: str
    replaced_by: list[int] | None = None
    replaces: list[str] | None = None


class GroupReport(_Model):
    group_id: str
    group_name: str
    vpc_id: str | None = None
    name_tag: str | None = None
    unattached: bool
    coverage: CoverageOut
    current_egress: list[Rule]
    edges: list[EdgeOut]
    edges_omitted: int
    proposed_egress: list[ProposedRule]
    changes: list[Change]


class InfrastructureEni(_Model):
    eni: str
    type: str
    records: int
    note: str


class Unattributed(_Model):
    interface_id: str
    records: int
    destinations: list[str]
    note: str


class VanishedDestination(_Model):
    """A destination address whose ENI (by the history, at the time of the flows) and every group that
    ENI had are gone: never turned into a rule (DESIGN §6 "Destinations")."""

    address: str
    last_seen: str | None = None
    former_eni: str | None = None
    former_groups: list[str]
    records: int
    sources: list[str]  # the ENIs that sent to it
    traffic: list[str]  # "tcp 5432", sorted
    note: str


class DnsIssue(_Model):
    file: str
    line: int
    reason: str


class DnsAccounting(_Model):
    """Route 53 Resolver query-log lines: ``records = used + malformed + Σ filtered``."""

    records: int = 0
    used: int = 0
    malformed: int = 0
    filtered: dict[str, int] = {}
    issues: list[DnsIssue] = []
    issues_omitted: int = 0


class DomainAllowlist(_Model):
    """The DNS names the flows justify in one VPC, for a Route 53 Resolver DNS Firewall domain list
    (``egress-domains.tf``): ``domains`` back a rule; ``cname_targets`` are the targets of their CNAME
    chains, listed because DNS Firewall inspects every domain of a chain by default."""

    vpc_id: str
    domains: list[str]
    cname_targets: list[str]


class DnsOut(_Model):
    """What the DNS evidence (``--dns-logs``) contributed."""

    sources: list[str]  # files or log groups read
    accounting: DnsAccounting
    action: Literal["ALERT", "BLOCK"] = "ALERT"  # what the firewall does with every other domain
    allowlists: list[DomainAllowlist] = []
    forwarded: list[str] = []  # sentences: queries seen from forwarding resolvers, and how they were used
    all_names: list[str] | None = None  # every name queried, only with --show-all-names (sensitive)


class NotPermitted(_Model):
    eni: str
    rule: Rule
    records: int
    note: str


class Rejected(_Model):
    eni: str
    ip_protocol: str
    dst: str
    port: int
    records: int
    note: str


class WouldBeBlocked(_Model):
    eni: str
    remote: str
    protocol: str
    port: int
    records: int
    klass: EdgeClass = Field(alias="class")
    confidence: ConfidenceLevel
    reason: str


class Recommendation(_Model):
    schema_version: int = SCHEMA_VERSION
    tool: Tool
    window: WindowOut
    collection: CollectionOut
    security_groups: list[GroupReport]
    labels: dict[str, str]
    infrastructure_enis: list[InfrastructureEni]
    unattributed: list[Unattributed]
    vanished_destinations: list[VanishedDestination] = []
    not_permitted_now: list[NotPermitted]
    rejected_egress: list[Rejected]
    would_be_blocked: list[WouldBeBlocked] = []
    warnings: list[str] = []
    input_accounting: InputAccounting
    dns: DnsOut | None = None  # present only with --dns-logs

    def to_json(self) -> str:
        """The canonical file text: same inputs → byte-identical output. Absent values are omitted
        (every optional field defaults to None, so the file reads back into the same model)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
