"""The sync engine: incremental pull, batched push, retries, and the headless daemon. No Textual."""
