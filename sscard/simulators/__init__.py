"""Simulated cards, PSAM, vpcd bridge and insurance platform (the other side of the wire)."""
