"""Sessions: one agent conversation in one workspace, and the hosts that run them."""
