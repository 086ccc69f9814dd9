"""The todo WebSocket service: todos over one socket per tab, changes fanned out per user."""
