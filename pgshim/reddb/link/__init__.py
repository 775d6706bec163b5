"""The link to a running RedDB primary: gRPC replication calls, ack forwarding, a remote change
source, collection schemas over HTTP, and terms as PostgreSQL timelines."""
