"""Report commands and their shared argument handling."""
