"""crm-tui: the app shell, CLI, config, and the domain model every other part shares."""

__version__ = "0.1.0"
