"""supervision: see DESIGN.md section 2."""
