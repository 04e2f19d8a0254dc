"""Badges for READMEs: an SVG per ticket (made with anybadge) and a shields.io endpoint JSON."""
