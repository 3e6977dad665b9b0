"""The `cartback` command: common.py holds the shared helpers, one module per command group, main.py wires them."""
