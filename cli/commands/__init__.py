"""The `chatrelay` subcommands that operate a running service: each reads Redis directly (`REDIS_URL`)."""
