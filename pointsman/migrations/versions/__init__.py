"""Migration revisions, one file each, applied in order of their ``down_revision`` chain."""
