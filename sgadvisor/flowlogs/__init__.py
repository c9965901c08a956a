"""Flow-log sources: formats, file readers, and the flow-edge aggregation every source produces."""
