"""darts-sparsemax: sparsemax mixing weights as a darts search strategy."""
