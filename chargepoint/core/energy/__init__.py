"""Energy: smart charging profiles, load management, solar, departure plans, the operator's limit."""
