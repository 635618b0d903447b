"""End-to-end encrypted drop box (DESIGN section 5): the server only ever holds ciphertext.

A sub-application: its own routes (filedrop.http.mount), migrations (filedrop.migrations),
storage, deletion rules and stats; the host app says who may do what. docs/filedrop.md."""
