"""The shell: HTTP API, settings, storage, auth, audit, CLI and the demo city."""

__version__ = "0.1.0"
