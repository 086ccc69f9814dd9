from auth_service.app import create_app
from shared.server import run_service

run_service("auth_service", 8001, create_app)
