"""The security tests reuse the collectors' fixtures: a runtime with a journal, the real app on uvicorn."""

from tests.collectors.conftest import client, free_port, runtime, settings

__all__ = ["client", "free_port", "runtime", "settings"]
