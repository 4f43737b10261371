"""The streaming merge of an adapter into its base."""
