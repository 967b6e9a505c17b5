"""Terminal-side applications: what a validator, a front desk, a gate does."""
