"""The commands of `adapters`, one module per concept; cli.main registers them with add_command."""
