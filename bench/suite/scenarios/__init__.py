"""One module a scenario; each exposes `KEY`, `TITLE`, `steps(profile)` and `run(ctx)`."""
