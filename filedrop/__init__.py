"""End-to-end encrypted drop box (DESIGN section 5): the server only ever holds ciphertext."""
