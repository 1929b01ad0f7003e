"""What the units encode: selectivity of every unit for the musical features."""
