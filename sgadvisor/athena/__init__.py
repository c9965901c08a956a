"""Amazon Athena as a flow source: the table's scheme (ddl), the edge query (partitions, sql), its result
turned into flow edges (results), and the API calls that run it (runner). See docs/athena.md."""
