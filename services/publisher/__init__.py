"""Publishing approved posts to the networks; `networks` holds each network's protocol."""
