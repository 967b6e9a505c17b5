"""Shared pytest set-up: the private pcscd + vpcd harness lives in tests/pcsc_harness.py."""

pytest_plugins = ["pcsc_harness"]
