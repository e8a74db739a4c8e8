"""The run report (`report`: JSON, Markdown, a plot) and inference throughput measured the paper's way
(`speed`)."""
