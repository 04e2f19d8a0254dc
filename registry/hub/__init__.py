"""Serving published tickets over the Hugging Face Hub read protocol (see views.py)."""
