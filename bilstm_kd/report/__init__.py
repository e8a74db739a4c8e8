"""The run report (`report`: report.json, report.md and CSV files beside it), its parts (`classes`: per class,
worst first; `calibration`: ECE and reliability; `figures`; `markdown`: names and tables), and inference
throughput measured the paper's way (`speed`)."""
