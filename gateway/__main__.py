from gateway.app import create_app
from shared.server import run_service

run_service("gateway", 8000, create_app)
