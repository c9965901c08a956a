"""AWS access, in one place: clients are built here and passed in everywhere else (DESIGN §2)."""
