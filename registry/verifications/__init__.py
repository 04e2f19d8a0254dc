"""Verification results: the records the verifier workers write, and the API that shows them."""
