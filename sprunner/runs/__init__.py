"""Run policy decisions, starting or adopting runs, and polling them to completion."""
