"""The reference CRM server: HTTP API, auth, scopes, change feed and batch writes."""
