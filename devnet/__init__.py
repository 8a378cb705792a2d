"""devnet: see DESIGN.md section 2."""
