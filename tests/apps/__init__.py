"""ASGI apps that the end-to-end, probe and Autobahn runs start under real servers.

Each is importable from the repository root as ``tests.apps.<name>:app``.
"""
