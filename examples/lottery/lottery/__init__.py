"""A Christmas lottery: one ticket per email, a seed committed before entries close, an auditable draw."""
