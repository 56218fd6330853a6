"""`make bench`: the 10M-message benchmark (`python -m bench.run --help`)."""
