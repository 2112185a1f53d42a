"""Local stand-ins that need no network: a Messages API emulator and a reference ACP agent.

Nothing here imports the Django apps or vm_bridge, so it runs alone inside a VM.
"""
