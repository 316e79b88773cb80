"""Entry points (`python tools/<name>.py`) and the benchmark package (`python -m tools.bench <name>`)."""
