"""The storage layer: the SQL metadata store and the content-addressed blob store."""
