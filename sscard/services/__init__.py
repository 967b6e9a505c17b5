"""Back ends a terminal talks to: medical-insurance platform client, journals, trust lists."""
