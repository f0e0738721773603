"""Pure cryptography for the platform: age envelopes, signatures, Merkle log, key custody.

Nothing in this package imports FastAPI, the database or any other part of the project.
"""
