# The engine's test pages fail on purpose; tests/test_engine.py runs them in a subprocess.
collect_ignore = ["pages"]
