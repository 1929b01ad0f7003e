"""Stage 5 (figures.smk): heatmaps, animations and the notated score."""
