"""Route 53 Resolver query logs (``--dns-logs``): which DNS names resolved to an internet address for an
ENI's addresses in the window, and whether a name is stable enough to pin (DESIGN §6 "Internet
destinations").

The logs hold every name the workloads asked for, so they are sensitive: nothing here prints a name;
``DnsLog.names()`` lists them for --show-all-names only.
"""

from sgadvisor.dnslogs.reader import DnsLogBuilder, read_dns_logs
from sgadvisor.dnslogs.records import DnsQuery, RecordError, parse_record
from sgadvisor.dnslogs.resolution import MIN_DAYS, MIN_QUERIES, DnsLog, NameMatch, Stability

__all__ = [
    "MIN_DAYS",
    "MIN_QUERIES",
    "DnsLog",
    "DnsLogBuilder",
    "DnsQuery",
    "NameMatch",
    "RecordError",
    "Stability",
    "parse_record",
    "read_dns_logs",
]
