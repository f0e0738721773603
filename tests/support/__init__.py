"""What many test files share, so that no test module imports another.

processes: the `bidding` command and `bidding serve` as real processes; platform: a served
platform for the bidder's command; cluster: server processes on one fresh database; scene: the
in-process opening scene (and live_server); live: clients of the live room; bids: sealed bids
over the API; bidder_mode: tenders opened by their bidders; uploads: raw HTTP against a real
server; tampering: the audit trail altered behind the platform's back.
"""
