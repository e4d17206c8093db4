"""Speed and quality commands for AccoBridge; run them as `python -m benchmarks.<name>`."""
