"""actors: see DESIGN.md section 2."""
