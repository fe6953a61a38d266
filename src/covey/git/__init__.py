"""Git, through the git CLI: the only package in covey that runs git."""
