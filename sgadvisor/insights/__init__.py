"""CloudWatch Logs Insights for flow logs, offline: a documented subset of the query language run over
flow-log records with the column engine (docs/insights-subset.md)."""

from sgadvisor.insights.events import flow_log_events, with_discovered_fields
from sgadvisor.insights.executor import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    QueryResult,
    QueryStatistics,
    run_query,
)
from sgadvisor.insights.language import QuerySyntaxError, UnsupportedQueryError

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "QueryResult",
    "QueryStatistics",
    "QuerySyntaxError",
    "UnsupportedQueryError",
    "flow_log_events",
    "run_query",
    "with_discovered_fields",
]
