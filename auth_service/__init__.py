"""The auth service: users, passwords, access JWTs and rotating refresh tokens.

`python -m auth_service --host H --port P`, or `sanic auth_service.app:create_app --factory`.
"""
