"""Code shared by the auth service, the todo WebSocket service and the gateway."""
