"""The Textual screens and widgets. They read and write through cache/ and never speak HTTP."""
