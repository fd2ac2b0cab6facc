"""The networks' own protocols, for publishing a post exactly once.

`mastodon` (REST, bearer token, `Idempotency-Key`), `bluesky` (XRPC on the account's PDS,
a session, a record key derived from the post), `text` (how each network measures a post,
and Bluesky's link facets), `keys` (the derived keys that make a retry the same publication),
`budget` (each account's rate limits as every replica sees them). docs/publishing.md says
what each network does and how herald relies on it.
"""
