"""`make demo`: one scripted agent fixes a bug in a small sample repository, offline."""
