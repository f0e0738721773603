"""A tender's rules as pure functions: money text, the bid form, scoring and a tender's terms.

No FastAPI, no database and no other package of ours, so the server, the opening and the
bidder's own client apply the very same rules.
"""
