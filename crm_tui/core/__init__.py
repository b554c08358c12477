"""The kernel: the CRM's domain, the sync protocol, ids, the agenda's rules and sync-state types.

Pure code, no I/O. The server and every client layer import it; it imports none of them.
"""
