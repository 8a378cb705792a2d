"""storage: see DESIGN.md section 2."""
