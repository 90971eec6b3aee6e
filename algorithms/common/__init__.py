"""Small parts shared by two or more algorithms (style principle 4)."""
