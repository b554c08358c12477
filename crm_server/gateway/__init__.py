"""crm-server as a sync gateway in front of a CRM nobody here wrote (BottleCRM; docs/gateway.md).

The server's own store is a mirror of the upstream, served to clients through the unchanged sync
protocol. ``upstream`` talks to BottleCRM, ``mapping`` is the one field/enum table, ``mirror``
writes upstream rows into the store, ``puller`` keeps the mirror exact, ``writethrough`` sends
client ops upstream, ``service`` starts it all for ``crm-server serve --upstream``.
"""
