"""Contactless public-resource bidding: sealed bids, automatic openings, verifiable results."""
